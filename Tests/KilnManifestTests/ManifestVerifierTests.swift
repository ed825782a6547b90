import Foundation
import KilnDigest
import KilnTestSupport
import Testing
@testable import KilnManifest

@Suite("Verifying images against manifests")
struct ManifestVerifierTests {
    /// A baked output directory: the standard test image, its manifest and sidecar.
    struct Baked {
        let dir: TemporaryDirectory
        let image: String
        let manifestPath: String
        let manifest: SnapshotManifest

        init() throws {
            dir = try TemporaryDirectory()
            image = dir.path("data.img")
            _ = try TestImage(at: image)
            manifest = try ManifestWriter.writeSnapshot(image: image, outputDirectory: dir.path, inputs: try sampleInputs())
            manifestPath = dir.path("manifest.json")
        }
    }

    @Test("a pristine image verifies, with and without the whole-file digest")
    func pristine() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        let quick = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(quick.ok, "\(quick.problems) \(quick.badRanges)")
        #expect(quick.fileDigest == .notChecked)
        let full = try ManifestVerifier(threads: 3, fileDigest: true).verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(full.ok)
        #expect(full.fileDigest == .matched)
        #expect(full.actualWritten == 7)
        // Holes are never read: blocks 1 and 7 are holes (block 2 holds written zeros, so it is read).
        #expect(full.blocksRead == 8)
    }

    @Test("the manifest's numbers agree with the independent Python computation",
          .enabled(if: python != nil, "needs python3 (apt-get install python3)"))
    func manifestAgreesWithPython() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        let py = try pythonReport(baked.image)
        #expect(baked.manifest.blocks.count == py.count)
        #expect(baked.manifest.blocks.written == py.written)
        #expect(baked.manifest.blocks.writtenBytes == py.written * 524_288)
        #expect(baked.manifest.blocks.checksum == py.linear)
        #expect(baked.manifest.volume.sha256?.encoded == py.sha256)
        #expect(baked.manifest.volume.size == TestImage.size)
        let sidecar = try BlockDigestFile.load(path: baked.dir.path("manifest.blocks"))
        #expect(sidecar.file.entries.map { [String($0.index), $0.sha256.hex] } == py.blocks)
    }

    @Test("any flipped bit is reported as exactly its block, with what the block holds")
    func singleBitFlips() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        let writtenBlocks: Set<UInt64> = [0, 3, 4, 5, 6, 8, 9]
        var rng = SeededGenerator(seed: 2024)
        // Random offsets anywhere, plus one in each interesting place: libbig.so's data, the metadata region of
        // block 0, a hole, the written-zero block, and meta.db's only byte (flipping it zeroes its block).
        var offsets = (0..<24).map { _ in UInt64.random(in: 0..<TestImage.size, using: &rng) }
        offsets += [UInt64(4 * blockSize + 12345), 65536 + 100, UInt64(blockSize + 7), UInt64(2 * blockSize + 99),
                    UInt64(7 * blockSize - 1), UInt64(9 * blockSize + 95_000)]
        for offset in offsets {
            let bit = Int.random(in: 0..<8, using: &rng)
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: baked.image))
            try handle.seek(toOffset: offset)
            let before = try #require(try handle.read(upToCount: 1)?.first)
            try handle.close()
            try flipBit(baked.image, offset: offset, bit: bit)
            defer { try? flipBit(baked.image, offset: offset, bit: bit) }
            let result = try ManifestVerifier(threads: 2).verify(image: baked.image, manifestPath: baked.manifestPath)
            let block = offset / UInt64(blockSize)
            #expect(!result.ok, "offset \(offset)")
            try #require(result.badRanges.count == 1, "offset \(offset): \(result.badRanges)")
            let bad = result.badRanges[0]
            #expect(bad.firstBlock == block && bad.blockCount == 1, "offset \(offset)")
            #expect(bad.byteOffset == block * UInt64(blockSize))
            // Block 6 holds one non-zero byte: clearing its last set bit leaves the block all zeros.
            let zeroed = block == 6 && before ^ UInt8(1 << bit) == 0
            let expectedProblem: VolumeVerification.BlockProblem =
                !writtenBlocks.contains(block) ? .unexpectedData : (zeroed ? .missingData : .digestMismatch)
            #expect(bad.problem == expectedProblem, "offset \(offset)")
            let owners = TestImage.expectedOwners(block: block)
            #expect(bad.owners.files.map(\.path) == owners.files, "offset \(offset)")
            #expect(bad.owners.layers == owners.layers, "offset \(offset)")
            #expect(bad.owners.regions == owners.regions, "offset \(offset)")
        }
        // Flipping back restores the image exactly.
        #expect(try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath).ok)
    }

    @Test("a flip in file data names the file and its layer; one in metadata names the region")
    func namesWhatWasDamaged() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        try flipBit(baked.image, offset: UInt64(4 * blockSize + 1), bit: 3)
        let r1 = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(r1.badRanges.map(\.owners.files) == [[BlockOwners.File(path: "usr/lib/libbig.so", layer: "layer 0 sha256:aaaa")]])
        try flipBit(baked.image, offset: UInt64(4 * blockSize + 1), bit: 3)
        try flipBit(baked.image, offset: 65536 + 5, bit: 0)
        let r2 = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(r2.badRanges.map(\.owners.regions) == [["ext4 metadata", "gpt"]])
        #expect(r2.badRanges.first?.owners.files.isEmpty == true)
        #expect(r2.problems.contains { $0.contains("LINEAR checksum") })
    }

    @Test("adjacent bad blocks coalesce into one range; separate ones stay apart")
    func coalescing() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        for block in [3, 4, 5, 8] as [UInt64] { try flipBit(baked.image, offset: block * UInt64(blockSize) + 2000, bit: 1) }
        let result = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(result.badRanges.map { $0.firstBlock..<($0.firstBlock + $0.blockCount) } == [3..<6, 8..<9])
        #expect(result.badBlocks == 4)
        #expect(result.badRanges[0].owners.files.map(\.path) == ["usr/lib/libbig.so"])
    }

    @Test("a grown or truncated image is reported")
    func sizeChanges() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: baked.image))
        try handle.truncate(atOffset: UInt64(9 * blockSize))
        try handle.close()
        let result = try ManifestVerifier(fileDigest: true).verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(!result.ok)
        #expect(result.problems.contains { $0.contains("bytes; the manifest says \(TestImage.size)") })
        #expect(result.badRanges.map(\.firstBlock) == [9])
        #expect(result.badRanges.map(\.problem) == [.missingData])
        #expect(result.fileDigest == .mismatched)
    }

    @Test("a missing sidecar or manifest is an input error naming the file")
    func missingFiles() throws {
        let baked = try Baked()
        defer { baked.dir.remove() }
        try FileManager.default.removeItem(atPath: baked.dir.path("manifest.blocks"))
        let e1 = #expect(throws: BlockDigestFile.Error.self) { try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath) }
        #expect(e1 == .missing(baked.dir.path("manifest.blocks")))
        let e2 = #expect(throws: SnapshotManifest.Error.self) { try ManifestVerifier().verify(image: baked.image, manifestPath: baked.dir.path("nope.json")) }
        #expect(e2 == .missing(baked.dir.path("nope.json")))
    }
}

