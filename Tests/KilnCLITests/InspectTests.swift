import Foundation
import KilnTestSupport
import Testing

/// `kiln inspect` of image sources, checked against skopeo (an independent reader).
@Suite struct InspectTests {
    func inspect(_ source: String) throws -> [[String: Any]] {
        let r = try kiln("inspect", "--json", "--platform", "linux/amd64", source)
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return obj?["images"] as? [[String: Any]] ?? []
    }

    @Test(.requires(tools: "skopeo"),
          arguments: ["oci:\(fixtures)/example-oci:app:v1-plain", "oci:\(fixtures)/example-oci:app:v1-zstd",
                      "oci:\(fixtures)/example-oci:app:v1", "oci-archive:\(fixtures)/example-oci-archive.tar"])
    func digestsMatchSkopeo(source: String) throws {
        let ours = try #require(try inspect(source).first)
        let r = try run("skopeo", ["--override-os", "linux", "--override-arch", "amd64", "inspect", source])
        #expect(r.status == 0, "\(r.stderr)")
        let theirs = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        let layers = (ours["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        #expect(layers == theirs["Layers"] as? [String])
        let manifest = (ours["manifest"] as? [String: Any])?["digest"] as? String
        let indexes = (ours["indexes"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        // skopeo reports the digest of what the reference names: the index for multi-platform tags.
        #expect((indexes.first ?? manifest) == theirs["Digest"] as? String)
    }

    @Test func blocksOfASidecarTheManifestDoesNotVouchForAreFlagged() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = dir.path("out")
        #expect(try kiln("bake", "-q", fixtures + "/recipe.yaml", "-o", out).status == 0)
        let clean = try kiln("inspect", out + "/manifest.json", "--blocks")
        #expect(clean.status == 0 && !clean.stderr.contains("warning"), "\(clean)")
        let sidecar = try FileHandle(forUpdating: URL(fileURLWithPath: out + "/manifest.blocks"))
        try sidecar.seek(toOffset: 40)
        try sidecar.write(contentsOf: [0x5A])
        try sidecar.close()
        let r = try kiln("inspect", out + "/manifest.json", "--blocks")
        #expect(r.status == 0, "\(r)")
        #expect(r.stderr.contains("kiln: warning: \(out)/manifest.blocks has sha256") && r.stderr.contains("not the digests the manifest vouches for"), "\(r)")
    }

    @Test func reportsChainIDsSizesAndEntries() throws {
        let image = try #require(try inspect("oci:\(fixtures)/example-oci:app:v1-plain").first)
        let layers = image["layers"] as? [[String: Any]] ?? []
        #expect(layers.count == 3)
        // For uncompressed layers the stored bytes are the tar: sizes must agree, and digest == diffID.
        for l in layers {
            #expect(l["digest"] as? String == l["diffID"] as? String)
            #expect(l["size"] as? Int == l["uncompressedSize"] as? Int)
            #expect((l["entries"] as? Int ?? 0) > 0)
        }
        #expect(layers[0]["chainID"] as? String == layers[0]["diffID"] as? String)
        #expect(layers[1]["chainID"] as? String != layers[1]["diffID"] as? String)
        // Entry counts agree with tar's own listing of the blob.
        let digest = (layers[2]["digest"] as? String ?? "").replacingOccurrences(of: "sha256:", with: "")
        let listing = try run("tar", ["-tf", "\(fixtures)/example-oci/blobs/sha256/\(digest)"])
        #expect(listing.stdout.split(separator: "\n").count == layers[2]["entries"] as? Int)
    }

    @Test func legacyDockerArchiveGetsAManifest() throws {
        let image = try #require(try inspect("docker-archive:\(fixtures)/example-docker-legacy.tar").first)
        #expect(image["synthesizedManifest"] as? Bool == true)
        #expect((image["names"] as? [String] ?? []).contains { $0.contains("app:v1") })
    }
}
