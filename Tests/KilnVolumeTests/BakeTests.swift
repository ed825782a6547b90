import Foundation
import KilnCore
import KilnDigest
import KilnExt4
import KilnManifest
import KilnOCI
import KilnTestSupport
import Testing

@testable import KilnVolume

/// One record per path of an unpacked tree, in the shape `scripts/lib/treelist.py` prints, with what two
/// unpackers must agree on (owners and times are left out: umoci unpacks rootless here).
struct TreeRecord: Hashable, CustomStringConvertible {
    var type: Int
    var mode: String
    var size: UInt64?
    var sha256: String?
    var target: String?
    var userXattrs: [String: String]

    var description: String {
        "type \(String(type, radix: 8)) mode \(mode)\(size.map { " size \($0)" } ?? "")\(sha256.map { " sha256 \($0.prefix(12))" } ?? "")\(target.map { " -> \($0)" } ?? "")\(userXattrs.isEmpty ? "" : " \(userXattrs)")"
    }
}

enum Trees {
    /// The tree under `root` in a baked filesystem, paths relative to it.
    static func read(_ fs: EXT4Reader, under root: String = "") throws -> [String: TreeRecord] {
        var out: [String: TreeRecord] = [:]
        let prefix = root.isEmpty ? "" : "/" + root
        var queue: [(UInt32, String)] = [(try fs.resolve(prefix.isEmpty ? "/" : prefix), "")]
        var head = 0
        while head < queue.count {
            let (dir, rel) = queue[head]
            head += 1
            for entry in try fs.list(inode: dir) where entry.name != "." && entry.name != ".." {
                if rel.isEmpty && entry.name == "lost+found" { continue }
                let path = rel.isEmpty ? entry.name : rel + "/" + entry.name
                let st = try fs.stat(inode: entry.inode)
                var record = TreeRecord(type: Int(st.kind.modeBits), mode: "0o" + String(st.permissions, radix: 8), userXattrs: [:])
                if st.kind == .regular {
                    record.size = st.size
                    record.sha256 = SHA256Hasher.hash(try fs.readFile(inode: entry.inode)).encoded
                }
                if st.kind == .symlink { record.target = try fs.readSymlink(prefix + "/" + path) }
                for (name, value) in try fs.xattrs(inode: entry.inode) where name.hasPrefix("user.") {
                    record.userXattrs[name] = value.map { String(format: "%02x", $0) }.joined()
                }
                out[path] = record
                if st.kind == .directory { queue.append((entry.inode, path)) }
            }
        }
        return out
    }

    /// Where a rootless umoci unpack records the owners it could not set.
    static let rootlessOwners = "user.rootlesscontainers"

    /// treelist.py's listing of a directory on disk.
    static func list(_ directory: String) throws -> [String: TreeRecord] {
        let run = try ProcessRunner().run("python3", [KilnPackage.root + "/scripts/lib/treelist.py", directory])
        try #require(run.status == 0, "treelist: \(run.stderr)")
        let json = try JSONSerialization.jsonObject(with: run.standardOutput) as? [String: [String: Any]] ?? [:]
        return json.mapValues { r in
            TreeRecord(type: r["type"] as? Int ?? 0, mode: r["mode"] as? String ?? "", size: (r["size"] as? Int).map { UInt64($0) },
                       sha256: r["sha256"] as? String, target: r["target"] as? String,
                       userXattrs: (r["xattrs"] as? [String: String] ?? [:]).filter { $0.key.hasPrefix("user.") && $0.key != rootlessOwners })
        }
    }

    /// Merges overlayfs snapshot trees, lowest first, as the kernel presents them: a character device 0/0 hides
    /// the path below it, an opaque directory (`trusted.overlay.opaque=y`) hides what lower layers put in it.
    static func merge(_ layers: [(tree: [String: TreeRecord], whiteouts: Set<String>, opaque: Set<String>)]) -> [String: TreeRecord] {
        var merged: [String: TreeRecord] = [:]
        func removeTree(_ path: String) {
            merged[path] = nil
            for key in merged.keys where key.hasPrefix(path + "/") { merged[key] = nil }
        }
        for layer in layers {
            for dir in layer.opaque { for key in merged.keys where key.hasPrefix(dir + "/") { merged[key] = nil } }
            for path in layer.whiteouts { removeTree(path) }
            for (path, record) in layer.tree where !layer.whiteouts.contains(path) {
                if let lower = merged[path], lower.type != record.type { removeTree(path) }
                merged[path] = record
            }
        }
        return merged
    }
}