@Suite("Manifest against sidecar")
struct ManifestConsistencyTests {
    @Test("a fresh manifest and sidecar agree")
    func consistent() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let check = try ManifestVerifier.checkManifest(path: baked.manifestPath)
        #expect(check.ok, "\(check.problems)")
        #expect(check.entries == 7)
        #expect(check.checksum == baked.manifest.blocks.checksum)
    }

    @Test("a changed digest in the sidecar is caught by its sha256 and by the LINEAR checksum")
    func tamperedSidecar() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        // Byte 32 + 8 is the first byte of the first entry's digest.
        try flipBit(baked.dir.path("manifest.blocks"), offset: 40, bit: 0)
        let check = try ManifestVerifier.checkManifest(path: baked.manifestPath)
        #expect(check.problems.contains { $0.hasPrefix("sidecar 'manifest.blocks' has sha256") })
        #expect(check.problems.contains { $0.hasPrefix("LINEAR checksum of the sidecar's digests") })
        // Verifying the image against it reports the block too.
        let result = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(result.badRanges.map(\.firstBlock) == [0])
        #expect(!result.ok)
    }

    @Test("changed numbers in the manifest are caught")
    func tamperedManifest() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        var m = baked.manifest
        m.blocks.written += 1
        m.blocks.count -= 1
        m.blocks.checksum = "AAAA"
        try ManifestWriter.write(m, to: baked.manifestPath)
        let problems = try ManifestVerifier.checkManifest(path: baked.manifestPath).problems
        #expect(problems.contains { $0.hasPrefix("sidecar lists 7 written blocks; the manifest says 8") })
        #expect(problems.contains { $0.hasPrefix("blocks.writtenBytes is") })
        #expect(problems.contains { $0.hasPrefix("sidecar block count is 10; the manifest says 9") })
        #expect(problems.contains { $0.hasPrefix("blocks.count is 9") })
        #expect(problems.contains { $0.hasPrefix("LINEAR checksum of the sidecar's digests") })
    }

    @Test("malformed manifests are rejected with a line naming what is wrong",
          arguments: [
            ("{", "not valid JSON"),
            ("{\"schemaVersion\": 2}", "schemaVersion 2"),
            ("{\"schemaVersion\": 1}", "missing 'kiln'"),
          ])
    func malformedManifest(_ text: String, _ expected: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("manifest.json")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SnapshotManifest.Error.self) { try SnapshotManifest.load(path: path) }
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains(path) == true)
    }
}

