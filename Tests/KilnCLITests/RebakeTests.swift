import Foundation
import KilnTestSupport
import Testing

/// `kiln bake --base`: what changes between two bakes, counted independently (the two images compared block by
/// block), bounded by what the changed content needs, and the rebaked filesystem checked by e2fsck. The images
/// come from scripts/lib/rebake-images.py: a 1 GiB base layer and a 50 MB application layer.
@Suite("kiln bake --base: incremental bakes", .serialized, .requires(.kilnBinary), .requires(tools: "e2fsck"))
struct RebakeTests {
    static let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
    static let blockSize = 524_288

    /// The layout, built once for the suite.
    static let layout: Result<String, LayoutError> = {
        let dir = "/tmp/kiln-rebake-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: "/tmp/kiln-rebake-\(getpid())") }
        do {
            let r = try run("python3", [packageRoot + "/scripts/lib/rebake-images.py", dir + "/oci", "1024", "50"])
            guard r.succeeded else { return .failure(LayoutError(description: "rebake-images.py: \(r)")) }
            return .success(dir)
        } catch {
            return .failure(LayoutError(description: "rebake-images.py: \(error)"))
        }
    }()

    static func bake(_ arguments: [String]) throws -> ProcessResult {
        try run(kilnBinary, ["bake", "-q", "--layout", "containerd"] + arguments, environment: epoch)
    }

