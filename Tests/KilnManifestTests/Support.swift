import Foundation
import KilnDigest
import KilnTestSupport
@testable import KilnManifest

let blockSize = 524_288

extension SeededGenerator {
    /// Random bytes that read as data wherever a page starts: random bytes could be zero there by chance, and the
    /// tests need written data to be data.
    mutating func dataBytes(_ count: Int) -> [UInt8] {
        var out = bytes(count)
        for j in stride(from: 0, to: count, by: 4096) where out[j] == 0 { out[j] = 1 }
        return out
    }
}

/// Writes a sparse file: `size` bytes of holes, then `writes` at their offsets.
func makeSparseFile(_ path: String, size: UInt64, writes: [(offset: UInt64, bytes: [UInt8])]) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: size)
    for w in writes {
        try handle.seek(toOffset: w.offset)
        try handle.write(contentsOf: w.bytes)
    }
}

/// Flips bit `bit` of the byte at `offset` in place.
func flipBit(_ path: String, offset: UInt64, bit: Int) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    guard var byte = try handle.read(upToCount: 1)?.first else { throw CocoaError(.fileReadUnknown) }
    byte ^= UInt8(1 << bit)
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: [byte])
}

/// The layout of the standard test image: what is where, so tests can state expectations independently of
/// the code under test.
struct TestImage {
    /// 9 full blocks and a partial tenth one.
    static let size = UInt64(9 * blockSize + 100_000)
    /// (path, layer, byte ranges) of the files written into the image.
    static let files: [(path: String, layer: String?, ranges: [FileMapInput.ByteRange])] = [
        ("usr/lib/libbig.so", "layer 0 sha256:aaaa", [.init(offset: UInt64(3 * blockSize + 1000), length: UInt64(2 * blockSize + 5000))]),
        ("etc/hosts", "layer 1 sha256:bbbb", [.init(offset: UInt64(8 * blockSize + 4096), length: 300)]),
        ("opt/model.bin", "layer 1 sha256:bbbb", [.init(offset: UInt64(8 * blockSize + 65536), length: 100_000),
                                                  .init(offset: UInt64(9 * blockSize + 4096), length: 50_000)]),
        ("var/lib/kiln/meta.db", nil, [.init(offset: UInt64(6 * blockSize + blockSize - 1), length: 1)]),
    ]
    /// Metadata regions written into the image.
    static let regions: [(name: String, ranges: [FileMapInput.ByteRange])] = [
        ("gpt", [.init(offset: 0, length: 17408)]),
        ("ext4 metadata", [.init(offset: 65536, length: 4096),
                           .init(offset: UInt64(9 * blockSize + 90_000), length: 10_000)]),
    ]

    let path: String

    /// Block 0: data (the "gpt"); block 1: hole; block 2: written zeros; blocks 3-5: libbig.so; block 6: one
    /// non-zero byte, its last; block 7: hole; block 8: small files in its first half; block 9 (partial):
    /// model.bin and metadata.
    init(at path: String, seed: UInt64 = 1) throws {
        self.path = path
        var rng = SeededGenerator(seed: seed)
        var writes: [(offset: UInt64, bytes: [UInt8])] = []
        writes.append((UInt64(2 * blockSize), [UInt8](repeating: 0, count: blockSize)))
        for r in Self.regions { for b in r.ranges { writes.append((b.offset, rng.dataBytes(Int(b.length)))) } }
        for f in Self.files { for b in f.ranges { writes.append((b.offset, rng.dataBytes(Int(b.length)))) } }
        try makeSparseFile(path, size: Self.size, writes: writes)
    }

    static var fileMapInput: FileMapInput {
        var input = FileMapInput()
        for f in files { input.addFile(path: f.path, layer: f.layer, ranges: f.ranges.map { ($0.offset, $0.length) }) }
        for r in regions { input.regions.append(.init(name: r.name, ranges: r.ranges)) }
        return input
    }