@Suite("The bake: layers applied as umoci unpacks them, file map, exit statuses",
       .requires(Requirement.tool("umoci", install: "apt-get install umoci"), Requirement.tool("python3")))
struct BakeTests {
    static let plainImage = "oci:\(KilnPackage.fixtures)/example-oci:app:v1-plain"

    func bake(_ source: String, layout: Recipe.Layout, size: Recipe.VolumeSize = .automatic, into dir: TemporaryDirectory) throws -> Bake.Result {
        var recipe = Recipe(name: "test", platforms: [try Platform(parsing: "linux/amd64")], images: [.init(source: source, names: ["example.com/app:v1"])],
                            layout: layout, size: size)
        recipe.fileDigest = false
        return try Bake(recipe: recipe, outputDirectory: dir.path("out"), sourceDateEpoch: 1_700_000_000).run()
    }

    func umociTree(_ tag: String, in dir: TemporaryDirectory) throws -> [String: TreeRecord] {
        let unpack = try ProcessRunner().run("umoci", ["unpack", "--rootless", "--image", "\(KilnPackage.fixtures)/example-oci:\(tag)", dir.path("bundle")])
        try #require(unpack.status == 0, "umoci: \(unpack.output)")
        return try Trees.list(dir.path("bundle/rootfs"))
    }

    func expectSameTree(_ ours: [String: TreeRecord], _ theirs: [String: TreeRecord], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ours.count > 10, sourceLocation: sourceLocation)
        let onlyOurs = Set(ours.keys).subtracting(theirs.keys).sorted()
        let onlyTheirs = Set(theirs.keys).subtracting(ours.keys).sorted()
        #expect(onlyOurs.isEmpty && onlyTheirs.isEmpty, "only kiln: \(onlyOurs); only umoci: \(onlyTheirs)", sourceLocation: sourceLocation)
        for (path, record) in ours.sorted(by: { $0.key < $1.key }) {
            guard let other = theirs[path] else { continue }
            #expect(record == other, "\(path): kiln \(record), umoci \(other)", sourceLocation: sourceLocation)
        }
    }

    @Test func flattenedLayersMatchUmoci() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try bake(Self.plainImage, layout: .rootfs, into: dir)
        let ours = try Trees.read(EXT4Reader(path: result.imagePath))
        expectSameTree(ours, try umociTree("app:v1-plain", in: dir))
    }

    @Test func overlaySnapshotsStackToWhatUmociUnpacks() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try bake(Self.plainImage, layout: .containerd, into: dir)
        let fs = try EXT4Reader(path: result.imagePath)
        let ids = try #require(result.images.first?.snapshotIDs)
        #expect(ids.count == 3)
        var layers: [(tree: [String: TreeRecord], whiteouts: Set<String>, opaque: Set<String>)] = []
        for id in ids {
            let root = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/\(id)/fs"
            let tree = try Trees.read(fs, under: root)
            var whiteouts: Set<String> = []
            var opaque: Set<String> = []
            for (path, record) in tree {
                if record.type == 0o020000, try fs.stat("/" + root + "/" + path).device == EXT4.DeviceNumber(major: 0, minor: 0) {
                    whiteouts.insert(path)
                }
                if record.type == 0o040000, try fs.xattrs("/" + root + "/" + path)["trusted.overlay.opaque"] == Array("y".utf8) {
                    opaque.insert(path)
                }
            }
            #expect(!tree.keys.contains { $0.split(separator: "/").last?.hasPrefix(".wh.") == true }, "no whiteout file survives in snapshot \(id)")
            layers.append((tree, whiteouts, opaque))
        }
        #expect(layers.contains { !$0.whiteouts.isEmpty }, "the fixture's update layer deletes files")
        #expect(layers.contains { !$0.opaque.isEmpty }, "the fixture's update layer has an opaque directory")
        expectSameTree(Trees.merge(layers), try umociTree("app:v1-plain", in: dir))
    }

    @Test func fileMapNamesThePartitionTableAndTheFilesystemMetadata() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try bake(Self.plainImage, layout: .bottlerocket, into: dir)
        let manifest = try SnapshotManifest.load(path: result.manifestPath)
        let regions = Dictionary(uniqueKeysWithValues: manifest.files.regions.map { ($0.name, $0.blocks) })
        let table = try #require(regions["partition table"])
        let lastBlock = (result.imageFileSize - 1) / 524_288
        #expect(table.runs.contains { $0.contains(0) }, "the MBR and primary GPT are in block 0")
        #expect(table.runs.contains { $0.contains(lastBlock) }, "the backup GPT is in the last block")
        let metadata = try #require(regions["ext4 metadata"])
        // The superblock is at byte 1 MiB + 1024: block 2.
        #expect(metadata.runs.contains { $0.contains(2) })
        // Every written block belongs to something the map names.
        var owned = Set<UInt64>()
        for r in manifest.files.regions { for run in r.blocks.runs { owned.formUnion(run) } }
        for l in manifest.files.layers { for run in l.blocks.runs { owned.formUnion(run) } }
        for e in manifest.files.entries { for run in e.blocks.runs { owned.formUnion(run) } }
        for run in manifest.files.unlistedBlocks.runs { owned.formUnion(run) }
        let digests = try BlockDigestFile.load(path: manifest.sidecarPath(manifestPath: result.manifestPath)).file.entries
        let unowned = digests.map(\.index).filter { !owned.contains($0) }
        #expect(unowned.isEmpty, "written blocks no file-map entry names: \(unowned.prefix(10))")
    }
}

