import Foundation
import KilnDigest
import KilnTestSupport
import Testing
@testable import KilnManifest

@Suite("Block hashing against an independent Python implementation")
struct BlockHasherTests {
    func expectMatches(_ hashes: BlockHashes, _ py: PythonBlockReport, _ context: String) {
        #expect(hashes.blockCount == py.count, "\(context)")
        #expect(hashes.writtenCount == py.written, "\(context)")
        #expect(hashes.writtenBytes == py.written * UInt64(blockSize), "\(context)")
        #expect(hashes.linearChecksum == py.linear, "\(context)")
        if let fileDigest = hashes.fileDigest { #expect(fileDigest.encoded == py.sha256, "\(context)") }
        #expect(hashes.written.map { [String($0.index), $0.sha256.hex] } == py.blocks, "\(context)")
    }

    @Test("the standard image: holes, written zeros, a lone byte, a partial last block",
          .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func standardImage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let image = try TestImage(at: dir.path("data.img"))
        let py = try pythonReport(image.path)
        // The layout says which blocks hold data; the hole, the written zeros and the other hole do not count.
        #expect(py.blocks.map { $0[0] } == ["0", "3", "4", "5", "6", "8", "9"])
        for (threads, stripe, skipHoles) in [(1, 64, true), (2, 1, true), (4, 3, false), (3, 2, true), (2, 64, false)] {
            for mapped in [false, true] {
                let hashes = try BlockHasher(threads: threads, fileDigest: true, stripeBlocks: stripe, skipHoles: skipHoles,
                                             memoryMapped: mapped)
                    .hash(path: image.path)
                expectMatches(hashes, py, "threads \(threads), stripe \(stripe), skipHoles \(skipHoles), mapped \(mapped)")
            }
        }
        let noFileDigest = try BlockHasher(fileDigest: false).hash(path: image.path)
        #expect(noFileDigest.fileDigest == nil)
        #expect(noFileDigest.linearChecksum == py.linear)
    }

    @Test("random sparse images", .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func randomImages() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for seed in UInt64(1)...6 {
            var rng = SeededGenerator(seed: seed * 7919)
            let size = UInt64.random(in: 1...UInt64(12 * blockSize), using: &rng)
            var writes: [(offset: UInt64, bytes: [UInt8])] = []
            for _ in 0..<Int.random(in: 0...8, using: &rng) {
                let offset = UInt64.random(in: 0..<size, using: &rng)
                let length = Int(min(UInt64.random(in: 1...UInt64(blockSize + 4096), using: &rng), size - offset))
                writes.append((offset, rng.dataBytes(length)))
            }
            let path = dir.path("random-\(seed).img")
            try makeSparseFile(path, size: size, writes: writes)
            let py = try pythonReport(path)
            let hashes = try BlockHasher(threads: Int(seed % 3) + 1, stripeBlocks: Int(seed % 4) + 1).hash(path: path)
            expectMatches(hashes, py, "seed \(seed), size \(size)")
            let mapped = try BlockHasher(threads: Int(seed % 3) + 1, stripeBlocks: Int(seed % 4) + 1, memoryMapped: true).hash(path: path)
            expectMatches(mapped, py, "seed \(seed), size \(size), mapped")
        }
    }

    @Test("an empty file has no blocks", .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func emptyFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("empty.img")
        try makeSparseFile(path, size: 0, writes: [])
        let py = try pythonReport(path)
        let hashes = try BlockHasher().hash(path: path)
        expectMatches(hashes, py, "empty")
        #expect(hashes.blockCount == 0)
    }

    @Test("a real ext4 image made by mke2fs -d",
          .enabled(if: python != nil && FileManager.default.isExecutableFile(atPath: "/usr/sbin/mke2fs"),
                   "needs python3 and mke2fs (apt-get install python3 e2fsprogs)"))
    func ext4Image() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let root = dir.path("root")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 42)
        _ = FileManager.default.createFile(atPath: root + "/big.bin", contents: Data(rng.dataBytes(3 * blockSize + 777)))
        _ = FileManager.default.createFile(atPath: root + "/etc/small", contents: Data("hello\n".utf8))
        let image = dir.path("fs.img")
        let made = try runProcess("/usr/sbin/mke2fs", ["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-d", root, image, "16M"])
        try #require(made.status == 0, "mke2fs failed: \(made.stderr)")
        let py = try pythonReport(image)
        expectMatches(try BlockHasher(threads: 2).hash(path: image), py, "mke2fs image")
        #expect(py.written > 3)
    }

    @Test("a missing image is an error naming it")
    func missingImage() throws {
        let error = #expect(throws: BlockHasher.Error.self) { try BlockHasher().hash(path: "/nonexistent/kiln/data.img") }
        #expect(error?.description.contains("/nonexistent/kiln/data.img") == true)
    }

    @Test("LINEAR over known digests equals sha256 of their concatenation",
          .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func linearChecksumDefinition() throws {
        let sums = (0..<5000).map { i in SHA256Hasher.hash(Array("block \(i)".utf8)) }
        let linear = LinearChecksum.compute(sums.enumerated().map { BlockDigest(index: UInt64($0), sha256: SHA256Sum($1)!) })
        let script = """
            import base64, hashlib, sys
            raw = b"".join(bytes.fromhex(l.strip()) for l in sys.stdin if l.strip())
            print(base64.b64encode(hashlib.sha256(raw).digest()).decode())
            """
        let r = try runProcess(try #require(python), ["-c", script], input: sums.map(\.encoded).joined(separator: "\n"))
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == linear)
    }
}
