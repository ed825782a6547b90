import Foundation
import KilnTestSupport
import Testing

/// Every `--json` report validates against its schema under docs/schemas/ (checked by python3-jsonschema, an
/// independent validator), in success and in failure, with the exit status the text output has.
@Suite struct JSONSchemaTests {
    /// A command, the schema its `--json` output follows, and the exit status it must have.
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var schema: String
        var arguments: [String]
        var status: Int32
        var description: String { name }
    }

    /// Outputs are made in one directory for the suite: a bake, a damaged copy of it, a hostile layout.
    static let work: String = {
        let dir = NSTemporaryDirectory() + "kiln-schemas-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        _ = try? run("/bin/bash", ["-c", """
            set -e
            python3 scripts/lib/hostile-layers.py "$1/hostile"
            SOURCE_DATE_EPOCH=1700000000 "$2" bake -q fixtures/recipe.yaml -o "$1/out" > /dev/null
            SOURCE_DATE_EPOCH=1700000000 "$2" bake -q --source oci:fixtures/example-oci:tools:1.0 -o "$1/tools" > /dev/null
            SOURCE_DATE_EPOCH=1700000000 "$2" bake -q fixtures/recipe.yaml -o "$1/rebaked" --base "$1/tools" > /dev/null
            cp -r "$1/out" "$1/bad"
            printf 'X' | dd of="$1/bad/data.img" bs=1 seek=$((1048576 + 4096 * 40)) conv=notrunc 2>/dev/null
            """, "-", dir, kilnBinary], cwd: packageRoot)
        return dir
    }()

    static let cases: [Case] = [
        Case(name: "bake", schema: "bake", arguments: ["bake", "-q", "--json", "fixtures/recipe.yaml", "-o", "{work}/fresh"], status: 0),
        Case(name: "bake rootfs", schema: "bake",
             arguments: ["bake", "-q", "--json", "--source", "oci:fixtures/example-oci:app:v1", "--layout", "rootfs",
                         "--platform", "linux/amd64", "--no-file-digest", "-o", "{work}/rootfs"], status: 0),
        Case(name: "bake --base", schema: "bake", arguments: ["bake", "-q", "--json", "fixtures/recipe.yaml", "-o", "{work}/rebake", "--base", "{work}/tools"], status: 0),
        Case(name: "inspect rebaked manifest", schema: "inspect-manifest", arguments: ["inspect", "--json", "{work}/rebaked/manifest.json"], status: 0),
        Case(name: "bake --dry-run", schema: "bake-dry-run", arguments: ["bake", "--dry-run", "--json", "fixtures/recipe.yaml"], status: 0),
        Case(name: "verify source", schema: "verify-source", arguments: ["verify", "-q", "--json", "oci:fixtures/example-oci:app:v1"], status: 0),
        Case(name: "verify every platform", schema: "verify-source",
             arguments: ["verify", "-q", "--json", "--all-platforms", "oci:fixtures/example-oci:app:v1", "docker-archive:fixtures/example-docker-legacy.tar"], status: 0),
        Case(name: "verify damaged source", schema: "verify-source", arguments: ["verify", "-q", "--json", "oci:{work}/hostile:refuse-gzip-crc"], status: 1),
        Case(name: "verify source with warnings", schema: "verify-source", arguments: ["verify", "-q", "--json", "oci:{work}/hostile:accepted"], status: 0),
        Case(name: "verify volume", schema: "verify-volume", arguments: ["verify", "-q", "--json", "{work}/out/data.img"], status: 0),
        Case(name: "verify damaged volume", schema: "verify-volume", arguments: ["verify", "-q", "--json", "{work}/bad/data.img"], status: 1),
        Case(name: "inspect source", schema: "inspect-source", arguments: ["inspect", "--json", "oci:fixtures/example-oci:app:v1"], status: 0),
        Case(name: "inspect docker archive", schema: "inspect-source", arguments: ["inspect", "--json", "docker-archive:fixtures/example-docker-legacy.tar"], status: 0),
        Case(name: "inspect manifest", schema: "inspect-manifest", arguments: ["inspect", "--json", "{work}/out/manifest.json"], status: 0),
        Case(name: "inspect image", schema: "inspect-image", arguments: ["inspect", "--json", "{work}/out/data.img"], status: 0),
        Case(name: "plan", schema: "plan", arguments: ["plan", "--json", "--manifest", "{work}/out/manifest.json"], status: 0),
        Case(name: "emit karpenter", schema: "emit",
             arguments: ["emit", "karpenter", "--manifest", "{work}/out/manifest.json", "--snapshot-id", "snap-0123456789abcdef0", "--json"], status: 0),
        Case(name: "emit launch-template", schema: "emit",
             arguments: ["emit", "launch-template", "--volume-size", "300Gi", "--snapshot-id", "snap-0123456789abcdef0", "--rate", "none", "--json"], status: 0),
        Case(name: "plan infeasible by the recipe", schema: "plan", arguments: ["plan", "--json", "fixtures/recipe.yaml", "--manifest", "{work}/out/manifest.json"], status: 1),
    ]

    @Test(.requires(Requirement("python3-jsonschema (apt-get install python3-jsonschema)", isMet: BakeManifestTests.hasJSONSchema)),
          arguments: cases)
    func reportFitsItsSchema(_ c: Case) throws {
        let arguments = c.arguments.map { $0.replacingOccurrences(of: "{work}", with: Self.work) }
        let r = try run(kilnBinary, arguments, cwd: packageRoot)
        #expect(r.status == c.status, "\(c.name): exit \(r.status): \(r.stderr)")
        let output = Self.work + "/\(c.name.replacingOccurrences(of: " ", with: "-")).json"
        try Data(r.stdout.utf8).write(to: URL(fileURLWithPath: output))
        let check = try validateJSON(schema: packageRoot + "/docs/schemas/\(c.schema).schema.json", document: output)
        #expect(check.status == 0, "\(c.name): \(check.stderr.suffix(2000))")
        // The text output of the same command exits the same way.
        let text = try run(kilnBinary, arguments.filter { $0 != "--json" }.map { $0.hasSuffix("/fresh") ? $0 + "-text" : $0 }
                            .map { $0.hasSuffix("/rootfs") ? $0 + "-text" : $0 }, cwd: packageRoot)
        #expect(text.status == c.status, "\(c.name) without --json: exit \(text.status)")
    }

    @Test("a manifest baked with --base fits docs/manifest.schema.json, base and placement included",
          .requires(Requirement("python3-jsonschema (apt-get install python3-jsonschema)", isMet: BakeManifestTests.hasJSONSchema)))
    func rebakedManifestFitsTheSchema() throws {
        let path = Self.work + "/rebaked/manifest.json"
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        #expect(m["base"] != nil && m["placement"] != nil, "\(m.keys.sorted())")
        let check = try validateJSON(schema: packageRoot + "/docs/manifest.schema.json", document: path)
        #expect(check.status == 0, "\(check.stderr.suffix(2000))")
    }

    /// A schema that did not constrain anything would pass every output: each one must refuse a document that
    /// lacks its required top-level keys.
    @Test(.requires(Requirement("python3-jsonschema (apt-get install python3-jsonschema)", isMet: BakeManifestTests.hasJSONSchema)),
          arguments: ["bake", "bake-dry-run", "verify-source", "verify-volume", "verify-snapshot", "inspect-source", "inspect-manifest", "inspect-image", "plan", "upload", "emit"])
    func schemasRefuseAnEmptyReport(_ schema: String) throws {
        let check = try run("python3", ["-c", """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            assert schema.get("required"), "no required keys"
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors({}))
            assert errors, "an empty report validates"
            """, packageRoot + "/docs/schemas/\(schema).schema.json"])
        #expect(check.status == 0, "\(schema): \(check.stderr)")
    }
}
