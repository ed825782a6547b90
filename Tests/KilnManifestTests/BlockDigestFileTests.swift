import Foundation
import KilnDigest
import KilnTestSupport
import Testing
@testable import KilnManifest

@Suite("Block digest sidecar")
struct BlockDigestFileTests {
    func sample(_ n: Int) -> BlockDigestFile {
        let entries = (0..<n).map { i in
            BlockDigest(index: UInt64(i * 3 + 1), sha256: SHA256Sum(SHA256Hasher.hash(Array("b\(i)".utf8)))!)
        }
        return BlockDigestFile(blockSize: blockSize, blockCount: UInt64(n * 3 + 2), entries: entries)
    }

    @Test("round trip through a file, and the recorded digest is the file's sha256")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let original = sample(1000)
        let path = dir.path("manifest.blocks")
        let reference = try original.write(to: path)
        let loaded = try BlockDigestFile.load(path: path)
        #expect(loaded.file == original)
        #expect(loaded.digest == reference.digest)
        #expect(reference.file == "manifest.blocks")
        #expect(reference.size == UInt64(32 + 40 * 1000))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(reference.digest == SHA256Hasher.hash(bytes))
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["manifest.blocks"])
    }

    @Test("the documented layout, read with Python's struct module",
          .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func layoutMatchesDocumentation() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = sample(5)
        let path = dir.path("manifest.blocks")
        try file.write(to: path)
        let script = """
            import struct, sys
            b = open(sys.argv[1], "rb").read()
            magic, version, bs, count, n = struct.unpack_from("<8sIIQQ", b, 0)
            assert magic == b"KILNBLKS" and len(b) == 32 + 40 * n
            print(version, bs, count, n)
            for i in range(n):
                idx, = struct.unpack_from("<Q", b, 32 + 40 * i)
                print(idx, b[40 + 40 * i:72 + 40 * i].hex())
            """
        let r = try runProcess(try #require(python), ["-c", script, path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "1 524288 17 5")
        #expect(Array(lines.dropFirst()) == file.entries.map { "\($0.index) \($0.sha256.hex)" })
    }

    @Test("malformed sidecars are rejected")
    func malformed() throws {
        let good = sample(3).encoded()
        func decode(_ bytes: [UInt8]) throws -> BlockDigestFile {
            try bytes.withUnsafeBytes { try BlockDigestFile(decoding: $0, name: "x") }
        }
        #expect(try decode(good) == sample(3))
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(throws: BlockDigestFile.Error.badMagic("x")) { try decode(magic) }
        #expect(throws: BlockDigestFile.Error.badLength("x", entries: 3, actual: 151)) { try decode(Array(good.dropLast())) }
        #expect(throws: BlockDigestFile.Error.truncatedHeader("x", actual: 10)) { try decode(Array(good.prefix(10))) }
        // An entry count whose byte length overflows, with and without the header added.
        for count in [UInt64.max, UInt64.max / 40] {
            var huge = good
            withUnsafeBytes(of: count.littleEndian) { huge.replaceSubrange(24..<32, with: $0) }
            #expect(throws: BlockDigestFile.Error.badLength("x", entries: count, actual: UInt64(good.count))) { try decode(huge) }
        }
        var version = good
        version[8] = 2
        #expect(throws: BlockDigestFile.Error.unsupportedVersion("x", 2)) { try decode(version) }
        var unsorted = good
        unsorted[32 + 40] = 0  // second entry's index 4 -> 0, below the first's 1
        #expect(throws: BlockDigestFile.Error.unsorted("x", entry: 1)) { try decode(unsorted) }
        var outOfRange = good
        outOfRange[32 + 80] = 200
        #expect(throws: BlockDigestFile.Error.outOfRange("x", entry: 2, index: 200, blockCount: 11)) { try decode(outOfRange) }
        #expect(throws: BlockDigestFile.Error.badMagic("x")) { try decode([1, 2, 3]) }
    }
}