@Suite("Bake failures carry their exit status")
struct BakeExitStatusTests {
    func bake(_ source: String, size: Recipe.VolumeSize = .automatic, output: String) -> Bake.Error? {
        do {
            let recipe = Recipe(name: "t", platforms: [try Platform(parsing: "linux/amd64")], images: [.init(source: source)],
                                layout: .bottlerocket, size: size)
            _ = try Bake(recipe: recipe, outputDirectory: output, sourceDateEpoch: 0).run()
            return nil
        } catch let e as Bake.Error {
            return e
        } catch {
            Issue.record("untyped error \(error)")
            return nil
        }
    }

    /// A copy of the example layout with one blob removed or altered.
    func damagedLayout(_ dir: TemporaryDirectory, _ damage: (String) throws -> Void) throws -> String {
        let layout = dir.path("layout")
        let copy = try ProcessRunner().run("cp", ["-a", KilnPackage.fixtures + "/example-oci", layout])
        try #require(copy.status == 0)
        // app:v1-plain's update layer (L1) is the smallest uncompressed blob of its manifest.
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let manifests = index?["manifests"] as? [[String: Any]] ?? []
        let plain = try #require(manifests.first { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == "app:v1-plain" })
        let digest = try #require((plain["digest"] as? String)?.split(separator: ":").last.map(String.init))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + digest))) as? [String: Any]
        let layers = manifest?["layers"] as? [[String: Any]] ?? []
        let layer = try #require((layers[1]["digest"] as? String)?.split(separator: ":").last.map(String.init))
        try damage(layout + "/blobs/sha256/" + layer)
        return "oci:\(layout):app:v1-plain"
    }

    @Test func aMissingLayerBlobIsAFailedCheck() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = try damagedLayout(dir) { try FileManager.default.removeItem(atPath: $0) }
        let error = try #require(bake(source, output: dir.path("out")))
        #expect(error.exitStatus == .verificationFailed, "\(error)")
        #expect(error.description.contains("layer 1"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("out/data.img")))
        #expect(!FileManager.default.fileExists(atPath: dir.path("out/.data.img.partial")))
    }

    @Test func aLayerWhoseBytesDoNotMatchIsAFailedCheck() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = try damagedLayout(dir) { path in
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: path))
        }
        let error = try #require(bake(source, output: dir.path("out")))
        #expect(error.exitStatus == .verificationFailed, "\(error)")
    }

    @Test func aVolumeTooSmallNamesVolumeSize() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let error = try #require(bake("oci:\(KilnPackage.fixtures)/example-oci:app:v1-plain", size: .bytes(9 << 20), output: dir.path("out")))
        #expect(error.exitStatus == .input, "\(error)")
        #expect(error.description.hasPrefix("volume.size: "), "\(error)")
    }

    @Test func aSourceThatIsNotThereIsAnInputError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let error = try #require(bake("oci:\(dir.path("nothing")):x", output: dir.path("out")))
        #expect(error.exitStatus == .input, "\(error)")
        #expect(error.description.contains("images[0]"))
    }

    @Test func anOutputThatCannotBeCreatedIsTheEnvironments() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.path("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let error = try #require(bake("oci:\(KilnPackage.fixtures)/example-oci:app:v1-plain", output: file + "/out"))
        #expect(error.exitStatus == .environment, "\(error)")
        #expect(error.description.contains(file))
    }
}
