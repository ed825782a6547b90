import Foundation
import KilnTestSupport
import Testing

/// What `kiln bake` records about its image: the whole-file digest (only with `--file-digest`, checked against
/// coreutils' sha256sum), the block digests taken as the image was written, and the phase times of the summary.
@Suite struct BakeManifestTests {
    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func bake(into dir: String, _ extra: [String] = []) throws -> ProcessResult {
        try run(kilnBinary, ["bake", "--source", "oci:\(fixtures)/example-oci:app:v1", "--platform", "linux/amd64",
                             "-o", dir] + extra, environment: ["SOURCE_DATE_EPOCH": "1700000000"])
    }

    @Test func wholeFileDigestIsRecordedOnlyWhenAskedFor() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let with = try bake(into: dir + "/with", ["--json", "--file-digest"])
        #expect(with.status == 0, "\(with.stderr)")
        let without = try bake(into: dir + "/without")
        #expect(without.status == 0, "\(without.stderr)")

        // The same image either way; the digest is sha256sum's.
        #expect(try run("cmp", [dir + "/with/data.img", dir + "/without/data.img"]).status == 0)
        let sum = String(try run("sha256sum", [dir + "/with/data.img"]).stdout.prefix(64))
        let recorded = try #require(try Self.json(dir + "/with/manifest.json")["volume"] as? [String: Any])
        #expect(recorded["sha256"] as? String == "sha256:" + sum)
        let bare = try #require(try Self.json(dir + "/without/manifest.json")["volume"] as? [String: Any])
        #expect(bare["sha256"] == nil)
        #expect(bare["size"] as? Int == recorded["size"] as? Int)
        #expect(try Self.json(dir + "/without/manifest.json")["blocks"] as? NSDictionary
                    == (try Self.json(dir + "/with/manifest.json")["blocks"] as? NSDictionary))

        // The summary names each phase.
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(with.stdout.utf8)) as? [String: Any])
        let phases = try #require(summary["phases"] as? [String: Double])
        #expect(Set(phases.keys) == ["layers", "content", "filesystem", "sync", "manifest"])
        #expect(without.stdout.contains("manifest ") && without.stdout.contains("layers "))
        // Most written blocks were hashed while the image was written, and the count is the manifest's.
        let written = try #require(summary["writtenBlocks"] as? Int)
        let early = try #require(summary["blocksHashedWhileWriting"] as? Int)
        #expect(written == (try Self.json(dir + "/with/manifest.json")["blocks"] as? [String: Any])?["written"] as? Int)
        let blocks = try #require((try Self.json(dir + "/with/manifest.json")["blocks"] as? [String: Any])?["count"] as? Int)
        #expect(early > 0 && early <= blocks, "\(early) of \(written) written, \(blocks) in all")
        #expect(without.stdout.contains("hashed while the image was written"), "\(without.stdout)")

        // Verify and inspect say what is and is not recorded; --file-digest still computes it.
        #expect(try kiln("verify", dir + "/without/data.img").status == 0)
        let full = try kiln("verify", "--file-digest", dir + "/without/data.img")
        #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
        #expect(full.stdout.contains("sha256:\(sum)") && full.stdout.contains("records none"), "\(full.stdout)")
        let checked = try kiln("verify", "--file-digest", dir + "/with/data.img")
        #expect(checked.status == 0 && checked.stdout.contains("file sha256 matches"), "\(checked.stdout)")
        #expect(try kiln("inspect", dir + "/without/manifest.json").stdout.contains("not recorded"))
        #expect(try kiln("verify", dir + "/without/manifest.json").status == 0)
    }

    /// Whether python3 can import jsonschema, probed once.
    static let hasJSONSchema = (try? run("python3", ["-c", "import jsonschema"]).status) == 0

    /// A manifest without the whole-file digest is still a valid manifest.
    @Test(.requires(Requirement("python3-jsonschema (apt-get install python3-jsonschema)", isMet: hasJSONSchema)))
    func manifestWithoutTheFileDigestFitsTheSchema() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let without = try bake(into: dir + "/without")
        try #require(without.status == 0, "\(without.stderr)")
        let r = try validateJSON(schema: packageRoot + "/docs/manifest.schema.json", document: dir + "/without/manifest.json")
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// A layer blob that cannot fit the volume's explicit size is refused before anything is unpacked: exit 2, a
    /// message naming volume.size, and no image left behind.
    @Test func blobLargerThanTheVolumeIsAnInputError() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        try run("python3", ["-c", """
            import tarfile, io, os, sys
            with tarfile.open(sys.argv[1], 'w') as t:
                data = os.urandom(14 << 20)
                i = tarfile.TarInfo('noise'); i.size = len(data); t.addfile(i, io.BytesIO(data))
            """, dir + "/big.tar"])
        try run("python3", [packageRoot + "/scripts/lib/mklayout.py", dir + "/layout", "big", "--gzip", dir + "/big.tar"])
        let r = try run(kilnBinary, ["bake", "-q", "--source", "oci:\(dir)/layout:big", "--size", "12MiB", "-o", dir + "/out"])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("volume.size") && r.stderr.contains("needs"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/data.img"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/.data.img.partial"))
        // Without the blob in the content store it still does not fit: the layer expands beyond the volume's size.
        // That is the recipe's to fix (exit 2), not a broken input.
        let bare = try run(kilnBinary, ["bake", "-q", "--source", "oci:\(dir)/layout:big", "--size", "12MiB", "--no-layer-blobs", "-o", dir + "/out"])
        // Whichever comes first names the volume's size: the layer reaching it, or the filesystem filling up.
        #expect(bare.status == 2, "\(bare.stderr)")
        #expect(bare.stderr.contains("volume.size: ")
                    && (bare.stderr.contains("expands beyond 12582912 bytes") || bare.stderr.contains("content needs")), "\(bare.stderr)")
        #expect(!bare.stderr.contains("digests"), "\(bare.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/data.img"))
        // kiln verify of the same layout is not bounded by any volume: the layer is sound.
        #expect(try kiln("verify", "oci:\(dir)/layout:big").status == 0)
    }

    /// The recipe can ask for the digest (`manifest.fileDigest: true`) or say it is not wanted; the command line
    /// overrides it either way.
    @Test func recipeDecidesAndTheCommandLineOverrides() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let recipe = dir + "/recipe.yaml"
        try """
            name: nodigest
            platform: linux/amd64
            images:
              - source: oci:\(fixtures)/example-oci:app:v1
            manifest:
              fileDigest: false
            """.write(toFile: recipe, atomically: true, encoding: .utf8)
        let env = ["SOURCE_DATE_EPOCH": "1700000000"]
        #expect(try run(kilnBinary, ["bake", "-q", recipe, "-o", dir + "/a"], environment: env).status == 0)
        #expect((try Self.json(dir + "/a/manifest.json")["volume"] as? [String: Any])?["sha256"] == nil)
        #expect(try run(kilnBinary, ["bake", "-q", recipe, "--file-digest", "-o", dir + "/b"], environment: env).status == 0)
        let sum = String(try run("sha256sum", [dir + "/b/data.img"]).stdout.prefix(64))
        #expect((try Self.json(dir + "/b/manifest.json")["volume"] as? [String: Any])?["sha256"] as? String == "sha256:" + sum)
        try String(contentsOfFile: recipe, encoding: .utf8).replacingOccurrences(of: "fileDigest: false", with: "fileDigest: true")
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        // (The recipe's bytes changed, so the image did too: its UUID follows the recipe's digest.)
        #expect(try run(kilnBinary, ["bake", "-q", recipe, "-o", dir + "/d"], environment: env).status == 0)
        let sumD = String(try run("sha256sum", [dir + "/d/data.img"]).stdout.prefix(64))
        #expect((try Self.json(dir + "/d/manifest.json")["volume"] as? [String: Any])?["sha256"] as? String == "sha256:" + sumD)
        #expect(try run(kilnBinary, ["bake", "-q", recipe, "--no-file-digest", "-o", dir + "/e"], environment: env).status == 0)
        #expect((try Self.json(dir + "/e/manifest.json")["volume"] as? [String: Any])?["sha256"] == nil)
        // A misspelt section is an input error, not silently ignored.
        try String(contentsOfFile: recipe, encoding: .utf8).replacingOccurrences(of: "manifest:", with: "manifests:")
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let bad = try run(kilnBinary, ["bake", "-q", recipe, "-o", dir + "/c"], environment: env)
        #expect(bad.status == 2 && bad.stderr.contains("unknown key 'manifests' (did you mean 'manifest'?)"), "\(bad.stderr)")
    }
}
