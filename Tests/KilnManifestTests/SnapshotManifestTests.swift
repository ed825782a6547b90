import Foundation
import KilnDigest
import KilnDisk
import KilnTestSupport
import Testing
@testable import KilnManifest

let schemaPath = KilnPackage.root + "/docs/manifest.schema.json"

let hasJSONSchema: Bool = {
    guard let python else { return false }
    return (try? runProcess(python, ["-c", "import jsonschema"]).status) == 0
}()

@Suite("Snapshot manifest")
struct SnapshotManifestTests {
    @Test("two bakes of the same image in different directories with different hashers give identical bytes")
    func deterministicBytes() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        defer { a.remove(); b.remove() }
        _ = try TestImage(at: a.path("data.img"))
        _ = try TestImage(at: b.path("data.img"))
        try ManifestWriter.writeSnapshot(image: a.path("data.img"), outputDirectory: a.path, inputs: try sampleInputs(),
                                         hasher: BlockHasher(threads: 1))
        try ManifestWriter.writeSnapshot(image: b.path("data.img"), outputDirectory: b.path, inputs: try sampleInputs(),
                                         hasher: BlockHasher(threads: 4, stripeBlocks: 1))
        for name in ["manifest.json", "manifest.blocks"] {
            let da = try Data(contentsOf: URL(fileURLWithPath: a.path(name)))
            let db = try Data(contentsOf: URL(fileURLWithPath: b.path(name)))
            #expect(da == db, "\(name) differs")
        }
        let text = try String(contentsOfFile: a.path("manifest.json"), encoding: .utf8)
        #expect(!text.contains(a.path) && !text.contains(b.path))
        #expect(text.hasSuffix("}\n"))
        // Integers only: no number in the text has a fraction or an exponent.
        #expect(text.range(of: #""\s*:\s*-?[0-9]+[.eE]"#, options: .regularExpression) == nil)
    }

    /// The umask is per process, and changing this one's would change it for every test running alongside: each
    /// snapshot is written by a child (`kiln manifest-for`, which calls the same writer) that sets its own.
    @Test("snapshots written under different umasks are 0644 and byte-identical", .requires(.kilnBinary))
    func umaskDoesNotMatter() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        var written: [(umask: String, directory: String)] = []
        for (umask, jobs) in [("022", 1), ("077", 4), ("000", 2)] {
            let directory = scratch.path("umask-\(umask)")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = try TestImage(at: directory + "/data.img")
            let r = try ProcessRunner(environment: ["SOURCE_DATE_EPOCH": "1700000000"]).run("/bin/sh", [
                "-c", "umask \(umask) && exec \"$0\" \"$@\"",
                KilnPackage.kilnBinary, "manifest-for", directory + "/data.img", "--name", "umask", "--jobs", String(jobs),
            ])
            try #require(r.status == 0, "kiln manifest-for under umask \(umask): \(r)")
            written.append((umask, directory))
        }
        for name in ["manifest.json", "manifest.blocks"] {
            let first = try Data(contentsOf: URL(fileURLWithPath: written[0].directory + "/" + name))
            for (umask, directory) in written {
                let path = directory + "/" + name
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o644, "\(name) written under umask \(umask) has mode \(String(mode ?? 0, radix: 8))")
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == first, "\(name) written under umask \(umask) differs")
            }
        }
    }

    @Test("encoding is stable: decode then encode gives the same bytes")
    func stableEncoding() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: baked.manifestPath))
        let decoded = try SnapshotManifest(decoding: bytes, name: "m")
        #expect(decoded == baked.manifest)
        #expect(try ManifestWriter.encode(decoded) == bytes)
        // Keys are sorted at every level.
        let object = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
        #expect(Array(object.keys).sorted() == ["blockDigests", "blocks", "createdAt", "files", "images", "kiln", "recipe", "schemaVersion", "volume"])
        let text = String(decoding: bytes, as: UTF8.self)
        let topKeys = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.dropFirst(3).prefix { $0 != "\"" } }
        #expect(topKeys == topKeys.sorted())
    }

    @Test("recording snapshot ids and removing them again gives the same bytes")
    func snapshotIdsRoundTrip() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        let original = try ManifestWriter.encode(baked.manifest)
        var uploaded = try SnapshotManifest(decoding: original, name: "m")
        uploaded.snapshotId = "snap-0123456789abcdef0"
        uploaded.snapshots = ["us-east-1": "snap-0123456789abcdef0", "us-west-2": "snap-0fedcba9876543210"]
        let written = try ManifestWriter.encode(uploaded)
        var back = try SnapshotManifest(decoding: written, name: "m")
        #expect(back.snapshots == uploaded.snapshots)
        back.snapshotId = nil
        back.snapshots = nil
        #expect(try ManifestWriter.encode(back) == original)
    }

    @Test("the manifest validates against docs/manifest.schema.json",
          .enabled(if: hasJSONSchema, "needs python3-jsonschema (apt-get install python3-jsonschema)"))
    func schemaValidation() throws {
        let baked = try ManifestVerifierTests.Baked()
        defer { baked.dir.remove() }
        var withSnapshot = baked.manifest
        withSnapshot.snapshotId = "snap-0123456789abcdef0"
        withSnapshot.snapshots = ["us-east-1": "snap-0123456789abcdef0", "eu-west-1": "snap-0fedcba9876543210"]
        withSnapshot.volume.partition = ManifestPartition(start: 1_048_576, size: 4_000_000, typeGUID: GPT.bottlerocketDataType.description,
                                                          uniqueGUID: "5b94e8df-28b8-485c-9d19-362263b5944c", name: "BOTTLEROCKET-DATA")
        let second = baked.dir.path("second.json")
        try ManifestWriter.write(withSnapshot, to: second)
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            for path in sys.argv[2:]:
                jsonschema.Draft202012Validator(schema).validate(json.load(open(path)))
            bad = json.load(open(sys.argv[2]))
            bad["blocks"]["checksumAlgorithm"] = "MD5"
            try:
                jsonschema.Draft202012Validator(schema).validate(bad)
                print("accepted a bad manifest")
                sys.exit(1)
            except jsonschema.ValidationError:
                pass
            print("ok")
            """
        let r = try runProcess(try #require(python), ["-c", script, schemaPath, baked.manifestPath, second])
        #expect(r.status == 0 && r.stdout.contains("ok"), "\(r.stdout)\(r.stderr)")
    }

    @Test("createdAt agrees with Python's datetime",
          .enabled(if: python != nil, "needs python3 (apt-get install python3)"),
          arguments: [Int64(0), 951_782_400, 1_700_000_000, 1_709_164_799, 4_102_444_800, 253_402_300_799])
    func timestamps(_ seconds: Int64) throws {
        let r = try runProcess(try #require(python), ["-c",
            "import datetime, sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1]), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))",
            String(seconds)])
        #expect(ManifestTimestamp.rfc3339(epochSeconds: seconds) == r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("SOURCE_DATE_EPOCH parsing")
    func sourceDateEpoch() throws {
        #expect(try ManifestTimestamp.sourceDateEpoch(environment: [:]) == nil)
        #expect(try ManifestTimestamp.sourceDateEpoch(environment: ["SOURCE_DATE_EPOCH": "1700000000"]) == 1_700_000_000)
        #expect(throws: ManifestTimestamp.Error.self) { try ManifestTimestamp.sourceDateEpoch(environment: ["SOURCE_DATE_EPOCH": "soon"]) }
        #expect(throws: ManifestTimestamp.Error.self) { try ManifestTimestamp.sourceDateEpoch(environment: ["SOURCE_DATE_EPOCH": "-5"]) }
    }

    @Test("a synthetic manifest for a 200 GB volume loads, checks against its sidecar and summarises")
    func largeVolume() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let manifest = try SyntheticVolume.write(to: dir.path, volumeBytes: 200_000_000_000, writtenBlocks: 380_000)
        let loaded = try SnapshotManifest.load(path: dir.path("manifest.json"))
        #expect(loaded == manifest)
        let overview = loaded.overview
        #expect(overview.writtenBlocks == 380_000)
        #expect(overview.writtenBytes == 380_000 * 524_288)
        #expect(overview.blocks == (200_000_000_000 + 524_287) / 524_288)
        #expect(overview.layers == 8)
        let check = try ManifestVerifier.checkManifest(path: dir.path("manifest.json"))
        #expect(check.ok, "\(check.problems)")
        // The manifest itself stays small; the digests are in the sidecar.
        let manifestBytes = try FileManager.default.attributesOfItem(atPath: dir.path("manifest.json"))[.size] as? Int ?? 0
        #expect(manifestBytes < 2_000_000)
        #expect(loaded.blockDigests.size == UInt64(32 + 40 * 380_000))
    }
}

/// Builds a manifest and sidecar for a large volume without an image, as the benchmark does.
enum SyntheticVolume {
    static func write(to directory: String, volumeBytes: UInt64, writtenBlocks: Int) throws -> SnapshotManifest {
        let bs = UInt64(blockSize)
        let count = (volumeBytes + bs - 1) / bs
        // Spread the written blocks: long runs with gaps, as a filesystem filled front to back leaves them.
        let stride = max(1, Double(count) / Double(writtenBlocks))
        // Distinct digests without hashing 380,000 times: the block number spread over the 32 bytes.
        var entries: [BlockDigest] = []
        entries.reserveCapacity(writtenBlocks)
        for i in 0..<UInt64(writtenBlocks) {
            let words: (UInt64, UInt64, UInt64, UInt64) = (i, i &* 0x9E37_79B9_7F4A_7C15, ~i, i << 7)
            let sum = withUnsafeBytes(of: words) { SHA256Sum(bytesAt: $0.baseAddress!) }
            entries.append(BlockDigest(index: UInt64(Double(i) * stride), sha256: sum))
        }
        let sidecar = BlockDigestFile(blockSize: blockSize, blockCount: count, entries: entries)
        let reference = try sidecar.write(to: (directory as NSString).appendingPathComponent("manifest.blocks"))
        var input = FileMapInput()
        for i in 0..<5000 {
            let start = UInt64(i) * (volumeBytes / 5001)
            input.addFile(path: "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/\(i % 8 + 1)/fs/data/file-\(i).bin",
                          layer: "layer \(i % 8)", ranges: [(start, UInt64(i % 97 + 1) * 300_000)])
        }
        input.addRegion(name: "ext4 metadata", ranges: [(1_048_576, 64 * 1_048_576)])
        let manifest = SnapshotManifest(
            kiln: .init(version: "0.1.0"), recipe: .init(name: "big", digest: SHA256Hasher.hash(Array("big".utf8))),
            createdAt: ManifestTimestamp.rfc3339(epochSeconds: 1_700_000_000), images: [sampleImage(layers: 8)],
            volume: ManifestVolume(file: "data.img", size: volumeBytes, layout: "bottlerocket",
                                   sha256: SHA256Hasher.hash(Array("image".utf8))),
            blocks: .init(size: blockSize, count: count, written: UInt64(writtenBlocks), writtenBytes: UInt64(writtenBlocks) * bs,
                          checksum: sidecar.linearChecksum),
            blockDigests: reference, files: FileMap(input))
        try ManifestWriter.write(manifest, to: (directory as NSString).appendingPathComponent("manifest.json"))
        return manifest
    }
}

@Suite("Writing a snapshot")
struct WriteSnapshotTests {
    @Test("a temporary image file is recorded under the name it will have, and verifies once renamed")
    func recordedName() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try TestImage(at: dir.path("data.img.partial"))
        var inputs = try sampleInputs()
        inputs.recipe = .init(name: "from-sources", digest: nil)
        let manifest = try ManifestWriter.writeSnapshot(image: dir.path("data.img.partial"), imageFileName: "data.img",
                                                        outputDirectory: dir.path, inputs: inputs)
        #expect(manifest.volume.file == "data.img")
        try FileManager.default.moveItem(atPath: dir.path("data.img.partial"), toPath: dir.path("data.img"))
        let loaded = try SnapshotManifest.load(path: dir.path("manifest.json"))
        #expect(loaded.recipe.digest == nil)
        #expect(loaded.imagePath(manifestPath: dir.path("manifest.json")) == dir.path("data.img"))
        let result = try ManifestVerifier().verify(image: loaded.imagePath(manifestPath: dir.path("manifest.json")),
                                                   manifestPath: dir.path("manifest.json"))
        #expect(result.ok)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["data.img", "manifest.blocks", "manifest.json"])
    }
}
