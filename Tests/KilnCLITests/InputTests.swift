import Foundation
import KilnPlan
import KilnTestSupport
import Testing

/// What a user sees for bad input, through the built binary: one parser for quantities, strict recipes, exit
/// codes by type.
@Suite struct InputTests {
    func dryRun(_ arguments: [String]) throws -> [String: Any] {
        let r = try kiln(["bake", "--dry-run", "--json"] + arguments)
        try #require(r.status == 0, "\(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }

    @Test func bakeAndPlanReadSizesAlike() throws {
        let source = "oci:\(fixtures)/example-oci:app:v1"
        #expect(try dryRun(["--source", source, "--size", "20Gi"])["size"] as? String == "21474836480")
        #expect(try dryRun(["--source", source, "--size", "64M"])["size"] as? String == "64000000")
        #expect(try dryRun(["--source", source, "--size", "64MiB"])["size"] as? String == "67108864")
        for size in ["20G", "20Gi", "20GB", "20GiB"] {
            let plan = try kiln(["plan", "--written-bytes", size, "--json", "-q"])
            #expect(plan.status == 0, "\(size): \(plan.stderr)")
        }
        let bad = try kiln(["bake", "--source", source, "--size", "1,5G", "--dry-run"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--size: '1,5G' is ambiguous"), "\(bad.stderr)")
    }

    /// A tar source whose pax header claims Int64.max bytes is refused as an input error naming the archive and
    /// the member, not an arithmetic trap.
    @Test func aPaxSizeOfInt64MaxIsAnInputError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tar = dir.path("x.tar")
        let script = """
            import tarfile, io, sys
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
                i = tarfile.TarInfo('index.json'); i.size = 2; i.pax_headers = {'size': '9223372036854775807'}
                t.addfile(i, io.BytesIO(b'{}'))
            """
        let made = try run("/usr/bin/python3", ["-c", script, tar])
        try #require(made.status == 0, "\(made)")
        let r = try kiln(["verify", tar])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("\(tar) is truncated inside member 'index.json'"), "\(r.stderr)")
    }

    @Test func aMisspelledNestedKeyStopsTheBake() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let recipe = dir.path("r.yaml")
        try Data("images:\n  - source: oci:\(fixtures)/example-oci:app:v1\nvolume: {keepLayerblobs: false, sizee: 1GiB}\n".utf8)
            .write(to: URL(fileURLWithPath: recipe))
        let r = try kiln(["bake", recipe, "-o", dir.path("out")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown key 'volume.keepLayerblobs' (did you mean 'keepLayerBlobs'?)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("out/data.img")))
    }

    @Test func theDryRunResolvesSourcesBesideTheRecipe() throws {
        let resolved = try dryRun(["\(packageRoot)/recipes/inference.yaml"])
        let images = resolved["images"] as? [[String: Any]] ?? []
        #expect(!images.isEmpty)
        for image in images {
            let path = image["path"] as? String ?? ""
            #expect(path.hasPrefix("/") && FileManager.default.fileExists(atPath: path), "\(image)")
        }
        #expect((resolved["plan"] as? [String: String])?["deadline"] != nil)
    }

    @Test func everyPlanOptionIsOnTheCommandLine() throws {
        let help = try kiln(["plan", "--help"]).stdout
        for option in PlanOption.allCases {
            #expect(help.contains(option.flag + " "), "kiln plan --help lacks \(option.flag)")
        }
    }

    @Test(arguments: [
        (["verify", "/nonexistent/layout"], Int32(2)),
        (["bake", "--sourc", "x"], Int32(2)),
        (["bake", "/nonexistent/recipe.yaml", "-o", "/tmp/kiln-never"], Int32(2)),
        (["plan", "--written-bytes", "20G", "--deadline", "7x"], Int32(2)),
        (["emit", "karpenter", "--volume-size", "200", "--snapshot-id", "snap-0123456789abcdef0"], Int32(2)),
    ])
    func exitCodes(arguments: [String], expected: Int32) throws {
        let r = try kiln(arguments)
        #expect(r.status == expected, "\(arguments): \(r.stderr)")
        #expect(!r.stderr.isEmpty)
    }
}
