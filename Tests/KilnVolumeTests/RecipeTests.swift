import Foundation
import KilnCore
import KilnPlan
import KilnTestSupport
import Testing

@testable import KilnVolume

@Suite("Recipes: one strict reader")
struct RecipeTests {
    static let image = "  - source: oci:\(KilnPackage.fixtures)/example-oci:app:v1\n"

    func load(_ yaml: String) throws -> Recipe {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("recipe.yaml")
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        return try Recipe(path: path)
    }

    /// The recipe error `yaml` gives, or nil.
    func failure(_ yaml: String) -> Recipe.Error? {
        do {
            _ = try load(yaml)
            return nil
        } catch let e as Recipe.Error {
            return e
        } catch {
            return nil
        }
    }

    @Test func theBundledRecipeReadsAsWritten() throws {
        let recipe = try Recipe(path: KilnPackage.fixtures + "/recipe.yaml")
        #expect(recipe.name == "example")
        #expect(recipe.images.count == 2)
        #expect(recipe.layout == .bottlerocket)
        #expect(recipe.platforms.map(\.description) == ["linux/amd64"])
        #expect(recipe.plan[.deadline]?.text == "7m")
        #expect(recipe.plan[.volumesPerMinute]?.text == "200")
        #expect(recipe.digest != nil)
    }

    @Test(arguments: [
        ("volume: {keepLayerblobs: false}\n", "volume.keepLayerblobs", "keepLayerBlobs"),
        ("volume:\n  sizee: 1GiB\n", "volume.sizee", "size"),
        ("imgaes: []\n", "imgaes", "images"),
        ("manifest: {filedigest: false}\n", "manifest.filedigest", "fileDigest"),
        ("plan:\n  deadlin: 7m\n", "plan.deadlin", "deadline"),
    ])
    func unknownKeysAreNamedWithTheirPathAndTheClosestKey(extra: String, key: String, closest: String) throws {
        let error = try #require(failure("images:\n\(Self.image)" + extra))
        guard case .unknownKey(_, let k, let c, _) = error else {
            Issue.record("expected an unknown key, got \(error)")
            return
        }
        #expect(k == key)
        #expect(c == closest)
        #expect(error.description.contains("unknown key '\(key)' (did you mean '\(closest)'?)"))
        #expect(error.exitStatus == .input)
    }

    @Test func unknownKeysInsideListItemsAreNamedByIndex() throws {
        let error = try #require(failure("images:\n\(Self.image)  - source: x\n    nmes: [a]\n"))
        #expect(error.description.contains("'images[1].nmes'"))
    }

    @Test func aKeyFarFromEveryValidOneListsThemAll() throws {
        let error = try #require(failure("images:\n\(Self.image)zzzzzzzzzz: 1\n"))
        #expect(error.description.contains("valid keys: name, platform"))
    }

    @Test(arguments: [
        ("volume:\n  size: 1.5\n", "volume.size"),
        ("volume:\n  size: -1G\n", "volume.size"),
        ("volume:\n  size: 1P\n", "volume.size"),
        ("volume:\n  layout: ext4\n", "volume.layout"),
        ("volume:\n  keepLayerBlobs: yes\n", "volume.keepLayerBlobs"),
        ("volume:\n  namespace: 'k8s io'\n", "volume.namespace"),
        ("volume: [a]\n", "volume"),
        ("platform: a/b/c/d\n", "platform"),
        ("name: [a, b]\n", "name"),
    ])
    func badValuesNameTheirKey(extra: String, key: String) throws {
        let error = try #require(failure("images:\n\(Self.image)" + extra))
        #expect(error.description.contains(key), "\(error)")
        #expect(error.exitStatus == .input)
    }

    @Test func duplicateKeysAreRefused() throws {
        let error = try #require(failure("images:\n\(Self.image)volume:\n  size: 1G\n  size: 2G\n"))
        guard case .duplicateKey(_, let key) = error else {
            Issue.record("expected a duplicate key, got \(error)")
            return
        }
        #expect(key == "volume.size")
    }

    @Test func planValuesAreReadAtLoadAndNamedByKey() throws {
        let error = try #require(failure("images:\n\(Self.image)plan:\n  deadline: 7x\n"))
        #expect(error.description.hasPrefix("plan.deadline in "), "\(error)")
        #expect(error.exitStatus == .input)
    }

    @Test func planPathsAreRelativeToTheRecipe() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("r.yaml")
        try Data("plan:\n  manifest: out/manifest.json\n  models: /abs/models.txt\n".utf8).write(to: URL(fileURLWithPath: path))
        let recipe = try Recipe(path: path)
        #expect(recipe.plan[.manifest]?.text == URL(fileURLWithPath: dir.path).appendingPathComponent("out/manifest.json").path)
        #expect(recipe.plan[.models]?.text == "/abs/models.txt")
        #expect(recipe.images.isEmpty, "a plan-only recipe reads; the bake refuses it")
    }

    @Test(arguments: [("auto", nil), ("64M", 64_000_000), ("64Mi", 64 << 20), ("20GiB", 20 << 30), ("20G", 20_000_000_000)] as [(String, UInt64?)])
    func sizesUseTheOneParser(text: String, bytes: UInt64?) throws {
        let recipe = try load("images:\n\(Self.image)volume:\n  size: \(text)\n")
        #expect(recipe.size == (bytes.map { .bytes($0) } ?? .automatic))
    }

    @Test func missingAndEmptyFiles() throws {
        #expect(throws: Recipe.Error.notFound("/nonexistent/recipe.yaml")) { try Recipe(path: "/nonexistent/recipe.yaml") }
        let error = try #require(failure(""))
        guard case .malformed = error else {
            Issue.record("expected malformed, got \(error)")
            return
        }
    }
}
