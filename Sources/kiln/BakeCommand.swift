import ArgumentParser
import Foundation
import KilnOCI
import KilnVolume

struct Bake: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bake images into a data volume image (data.img) and its manifest.",
        discussion: """
            With a RECIPE (YAML), the recipe says which images, platforms and layout. Without one, \
            --source (repeatable) names the images. Every layer's digest and diffID are checked while it streams \
            into the volume; a mismatch stops the bake with exit 1 and no data.img is left behind.

            Times kiln has to make up come from SOURCE_DATE_EPOCH (default 0), so the same inputs give the same bytes.
            """
    )

    @Argument(help: ArgumentHelp("A recipe file (YAML).", valueName: "recipe"))
    var recipePath: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Directory for data.img and manifest.json.", valueName: "dir"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("An image source (without a recipe; repeatable).", valueName: "source"))
    var source: [String] = []

    @Option(name: .long, help: ArgumentHelp("A reference to record for the image (without a recipe; repeatable, applies to the first source).", valueName: "ref"))
    var name: [String] = []

    @Option(name: .long, help: "Volume layout: rootfs, containerd or bottlerocket (overrides the recipe).")
    var layout: String?

    @Option(name: .long, help: "Volume size: auto, or e.g. 20GiB (overrides the recipe).")
    var size: String?

    @Option(name: .long, help: ArgumentHelp("Platform (repeatable; overrides the recipe; default: this machine's).", valueName: "os/arch[/variant]"))
    var platform: [String] = []

    @Flag(name: .long, inversion: .prefixedNo, help: "Keep compressed layer blobs in containerd's content store (overrides the recipe; default: keep). Without them the volume holds only what runs: the unpacked snapshots.")
    var layerBlobs: Bool?

    @Option(name: .long, help: "containerd namespace for the images (overrides the recipe; default k8s.io, the one kubelet uses).")
    var namespace: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Record the sha256 of the whole image file in the manifest (overrides the recipe's manifest.fileDigest; default: record). It is sequential and starts only once the image is complete, so on a large image it is the longest part of the bake's hashing; the per-block digests identify the content without it, and `kiln verify --file-digest` computes it on demand.")
    var fileDigest: Bool?

    @OptionGroup var report: ReportOptions

    func makeRecipe() throws -> Recipe {
        var recipe: Recipe
        if let recipePath {
            guard source.isEmpty else { throw CLIFailure.input("give either a recipe or --source, not both") }
            do { recipe = try Recipe(path: recipePath) } catch { throw CLIFailure.input("\(error)") }
        } else {
            guard !source.isEmpty else { throw CLIFailure.input("give a recipe file or at least one --source") }
            let images = source.enumerated().map { i, s in Recipe.Image(source: s, names: i == 0 && !name.isEmpty ? name : nil) }
            recipe = Recipe(name: "kiln", platforms: [Platform.host], images: images, layout: .bottlerocket, size: .automatic)
        }
        if let layout {
            guard let l = Recipe.Layout(rawValue: layout) else {
                throw CLIFailure.input("--layout: '\(layout)' is not a layout (rootfs, containerd, bottlerocket)")
            }
            recipe.layout = l
        }
        if let size {
            do { recipe.size = try Recipe.VolumeSize(parsing: size) } catch { throw CLIFailure.input("--size: '\(size)' is not a size (auto, 20GiB, 500MB)") }
        }
        if let layerBlobs { recipe.keepLayerBlobs = layerBlobs }
        if let fileDigest { recipe.fileDigest = fileDigest }
        if let namespace {
            guard !namespace.isEmpty, namespace.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }) else {
                throw CLIFailure.input("--namespace: '\(namespace)' is not a valid containerd namespace")
            }
            recipe.namespace = namespace
        }
        if !platform.isEmpty {
            recipe.platforms = try platform.map { p in
                do { return try Platform(parsing: p) } catch { throw CLIFailure.input("--platform: \(error)") }
            }
        }
        return recipe
    }

    func run() async throws {
        let recipe = try makeRecipe()
        var epoch: Int64 = 0
        if let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !text.isEmpty {
            guard let v = Int64(text), v >= 0 else { throw CLIFailure.input("SOURCE_DATE_EPOCH: '\(text)' is not a number of seconds") }
            epoch = v
        }
        let quiet = report.quiet || report.json
        var bake = KilnVolume.Bake(recipe: recipe, outputDirectory: output, sourceDateEpoch: epoch)
        bake.progress = { line in Console.progress(line, quiet: quiet) }
        let started = Date()
        let result: KilnVolume.Bake.Result
        do {
            result = try bake.run()
        } catch let e as KilnVolume.Bake.Error {
            switch e {
            case .verification(let problems):
                for p in problems { Console.error(p.description) }
                throw CLIFailure(message: "bake stopped: the input does not match its digests; no data.img was written", code: 1)
            case .input(let m): throw CLIFailure.input(m)
            case .io(let m): throw CLIFailure.io(m)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let fs = result.filesystem
        if report.json {
            try printJSON(BakeSummary(image: result.imagePath, manifest: result.manifestPath, layout: recipe.layout.rawValue,
                                      imageBytes: result.imageFileSize, filesystemBytes: fs.byteSize,
                                      usedBlocks: fs.usedBlocks, images: result.images.count,
                                      layers: result.images.reduce(0) { $0 + $1.layerReports.count }, seconds: (seconds * 1000).rounded() / 1000,
                                      phases: Dictionary(result.phases.map { ($0.name, ($0.seconds * 1000).rounded() / 1000) }, uniquingKeysWith: +)))
        } else {
            print("baked \(result.images.count) image\(result.images.count == 1 ? "" : "s") (\(result.images.reduce(0) { $0 + $1.layerReports.count }) layers) into \(result.imagePath)")
            print("  layout      \(recipe.layout.rawValue)")
            print("  filesystem  ext4, \(formatBytes(Int64(fs.byteSize))), \(fs.usedBlocks) of \(fs.blockCount) blocks used, \(fs.inodeCount - fs.freeInodes) inodes, uuid \(fs.uuid)")
            print("  manifest    \(result.manifestPath)")
            let phases = result.phases.map { "\($0.name) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", ")
            print("  time        \(String(format: "%.2f", seconds)) s (\(phases))")
        }
    }
}

/// `kiln bake --json`.
struct BakeSummary: Encodable {
    var image: String
    var manifest: String
    var layout: String
    var imageBytes: UInt64
    var filesystemBytes: UInt64
    var usedBlocks: UInt64
    var images: Int
    var layers: Int
    var seconds: Double
    /// Wall seconds per phase: layers, content, filesystem, manifest.
    var phases: [String: Double]
}
