import Foundation
import KilnBolt
import KilnDigest
import KilnOCI
import KilnTestSupport
import Testing
@testable import KilnContainerd

@Test(arguments: [
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("busybox", "docker.io/library/busybox:latest"),
    ("org/app", "docker.io/org/app:latest"),
    ("registry.example.com/app:v1", "registry.example.com/app:v1"),
    ("localhost:5000/a/b:c", "localhost:5000/a/b:c"),
    ("index.docker.io/library/x:1", "docker.io/library/x:1"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
])
func namesNormaliseLikeCRI(input: String, expected: String) throws {
    #expect(try ImageName(parsing: input).description == expected)
}

@Test(arguments: ["", "UPPER/case:1", "a b", "repo@md5:00"])
func invalidNamesAreRejected(input: String) {
    #expect(throws: ImageName.Error.self) { try ImageName(parsing: input) }
}

/// A resolved image of the bundled example, read with the same reader the bake uses.
func exampleImages() throws -> [ResolvedImage] {
    let layout = KilnPackage.fixtures + "/example-oci"
    var out: [ResolvedImage] = []
    for tag in ["app:v1", "tools:1.0"] {
        let reader = try SourceReader(ImageSource(kind: .ociLayout, path: layout, reference: tag))
        out += try reader.resolve(platforms: [Platform(os: "linux", architecture: "amd64")]).images
    }
    return out
}

@Test func databasesCarryTheGarbageCollectionChain() throws {
    let images = try exampleImages()
    var root = ContainerdRoot(namespace: "k8s.io", createdAt: GoTime(unixSeconds: 1_700_000_000))
    try root.add(images[0], names: ["registry.example.com/app:v1"], keepLayerBlobs: true)
    try root.add(images[1], names: ["tools:1.0"], keepLayerBlobs: false)
    let inventory = try ContainerdInventory(metaDB: try root.metaDB(), snapshotterDB: try root.snapshotterDB())
    #expect(inventory.version == 3)

    let app = images[0]
    let names = Set(inventory.images.map(\.name))
    #expect(names.contains("registry.example.com/app:v1"))
    #expect(names.contains("registry.example.com/app@\(app.target.digest)"))
    #expect(names.contains(app.manifest.config.digest.description))
    #expect(names.contains("docker.io/library/tools:1.0"))
    #expect(inventory.images.allSatisfy { $0.labels["io.cri-containerd.image"] == "managed" })

    let blobs = Dictionary(uniqueKeysWithValues: inventory.blobs.map { ($0.digest, $0) })
    // index -> manifest -> config -> top snapshot, and manifest -> layers -> diffIDs.
    let index = try #require(blobs[app.target.digest.description])
    #expect(index.labels["containerd.io/gc.ref.content.m.0"] == app.manifestDescriptor.digest.description)
    // Like containerd, every manifest the index lists is labelled by position, fetched or not.
    let listed = try JSONDecoder().decode(ImageIndex.self, from: Data(app.indexBytes[0])).manifests
    #expect(listed.count == 2)
    #expect(index.labels["containerd.io/gc.ref.content.m.1"] == listed[1].digest.description)
    let manifest = try #require(blobs[app.manifestDescriptor.digest.description])
    #expect(manifest.labels["containerd.io/gc.ref.content.config"] == app.manifest.config.digest.description)
    #expect(manifest.labels["containerd.io/gc.ref.content.l.2"] == app.layers[2].descriptor.digest.description)
    let config = try #require(blobs[app.manifest.config.digest.description])
    #expect(config.labels["containerd.io/gc.ref.snapshot.overlayfs"] == app.chainIDs.last?.description)
    #expect(blobs[app.layers[0].descriptor.digest.description]?.labels["containerd.io/uncompressed"] == app.layers[0].diffID.description)
    // tools:1.0 without layer blobs: its manifest names no layers, its own layer blob is absent.
    let tools = images[1]
    let toolsManifest = try #require(blobs[tools.manifestDescriptor.digest.description])
    #expect(!toolsManifest.labels.keys.contains { $0.hasPrefix("containerd.io/gc.ref.content.l.") })
    #expect(blobs[tools.layers[1].descriptor.digest.description] == nil)

    // One snapshot per distinct chainID; the shared base layer once.
    let chains = Set(app.chainIDs + tools.chainIDs)
    #expect(inventory.snapshots.count == chains.count)
    #expect(Set(inventory.snapshots.map(\.key)) == Set(chains.map(\.description)))
    for s in inventory.snapshots {
        #expect(s.kind == "committed")
        #expect(s.name == "k8s.io/\(s.id ?? 0)/\(s.key)")
        #expect(s.labels["containerd.io/snapshot.ref"] == s.key)
    }
    let top = try #require(inventory.snapshots.first { $0.key == app.chainIDs[2].description })
    #expect(top.parent == app.chainIDs[1].description)
}

@Test func oneNameCannotPointAtTwoImages() throws {
    let images = try exampleImages()
    var root = ContainerdRoot(namespace: "k8s.io", createdAt: GoTime(unixSeconds: 0))
    try root.add(images[0], names: ["example.com/x:1"], keepLayerBlobs: true)
    #expect(throws: ContainerdRoot.Error.self) { try root.add(images[1], names: ["example.com/x:1"], keepLayerBlobs: true) }
}

/// The same image published twice (zstd and uncompressed layers, one config): both bake, each under its own
/// names, and the image ID record is the last one's, as after a CRI pull of both in turn.
@Test func twoManifestsOfOneConfigShareTheImageIDRecord() throws {
    let layout = KilnPackage.fixtures + "/example-oci"
    let platforms = [Platform(os: "linux", architecture: "amd64")]
    let zstd = try #require(try SourceReader(ImageSource(kind: .ociLayout, path: layout, reference: "app:v1-zstd")).resolve(platforms: platforms).images.first)
    let plain = try #require(try SourceReader(ImageSource(kind: .ociLayout, path: layout, reference: "app:v1-plain")).resolve(platforms: platforms).images.first)
    try #require(zstd.manifest.config.digest == plain.manifest.config.digest && zstd.target.digest != plain.target.digest)

    var root = ContainerdRoot(namespace: "k8s.io", createdAt: GoTime(unixSeconds: 0))
    try root.add(zstd, names: ["example.com/app:zstd"], keepLayerBlobs: true)
    try root.add(plain, names: ["example.com/app:plain"], keepLayerBlobs: true)
    let inventory = try ContainerdInventory(metaDB: try root.metaDB(), snapshotterDB: try root.snapshotterDB())
    let targets = Dictionary(uniqueKeysWithValues: inventory.images.map { ($0.name, $0.digest) })
    #expect(targets["example.com/app:zstd"] == zstd.target.digest.description)
    #expect(targets["example.com/app:plain"] == plain.target.digest.description)
    #expect(targets[plain.manifest.config.digest.description] == plain.target.digest.description)
}

/// A meta.db with `images` buckets of two namespaces, each big enough for pages of its own.
func twoNamespaces() throws -> (bytes: [UInt8], pages: [UInt64]) {
    var root = Bolt.Bucket()
    root.withBucket("v1") { v1 in
        v1.put(GoVarint.encode(3), forKey: "version")
        for ns in ["a", "b"] {
            v1.withBucket(ns) { n in
                for i in 0..<200 {
                    n.withBucket(at: ["images", "example.com/\(ns)/image-\(i):1"]) { image in
                        image.withBucket("target") { $0.put(GoVarint.encode(Int64(i)), forKey: "size") }
                    }
                }
            }
        }
    }
    let bytes = [UInt8](try Bolt.Writer().serialize(root))
    let v1 = try #require(try Bolt.Reader(data: Data(bytes)).root.bucket(named: "v1"))
    let pages = try ["a", "b"].map { try #require(try v1.bucket(at: [$0, "images"])?.rootPage) }
    return (bytes, pages)
}

@Test func bucketsSharingAPageAreRefusedNamingTheDatabase() throws {
    var (bytes, pages) = try twoNamespaces()
    // Namespace b's `images` header (its key, then root page id) made to point at namespace a's pages.
    let header = Array("images".utf8) + withUnsafeBytes(of: pages[1].littleEndian, Array.init)
    let at = try #require((0...(bytes.count - header.count)).first { Array(bytes[$0..<($0 + header.count)]) == header })
    withUnsafeBytes(of: pages[0].littleEndian) { bytes.replaceSubrange((at + 6)..<(at + 14), with: $0) }
    let error = #expect(throws: ContainerdInventory.Error.self) { _ = try ContainerdInventory(metaDB: Data(bytes), snapshotterDB: nil) }
    #expect(error?.description.hasPrefix("\(ContainerdRoot.Paths.metaDB): page \(pages[0]) is referenced more than once") == true,
            "\(String(describing: error))")
}

@Test func aValueThatDoesNotDecodeNamesDatabaseBucketAndKey() throws {
    var root = Bolt.Bucket()
    root.withBucket("v1") { v1 in
        v1.put(GoVarint.encode(3), forKey: "version")
        v1.withBucket(at: ["k8s.io", "content", "blob", "sha256:ab"]) { $0.put(Data([0xFF]), forKey: "size") }
    }
    let bytes = try Bolt.Writer().serialize(root)
    let error = #expect(throws: ContainerdInventory.Error.self) { _ = try ContainerdInventory(metaDB: bytes, snapshotterDB: nil) }
    #expect(error?.description.hasPrefix("\(ContainerdRoot.Paths.metaDB): bucket v1/k8s.io/content/blob/sha256:ab: key 'size': ") == true,
            "\(String(describing: error))")
}
