import Foundation
import KilnTestSupport
import Testing

/// Image metadata that would make kiln read something other than the image: refused (exit 2; a failed check,
/// exit 1, in `kiln verify`'s report), naming the file and the rule.
@Suite struct ImageMetadataTests {
    /// A layout whose layer blob is a symlink to a file outside it (with the right bytes, so that only the
    /// link itself can be refused).
    @Test func aSymlinkedBlobIsRefused() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let edit = try LayoutEditor(copying: fixtures + "/example-oci", into: scratch.path)
        let manifest = try edit.json(try edit.manifestDigest(tag: "app:v1-plain"))
        let layer = try #require((manifest["layers"] as? [[String: Any]])?.first?["digest"] as? String)
        let blob = edit.blobPath(layer)
        let outside = scratch.path("outside-the-layout")
        try FileManager.default.moveItem(atPath: blob, toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: outside)
        let r = try kiln("verify", "-q", "--platform", "linux/amd64", "oci:\(edit.root):app:v1-plain")
        // verify reports it as a failed check of that layer; bake refuses it as input.
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("FAIL") && r.stdout.contains(blob) && r.stdout.contains("is a symbolic link"), "\(r.stdout)")
        let bake = try kiln("bake", "-q", "--source", "oci:\(edit.root):app:v1-plain", "--platform", "linux/amd64",
                            "-o", scratch.path("out"))
        #expect(bake.status == 2 && bake.stderr.contains("is a symbolic link"), "\(bake.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/data.img")))
    }

    /// A docker-save archive whose manifest.json names a layer with `..` or an absolute path.
    @Test(arguments: ["../", "/"])
    func archivePathsThatLeaveTheArchiveAreRefused(prefix: String) throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let edited = scratch.path("edited.tar")
        let script = """
            import json, sys, tarfile, io
            src, dst, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
            with tarfile.open(src) as t, tarfile.open(dst, "w") as out:
                for m in t.getmembers():
                    data = t.extractfile(m).read() if m.isfile() else None
                    if m.name == "manifest.json":
                        doc = json.loads(data)
                        doc[0]["Layers"][0] = prefix + doc[0]["Layers"][0]
                        data = json.dumps(doc).encode()
                        m.size = len(data)
                    out.addfile(m, io.BytesIO(data) if data is not None else None)
            """
        try #require(try run("python3", ["-c", script, fixtures + "/example-docker-legacy.tar", edited, prefix]).status == 0)
        let r = try kiln("verify", "-q", "docker-archive:\(edited)")
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("manifest.json") && r.stderr.contains("is not a path inside the archive"), "\(r.stderr)")
    }

    /// Documents two readers could read differently, made consistent up the tree so that only the shape check
    /// can catch them.
    @Test(arguments: ["case-variant", "repeated-key", "index-and-manifest", "media-type"])
    func ambiguousDocumentsAreRefused(kind: String) throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let edit = try LayoutEditor(copying: fixtures + "/example-oci", into: scratch.path)
        let digest = try edit.manifestDigest(tag: "app:v1-plain")
        var manifest = try edit.json(digest)
        let words: String
        switch kind {
        case "case-variant":
            // containerd would unpack the layers of `Layers` (the last, case-insensitively); Swift reads `layers`.
            manifest["Layers"] = []
            words = "differ only in case"
        case "repeated-key":
            words = "key 'layers' is given twice"
        case "index-and-manifest":
            manifest["manifests"] = []
            words = "both a manifest"
        default:
            manifest["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
            words = "but its descriptor says"
        }
        var bytes = try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])
        if kind == "repeated-key" {
            // Foundation would read the first `layers` (none), Go the last (the real ones).
            let text = String(decoding: bytes, as: UTF8.self)
            try #require(text.contains("\"layers\":["))
            bytes = Data(text.replacingOccurrences(of: "\"layers\":[", with: "\"layers\":[],\"layers\":[").utf8)
        }
        try edit.replace(digest, with: bytes)
        let r = try kiln("verify", "-q", "--platform", "linux/amd64", "oci:\(edit.root):app:v1-plain")
        #expect(r.status == 2, "\(kind): \(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("manifest sha256:") && r.stderr.contains(words), "\(kind): \(r.stderr)")
    }
}