    /// What owns `block`, worked out from the byte ranges directly.
    static func expectedOwners(block: UInt64) -> (files: [String], layers: [String], regions: [String]) {
        let lo = block * UInt64(blockSize), hi = lo + UInt64(blockSize)
        func hits(_ ranges: [FileMapInput.ByteRange]) -> Bool { ranges.contains { $0.offset < hi && $0.offset + $0.length > lo } }
        let fs = files.filter { hits($0.ranges) }
        return (fs.map(\.path).sorted(), Set(fs.compactMap(\.layer)).sorted(), regions.filter { hits($0.ranges) }.map(\.name).sorted())
    }
}

/// What an independent Python script (stdlib hashlib and base64 only) computes from an image file.
struct PythonBlockReport: Decodable {
    var count: UInt64
    var written: UInt64
    var linear: String
    var sha256: String
    var blocks: [[String]]
}

/// Python 3 interpreters to try: the system one first (it has the Debian packages the tests install).
let pythonCandidates = ["/usr/bin/python3", "/usr/local/bin/python3"]
let python: String? = pythonCandidates.first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs a program and captures its output, with `input` (if any) as its standard input.
func runProcess(_ executable: String, _ arguments: [String], input: String? = nil) throws -> ProcessResult {
    try ProcessRunner().run(executable, arguments, input: input.map { Data($0.utf8) })
}

let pythonBlockScript = """
import base64, hashlib, json, sys
path, bs = sys.argv[1], 524288
zero = bytes(bs)
whole = hashlib.sha256()
digests = []
count = 0
with open(path, "rb") as f:
    while True:
        b = f.read(bs)
        if not b:
            break
        whole.update(b)
        if b != zero[:len(b)]:
            digests.append((count, hashlib.sha256(b + bytes(bs - len(b))).digest()))
        count += 1
linear = base64.b64encode(hashlib.sha256(b"".join(d for _, d in digests)).digest()).decode()
print(json.dumps({"count": count, "written": len(digests), "linear": linear,
                  "sha256": whole.hexdigest(), "blocks": [[str(i), d.hex()] for i, d in digests]}))
"""

func pythonReport(_ path: String) throws -> PythonBlockReport {
    guard let python else { throw CocoaError(.executableNotLoadable) }
    let r = try runProcess(python, ["-c", pythonBlockScript, path])
    guard r.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
    return try JSONDecoder().decode(PythonBlockReport.self, from: Data(r.stdout.utf8))
}

func sampleInputs(images: [ManifestImage] = [sampleImage()]) throws -> SnapshotInputs {
    SnapshotInputs(
        kilnVersion: "0.1.0",
        recipe: .init(name: "test-recipe", digest: SHA256Hasher.hash(Array("recipe".utf8))),
        createdAt: ManifestTimestamp.rfc3339(epochSeconds: 1_700_000_000),
        images: images, layout: "containerd",
        filesystem: ManifestFilesystem(offset: 0, uuid: "8a7f4c2e-0000-4000-8000-000000000001", blockSize: 4096,
                                       blockCount: 1200, inodeCount: 512, usedBlocks: 300),
        fileMap: TestImage.fileMapInput)
}

func sampleImage(layers: Int = 2) -> ManifestImage {
    func d(_ s: String) -> Digest { SHA256Hasher.hash(Array(s.utf8)) }
    let diffIDs = (0..<layers).map { d("diff\($0)") }
    let chain = Digest.chainIDs(diffIDs: diffIDs)
    return ManifestImage(
        names: ["example.com/app:v1"], platform: "linux/amd64",
        manifest: .init(mediaType: "application/vnd.oci.image.manifest.v1+json", digest: d("manifest"), size: 1234),
        config: .init(mediaType: "application/vnd.oci.image.config.v1+json", digest: d("config"), size: 567),
        layers: (0..<layers).map { i in
            ManifestLayer(digest: d("layer\(i)"), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: 1000 + Int64(i),
                          diffID: diffIDs[i], chainID: chain[i], uncompressedSize: 4000 + Int64(i), entries: 10 + i,
                          snapshotId: String(i + 1))
        })
}