    static func manifest(_ out: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any] ?? [:]
    }

    /// 512 KiB blocks whose bytes differ between two images (the shorter one read as zeros past its end).
    static func differingBlocks(_ a: String, _ b: String) throws -> Int {
        let r = try run("python3", [packageRoot + "/scripts/lib/block-diff.py", a, b])
        return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// The manifest's base record, checked against an independent count of the blocks that differ.
    static func changes(_ base: String, _ out: String) throws -> (changed: Int, kept: Int) {
        let m = try manifest(out)
        let b = m["base"] as? [String: Any] ?? [:]
        let changed = b["changedBlocks"] as? Int ?? -1
        #expect(changed == (try differingBlocks(base + "/data.img", out + "/data.img")), "\(b)")
        #expect(try run("e2fsck", ["-fn", out + "/data.img"]).succeeded, "e2fsck -fn \(out)")
        return (changed, b["keptInodes"] as? Int ?? 0)
    }

    /// Blocks of 512 KiB that `bytes` fills.
    static func blocks(_ bytes: Int) -> Int { (bytes + blockSize - 1) / blockSize }

    /// The blocks the layer at `index` of the manifest's first image needs: its blob and its unpacked files.
    static func layerBlocks(_ out: String, image: Int = 0, layer index: Int) throws -> Int {
        let images = try manifest(out)["images"] as? [[String: Any]] ?? []
        let layers = images[image]["layers"] as? [[String: Any]] ?? []
        let layer = layers[index]
        return blocks(layer["size"] as? Int ?? 0) + blocks(layer["uncompressedSize"] as? Int ?? 0)
    }

    @Test("a new top layer on a 1 GiB base changes at most 1.1x the blocks its blob and snapshot need, plus 8 MiB; baked twice, byte-identical")
    func topLayer() throws {
        let root = try Self.layout.get()
        let oci = root + "/oci"
        let v1 = root + "/top-v1", v2 = root + "/top-v2", again = root + "/top-v2-again"
        defer { for d in [v1, v2, again] { try? FileManager.default.removeItem(atPath: d) } }
        try #require(try Self.bake(["--source", "oci:\(oci):v1", "--name", "example.com/app:1", "-o", v1]).succeeded)
        let r = try Self.bake(["--source", "oci:\(oci):v2-top", "--name", "example.com/app:1", "-o", v2, "--base", v1])
        try #require(r.succeeded, "\(r)")
        let (changed, kept) = try Self.changes(v1, v2)
        let needed = try Self.layerBlocks(v2, layer: 1)
        #expect(changed <= needed * 11 / 10 + 16, "\(changed) blocks changed; the new layer needs \(needed)")
        #expect(changed >= needed / 2, "\(changed) blocks changed, fewer than the new layer's data can take (\(needed))")
        #expect(kept > 200, "\(kept) inodes kept")
        // Never more than the same bake without the base (which also gets a new UUID, so every metadata block moves).
        let fresh = root + "/top-fresh"
        defer { try? FileManager.default.removeItem(atPath: fresh) }
        try #require(try Self.bake(["--source", "oci:\(oci):v2-top", "--name", "example.com/app:1", "-o", fresh]).succeeded)
        let withoutBase = try Self.differingBlocks(v1 + "/data.img", fresh + "/data.img")
        #expect(changed < withoutBase, "\(changed) blocks changed with the base, \(withoutBase) without")
        // The same inputs and base give the same bytes.
        try #require(try Self.bake(["--source", "oci:\(oci):v2-top", "--name", "example.com/app:1", "-o", again, "--base", v1 + "/manifest.json"]).succeeded)
        for file in ["data.img", "manifest.json", "manifest.layout", "manifest.changes", "manifest.blocks"] {
            #expect(try run("cmp", [v2 + "/" + file, again + "/" + file]).succeeded, "\(file) differs between two bakes")
        }
        // The old image is not needed: only its manifest and sidecars.
        try FileManager.default.removeItem(atPath: v1 + "/data.img")
        try #require(try Self.bake(["--source", "oci:\(oci):v2-top", "--name", "example.com/app:1", "-o", again, "--base", v1]).succeeded)
        #expect(try run("cmp", [v2 + "/data.img", again + "/data.img"]).succeeded)
    }

    @Test("a changed bottom layer, an added image and a removed one: each changes little more than its own data")
    func otherChanges() throws {
        let root = try Self.layout.get()
        let oci = root + "/oci"
        let dirs = ["one", "bottom", "two", "removed"].map { root + "/" + $0 }
        defer { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
        let (one, bottom, two, removed) = (dirs[0], dirs[1], dirs[2], dirs[3])
        let app = ["--source", "oci:\(oci):v1", "--name", "example.com/app:1"]
        let tools = ["--source", "oci:\(oci):tools", "--name", "example.com/tools:1"]
        try #require(try Self.bake(app + ["-o", one]).succeeded)

        // Bottom layer: 5 files of the base rewritten and a 10 MB file added. The unchanged files, and the unchanged
        // stretches of the new blob, stay where they were; the layer above is found again by its diffID.
        let r1 = try Self.bake(["--source", "oci:\(oci):v2-bottom", "--name", "example.com/app:1", "-o", bottom, "--base", one])
        try #require(r1.succeeded, "\(r1)")
        let b = try Self.changes(one, bottom)
        let rewritten = 2 * Self.blocks(10 << 20) + 2 * 5 * 2
        #expect(b.changed <= rewritten * 11 / 10 + 16, "bottom layer: \(b.changed) blocks changed (bound from \(rewritten))")

        // An image added: its own layer (blob and snapshot) plus metadata.
        let r2 = try Self.bake(app + tools + ["-o", two, "--base", one])
        try #require(r2.succeeded, "\(r2)")
        let a = try Self.changes(one, two)
        let toolsLayer = try Self.layerBlocks(two, image: 1, layer: 1)
        #expect(a.changed <= toolsLayer * 11 / 10 + 16, "added image: \(a.changed) blocks changed; its layer needs \(toolsLayer)")

        // The image removed again: its blocks become zero, nothing else moves.
        let r3 = try Self.bake(app + ["-o", removed, "--base", two])
        try #require(r3.succeeded, "\(r3)")
        let d = try Self.changes(two, removed)
        #expect(d.changed <= toolsLayer * 11 / 10 + 16, "removed image: \(d.changed) blocks changed; its layer had \(toolsLayer)")
        #expect(try Self.differingBlocks(one + "/data.img", removed + "/data.img") <= 16, "removing what was added does not come back to the first bake")
    }

    @Test("a base that cannot be kept is refused with exit 2 naming why; --base-optional bakes without it and says so")
    func refusals() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = ["--source", "oci:\(fixtures)/example-oci:tools:1.0"]
        try #require(try run(kilnBinary, ["bake", "-q", "--layout", "rootfs"] + source + ["-o", dir.path("rootfs")], environment: Self.epoch).succeeded)
        let other = try Self.bake(source + ["-o", dir.path("a"), "--base", dir.path("rootfs")])
        #expect(other.status == 2 && other.stderr.contains("rootfs volume") && !FileManager.default.fileExists(atPath: dir.path("a/data.img")), "\(other)")
        let optional = try Self.bake(source + ["-o", dir.path("a"), "--base", dir.path("rootfs"), "--base-optional"])
        #expect(optional.succeeded && optional.stderr.contains("baking without a base"), "\(optional)")
        #expect(try Self.manifest(dir.path("a"))["base"] == nil)

        try #require(try Self.bake(source + ["-o", dir.path("b")]).succeeded)
        let size = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("b"), "--size", "1GiB"])
        #expect(size.status == 2 && size.stderr.contains("geometry cannot be kept"), "\(size)")
        let inPlace = try Self.bake(source + ["-o", dir.path("b"), "--base", dir.path("b")])
        #expect(inPlace.status == 2 && inPlace.stderr.contains("output directory"), "\(inPlace)")
        #expect(FileManager.default.fileExists(atPath: dir.path("b/manifest.json")), "the refused bake removed its base")
        let missing = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("nothing-here")])
        #expect(missing.status == 2 && missing.stderr.contains("no manifest"), "\(missing)")
        // A damaged placement record is caught by its digest.
        let layout = dir.path("b/manifest.layout")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: layout))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: layout))
        let damaged = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("b")])
        #expect(damaged.status == 2 && damaged.stderr.contains("manifest.layout") && damaged.stderr.contains("sha256"), "\(damaged)")
        try FileManager.default.removeItem(atPath: layout)
        let gone = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("b")])
        #expect(gone.status == 2 && gone.stderr.contains("is missing"), "\(gone)")
        // A FIFO or a link to a device in its place would block or never end: refused from the open alone.
        try #require(mkfifo(layout, 0o600) == 0)
        let fifo = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("b")])
        #expect(fifo.status == 2 && fifo.stderr.contains("is a special file, not a regular file"), "\(fifo)")
        try FileManager.default.removeItem(atPath: layout)
        try FileManager.default.createSymbolicLink(atPath: layout, withDestinationPath: "/dev/zero")
        let link = try Self.bake(source + ["-o", dir.path("c"), "--base", dir.path("b")])
        #expect(link.status == 2 && link.stderr.contains("is a symbolic link, not a regular file"), "\(link)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("c/data.img")), "a refused bake left an image")
    }
}