@Suite("Written-ness")
struct WrittenBlockTests {
    @Test("a written block that became all zeros is missing data, owned by its file")
    func zeroedBlock() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: baked.image))
        try handle.seek(toOffset: UInt64(7 * blockSize - 1))
        try handle.write(contentsOf: [0])
        try handle.close()
        let result = try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
        #expect(result.badRanges.map(\.problem) == [.missingData])
        #expect(result.badRanges.map(\.firstBlock) == [6])
        #expect(result.badRanges.first?.owners.files == [BlockOwners.File(path: "var/lib/kiln/meta.db", layer: nil)])
        #expect(result.actualWritten == 6)
    }
}

@Suite("Hostile manifests and sidecars")
struct HostileManifestTests {
    /// The baked manifest's JSON with `edit` applied, written back in place.
    func edit(_ baked: ManifestVerifierTests.Baked, _ change: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: baked.manifestPath))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        change(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: baked.manifestPath))
    }

    func refusal(_ baked: ManifestVerifierTests.Baked) -> String {
        do {
            _ = try SnapshotManifest.load(path: baked.manifestPath)
            return "loaded"
        } catch let e as SnapshotManifest.Error {
            guard case .invalid = e else { return "wrong case: \(e)" }
            return e.description
        } catch {
            return "other: \(error)"
        }
    }

    @Test("a file-map entry whose layer is out of range is refused naming it", arguments: [-1, 2, Int(Int32.max)])
    func layerOutOfRange(layer: Int) throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        try #require(baked.manifest.files.entries.count > 0 && baked.manifest.files.layers.count == 2)
        try edit(baked) { json in
            var files = json["files"] as? [String: Any] ?? [:]
            var entries = files["entries"] as? [[String: Any]] ?? []
            entries[0]["layer"] = layer
            files["entries"] = entries
            json["files"] = files
        }
        let message = refusal(baked)
        #expect(message.contains("files.entries[0].layer") && message.contains("layer \(layer)"), "\(message)")
    }

    @Test("block sizes the hasher cannot use are refused naming blocks.size", arguments: [0, -4096, 1000, 1 << 40])
    func badBlockSize(size: Int) throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        try edit(baked) { json in
            var blocks = json["blocks"] as? [String: Any] ?? [:]
            blocks["size"] = size
            json["blocks"] = blocks
        }
        let message = refusal(baked)
        #expect(message.contains("'blocks.size'") && message.contains("\(size)"), "\(message)")
    }

    @Test("files named anywhere but beside the manifest are refused",
          arguments: [("volume", "/dev/sda"), ("volume", "../data.img"), ("blockDigests", "sub/manifest.blocks"),
                      ("blockDigests", ".."), ("volume", "")])
    func filesOutsideTheDirectory(field: String, name: String) throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        try edit(baked) { json in
            var object = json[field] as? [String: Any] ?? [:]
            object["file"] = name
            json[field] = object
        }
        let message = refusal(baked)
        #expect(message.contains("'\(field).file'") && message.contains("'\(name)' is not a file name beside the manifest"), "\(message)")
    }

    @Test("a sidecar of another shape than its manifest (block count, block size) is refused before any block is compared")
    func sidecarOfAnotherShape() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let original = try BlockDigestFile.load(path: baked.dir.path("manifest.blocks")).file
        let far = BlockDigest(index: 1 << 62, sha256: original.entries[0].sha256)
        for sidecar in [BlockDigestFile(blockSize: original.blockSize, blockCount: .max, entries: original.entries + [far]),
                        BlockDigestFile(blockSize: 4096, blockCount: original.blockCount, entries: original.entries)] {
            try sidecar.write(to: baked.dir.path("manifest.blocks"))
            let error = #expect(throws: BlockDigestFile.Error.self) {
                try ManifestVerifier().verify(image: baked.image, manifestPath: baked.manifestPath)
            }
            guard case .doesNotFitManifest("manifest.blocks", _) = error else {
                Issue.record("unexpected \(String(describing: error))")
                continue
            }
            #expect(error?.exitStatus == .input)
        }
    }

    @Test("a bad range far past the image saturates its byte figures instead of trapping")
    func farRangeSaturates() {
        let range = VolumeVerification.BadRange(firstBlock: 1 << 62, blockCount: .max, blockSize: 524_288, problem: .missingData, owners: BlockOwners())
        #expect(range.byteOffset == .max && range.byteLength == .max && range.blocks.upperBound == .max)
    }

    @Test("a sidecar that is a symlink, a directory, or longer than its header lists is refused before its body is read")
    func sidecarFileShapes() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let path = baked.dir.path("manifest.blocks")
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        try FileManager.default.moveItem(atPath: path, toPath: path + ".real")
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: path + ".real")
        #expect(throws: BlockDigestFile.Error.notARegularFile(path, "a symbolic link")) { try BlockDigestFile.load(path: path) }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        #expect(throws: BlockDigestFile.Error.notARegularFile(path, "a directory")) { try BlockDigestFile.load(path: path) }
        try FileManager.default.removeItem(atPath: path)
        // The right header, then a terabyte of hole: refused from the header, nothing else is read.
        try good.write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 1 << 40)
        try handle.close()
        let entries = UInt64((good.count - 32) / 40)
        #expect(throws: BlockDigestFile.Error.badLength(path, entries: entries, actual: 1 << 40)) { try BlockDigestFile.load(path: path) }
        // A header that agrees with a 640 GiB length made of holes: refused before memory is set aside for it.
        try FileManager.default.removeItem(atPath: path)
        let claimed: UInt64 = 1 << 34
        var header = Array("KILNBLKS".utf8)
        for (value, width) in [(UInt64(1), 4), (UInt64(524_288), 4), (claimed * 2, 8), (claimed, 8)] {
            header += (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }
        try Data(header).write(to: URL(fileURLWithPath: path))
        let length = 32 + claimed * 40
        let sparse = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try sparse.truncate(atOffset: length)
        try sparse.close()
        let error = #expect(throws: BlockDigestFile.Error.self) { try BlockDigestFile.load(path: path) }
        guard case .sparse(path, length, _) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(error?.exitStatus == .input)
    }

    @Test("a number that does not fit its field is said to be one, not invalid JSON", arguments: ["-5", "1.5", "18446744073709551616"])
    func numberOutOfRange(value: String) throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        var text = try String(contentsOfFile: baked.manifestPath, encoding: .utf8)
        let size = "\"size\" : \(baked.manifest.volume.size)"
        try #require(text.contains(size))
        text = text.replacingOccurrences(of: size, with: "\"size\" : \(value)")
        try text.write(toFile: baked.manifestPath, atomically: true, encoding: .utf8)
        let message = refusal(baked)
        #expect(message.contains("a number does not fit its field"), "\(message)")
    }

    @Test("a manifest that is a FIFO, a device, past its budget or mostly holes is refused before it is read")
    func manifestFileShapes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // Each would block or never end if read: the refusal must come from the open and the length alone.
        let fifo = dir.path("fifo.json")
        try #require(mkfifo(fifo, 0o600) == 0)
        let device = dir.path("zero.json")
        try FileManager.default.createSymbolicLink(atPath: device, withDestinationPath: "/dev/zero")
        for path in [fifo, device] {
            let error = #expect(throws: SnapshotManifest.Error.self) { try SnapshotManifest.load(path: path) }
            #expect(error == .invalid(path, "it is a special file, not a regular file"))
            #expect(error?.exitStatus == .input)
        }
        let big = dir.path("big.json")
        #expect(FileManager.default.createFile(atPath: big, contents: Data("{".utf8)))
        try FileHandle(forUpdating: URL(fileURLWithPath: big)).truncate(atOffset: SnapshotManifest.maximumFileSize + 1)
        #expect(throws: SnapshotManifest.Error.tooLarge(big, length: SnapshotManifest.maximumFileSize + 1, limit: SnapshotManifest.maximumFileSize)) {
            try SnapshotManifest.load(path: big)
        }
        let holes = dir.path("holes.json")
        #expect(FileManager.default.createFile(atPath: holes, contents: Data("{".utf8)))
        try FileHandle(forUpdating: URL(fileURLWithPath: holes)).truncate(atOffset: 64 << 20)
        let error = #expect(throws: SnapshotManifest.Error.self) { try SnapshotManifest.load(path: holes) }
        #expect(error?.exitStatus == .input && error?.description.contains("it has holes") == true, "\(String(describing: error))")
    }

    @Test("a directory given as the manifest is an input error")
    func manifestIsADirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let error = #expect(throws: SnapshotManifest.Error.self) { try SnapshotManifest.load(path: dir.path) }
        #expect(error?.exitStatus == .input && error?.description.contains("is a directory") == true, "\(String(describing: error))")
    }
}

extension HostileManifestTests {
    @Test("a key given twice is refused: Foundation would read the first, Python and jq the last")
    func repeatedKey() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        var text = try String(contentsOfFile: baked.manifestPath, encoding: .utf8)
        let checksum = "\"checksum\" : \"\(baked.manifest.blocks.checksum)\""
        try #require(text.contains(checksum), "the manifest's own spelling of blocks.checksum")
        text = text.replacingOccurrences(of: checksum, with: checksum + ", \"checksum\" : \"AAAA\"")
        try text.write(toFile: baked.manifestPath, atomically: true, encoding: .utf8)
        let message = refusal(baked)
        #expect(message.contains("key 'blocks.checksum' is given twice"), "\(message)")
    }
}
