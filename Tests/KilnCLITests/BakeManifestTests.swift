import Foundation
import Testing

/// What `kiln bake` records about its image: the whole-file digest (on by default, checked against coreutils'
/// sha256sum) or its absence with `--no-file-digest`, and the phase times of the summary.
@Suite struct BakeManifestTests {
    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func bake(into dir: String, _ extra: [String] = []) throws -> RunResult {
        try run(kilnBinary, ["bake", "--source", "oci:\(fixtures)/example-oci:app:v1", "--platform", "linux/amd64",
                             "-o", dir] + extra, environment: ["SOURCE_DATE_EPOCH": "1700000000"])
    }

    @Test func wholeFileDigestIsRecordedUnlessAskedNotTo() throws {
        let dir = try makeTempDirectory()
        defer { cleanup(dir) }
        let with = try bake(into: dir + "/with", ["--json"])
        #expect(with.status == 0, "\(with.stderr)")
        let without = try bake(into: dir + "/without", ["--no-file-digest"])
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
        #expect(Set(phases.keys) == ["layers", "content", "filesystem", "manifest"])
        #expect(without.stdout.contains("manifest ") && without.stdout.contains("layers "))

        // Verify and inspect say what is and is not recorded; --file-digest still computes it.
        #expect(try kiln("verify", dir + "/without/data.img").status == 0)
        let full = try kiln("verify", "--file-digest", dir + "/without/data.img")
        #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
        #expect(full.stdout.contains("sha256:\(sum)") && full.stdout.contains("records none"), "\(full.stdout)")
        let checked = try kiln("verify", "--file-digest", dir + "/with/data.img")
        #expect(checked.status == 0 && checked.stdout.contains("file sha256 matches"), "\(checked.stdout)")
        #expect(try kiln("inspect", dir + "/without/manifest.json").stdout.contains("not recorded"))
        #expect(try kiln("verify", dir + "/without/manifest.json").status == 0)

        // Still a valid manifest.
        if hasTool("python3"), (try? run("python3", ["-c", "import jsonschema"]).status) == 0 {
            let r = try run("python3", ["-c", """
                import json, sys, jsonschema
                jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))
                """, packageRoot + "/docs/manifest.schema.json", dir + "/without/manifest.json"])
            #expect(r.status == 0, "\(r.stderr)")
        }
    }
}
