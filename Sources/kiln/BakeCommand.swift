import ArgumentParser
import Foundation
import KilnCore
import KilnOCI
import KilnRegistry
import KilnPlan
import KilnVolume

struct Bake: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bake images into a data volume image (data.img) and its manifest.",
        discussion: """
            With a RECIPE (YAML), the recipe says which images, platforms and layout. Without one, \
            --source (repeatable) names the images. Every layer's digest and diffID are checked while it streams \
            into the volume; a mismatch stops the bake with exit 1 and no data.img is left behind.

            Times kiln has to make up come from SOURCE_DATE_EPOCH (default 0), so the same inputs give the same bytes.

            --dry-run reads the recipe and the options, resolves every source, and prints the recipe kiln would \
            bake (with --json, as JSON) without writing anything.
            """
    )

    @Argument(help: ArgumentHelp("A recipe file (YAML).", valueName: "recipe"))
    var recipePath: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Directory for data.img and manifest.json.", valueName: "dir"))
    var output: String?

    @Flag(name: .long, help: "Print the resolved recipe (sources, platforms, layout, size, plan defaults) and write nothing.")
    var dryRun = false

    @Option(name: .long, help: ArgumentHelp("An image source (without a recipe; repeatable).", valueName: "source"))
    var source: [String] = []

    @Option(name: .long, help: ArgumentHelp("A reference to record for the image (without a recipe; repeatable, applies to the first source).", valueName: "ref"))
    var name: [String] = []

    @Option(name: .long, help: "Volume layout: rootfs, containerd or bottlerocket (overrides the recipe).",
            completion: .list(["bottlerocket", "containerd", "rootfs"]))
    var layout: String?

    @Option(name: .long, help: "Volume size: auto, or e.g. 20GiB, 20Gi (2^30) or 20G (10^9) (overrides the recipe).")
    var size: String?

    @Option(name: .long, help: ArgumentHelp("Platform (repeatable; overrides the recipe; default: this machine's).", valueName: "os/arch[/variant]"))
    var platform: [String] = []

    @Flag(name: .long, inversion: .prefixedNo, help: "Keep compressed layer blobs in containerd's content store (overrides the recipe; default: keep). Without them the volume holds only what runs: the unpacked snapshots.")
    var layerBlobs: Bool?

    @Option(name: .long, help: "containerd namespace for the images (overrides the recipe; default k8s.io, the one kubelet uses).")
    var namespace: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Record the sha256 of the whole image file in the manifest (overrides the recipe's manifest.fileDigest; default: leave it out). It is a sequential pass over the whole image once it is complete, while the per-block digests are taken as the image is written and identify the content without it; `kiln verify --file-digest` computes it on demand.")
    var fileDigest: Bool?

    @Option(name: .long, help: ArgumentHelp("A previous bake (its output directory or its manifest.json, with manifest.layout and manifest.blocks beside it; the old data.img is not needed) whose places to keep: unchanged files, snapshots and blobs stay on the same blocks and new content fills the space of what went away, so few blocks change (overrides the recipe's volume.base). The manifest records what changed; `kiln upload` then sends only those blocks onto the base's snapshot.", valueName: "prev"))
    var base: String?

    @Flag(name: .long, help: "When the base cannot be kept (another layout, platform set or geometry, a missing or damaged sidecar), warn and bake without it instead of stopping with exit 2.")
    var baseOptional = false

    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Registry sources (docker://)") var registry: RegistryCLIOptions

    func makeRecipe() throws -> Recipe {
        var recipe: Recipe
        if let recipePath {
            guard source.isEmpty else { throw CLIFailure.input("give either a recipe or --source, not both") }
            recipe = try Recipe(path: recipePath)
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
            do { recipe.size = try Recipe.VolumeSize(parsing: size) } catch { throw CLIFailure.wrapping("--size", error) }
        }
        if let layerBlobs { recipe.keepLayerBlobs = layerBlobs }
        if let base { recipe.base = base }
        if baseOptional { recipe.baseOptional = true }
        if let fileDigest { recipe.fileDigest = fileDigest }
        if let namespace {
            guard Recipe.isValidNamespace(namespace) else {
                throw CLIFailure.input("--namespace: '\(namespace)' is not a valid containerd namespace")
            }
            recipe.namespace = namespace
        }
        if !platform.isEmpty {
            recipe.platforms = try platform.map { p in
                do { return try Platform(parsing: p) } catch { throw CLIFailure.wrapping("--platform", error) }
            }
        }
        return recipe
    }

    func run() async throws {
        let recipe = try makeRecipe()
        if dryRun { return try printResolved(recipe) }
        guard let output else { throw CLIFailure.input("give the output directory with -o DIR") }
        var epoch: Int64 = 0
        if let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !text.isEmpty {
            guard let v = Int64(text), v >= 0 else { throw CLIFailure.input("SOURCE_DATE_EPOCH: '\(text)' is not a number of seconds") }
            epoch = v
        }
        let quiet = report.quiet || report.json
        var bake = KilnVolume.Bake(recipe: recipe, outputDirectory: output, sourceDateEpoch: epoch)
        let counter = ProgressCounter()
        bake.counter = counter
        let display = ProgressDisplay.start(counter, label: "bake", quiet: quiet)
        if recipe.images.contains(where: { $0.source.hasPrefix("docker://") }) {
            do {
                bake.remote = try registry.opener(recipeCache: recipe.cache, transfers: counter.transfers,
                                                  warn: { line in display?.clear(); Console.warning(line) })
            } catch {
                display?.stop()
                throw error
            }
        }
        // A bar shows the layer being read; a CI log also gets a line per layer.
        let lines = display?.style == .lines
        bake.progress = { line in if lines { Console.progress(line, quiet: quiet) } }
        bake.warn = { line in display?.clear(); Console.warning(line) }
        let started = Date()
        let result: KilnVolume.Bake.Result
        do {
            defer { display?.stop() }
            result = try bake.run()
        } catch {
            if case .verification(let problems) = error {
                for p in problems { Console.error(p.description) }
                throw CLIFailure.failed("bake stopped: the input does not match its digests; no data.img was written")
            }
            throw error
        }
        let seconds = Date().timeIntervalSince(started)
        let fs = result.filesystem
        if report.json {
            try printJSON(BakeSummary(image: result.imagePath, manifest: result.manifestPath, layout: recipe.layout.rawValue,
                                      imageBytes: result.imageFileSize, filesystemBytes: fs.byteSize,
                                      usedBlocks: fs.usedBlocks, writtenBlocks: result.writtenBlocks,
                                      blocksHashedWhileWriting: result.blocksHashedWhileWriting, images: result.images.count,
                                      layers: result.images.reduce(0) { $0 + $1.layerReports.count }, seconds: (seconds * 1000).rounded() / 1000,
                                      phases: Dictionary(result.phases.map { ($0.name, ($0.seconds * 1000).rounded() / 1000) }, uniquingKeysWith: +),
                                      base: result.changes.map { c in
                                          BakeSummary.Base(manifest: result.base?.manifestPath ?? "", changedBlocks: c.changedBlocks,
                                                           changedBytes: c.changedBytes, unchangedBlocks: c.unchangedBlocks,
                                                           keptInodes: c.keptInodes)
                                      }))
        } else {
            print("baked \(result.images.count) image\(result.images.count == 1 ? "" : "s") (\(result.images.reduce(0) { $0 + $1.layerReports.count }) layers) into \(result.imagePath)")
            print("  layout      \(recipe.layout.rawValue)")
            print("  filesystem  ext4, \(formatBytes(Int64(fs.byteSize))), \(fs.usedBlocks) of \(fs.blockCount) blocks used, \(fs.inodeCount - fs.freeInodes) inodes, uuid \(fs.uuid)")
            print("  manifest    \(result.manifestPath)")
            print("  blocks      \(result.writtenBlocks) written (512 KiB), \(result.blocksHashedWhileWriting) hashed while the image was written")
            if let c = result.changes, let b = result.base {
                print("  base        \(b.manifestPath): \(c.changedBlocks) blocks changed (\(formatBytes(Int64(c.changedBytes)))), \(c.unchangedBlocks) unchanged, \(c.keptInodes) inodes kept in place")
            }
            let phases = result.phases.map { "\($0.name) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", ")
            print("  time        \(String(format: "%.2f", seconds)) s (\(phases))")
        }
    }
}

extension Bake {
    /// `kiln bake --dry-run`: the recipe as kiln reads it, every source resolved.
    func printResolved(_ recipe: Recipe) throws {
        var images: [ResolvedRecipe.Image] = []
        for (i, image) in recipe.images.enumerated() {
            let source: ImageSource
            do {
                source = try recipe.source(of: image)
                guard FileManager.default.fileExists(atPath: source.path) else { throw ImageSource.Error.notFound(source.path) }
            } catch {
                throw CLIFailure.wrapping("images[\(i)]", error)
            }
            let path = source.path.hasPrefix("/") ? source.path : FileManager.default.currentDirectoryPath + "/" + source.path
            images.append(.init(source: image.source, kind: source.kind.rawValue, path: URL(fileURLWithPath: path).standardizedFileURL.path,
                                reference: source.reference, names: image.names ?? []))
        }
        var size: String
        switch recipe.size {
        case .automatic: size = "auto"
        case .bytes(let n): size = String(n)
        }
        let resolved = ResolvedRecipe(
            name: recipe.name, path: recipe.path, digest: recipe.digest?.description,
            platforms: recipe.platforms.map(\.description), images: images, layout: recipe.layout.rawValue, size: size,
            keepLayerBlobs: recipe.keepLayerBlobs, namespace: recipe.namespace, fileDigest: recipe.fileDigest,
            base: recipe.base, baseOptional: recipe.baseOptional,
            plan: Dictionary(uniqueKeysWithValues: recipe.plan.settings.map { ($0.key.rawValue, $0.value.text) }))
        if report.json { return try printJSON(resolved) }
        print("recipe      \(recipe.name)\(recipe.path.map { " (\($0))" } ?? "")")
        print("platforms   \(resolved.platforms.joined(separator: ", "))")
        for image in images {
            print("image       \(image.kind):\(image.path)\(image.reference.map { ":\($0)" } ?? "")\(image.names.isEmpty ? "" : " as \(image.names.joined(separator: ", "))")")
        }
        print("volume      layout \(resolved.layout), size \(size)\(size == "auto" ? "" : " bytes"), namespace \(resolved.namespace), layer blobs \(resolved.keepLayerBlobs ? "kept" : "left out")")
        print("manifest    whole-file sha256 \(resolved.fileDigest ? "recorded" : "left out")")
        if let base = recipe.base { print("base        \(base)\(recipe.baseOptional ? " (optional)" : "")") }
        for key in resolved.plan.keys.sorted() { print("plan        \(key): \(resolved.plan[key] ?? "")") }
    }
}

/// `kiln bake --dry-run --json`: the recipe as kiln reads it.
struct ResolvedRecipe: Encodable {
    struct Image: Encodable {
        /// As written in the recipe.
        var source: String
        /// `oci`, `oci-archive` or `docker-archive`.
        var kind: String
        /// Absolute.
        var path: String
        var reference: String?
        var names: [String]
    }
    var name: String
    var path: String?
    var digest: String?
    var platforms: [String]
    var images: [Image]
    var layout: String
    /// `auto` or bytes.
    var size: String
    var keepLayerBlobs: Bool
    var namespace: String
    var fileDigest: Bool
    /// The previous bake to keep places from (`--base`, `volume.base`), and whether baking without it is allowed.
    var base: String?
    var baseOptional: Bool
    /// `plan:` values as written, paths resolved against the recipe's directory.
    var plan: [String: String]
}

/// `kiln bake --json`.
struct BakeSummary: Encodable {
    var image: String
    var manifest: String
    var layout: String
    var imageBytes: UInt64
    var filesystemBytes: UInt64
    var usedBlocks: UInt64
    var writtenBlocks: UInt64
    var blocksHashedWhileWriting: UInt64
    var images: Int
    var layers: Int
    var seconds: Double
    /// Wall seconds per phase: layers, content, filesystem, manifest.
    var phases: [String: Double]
    /// With `--base`: the base's manifest and what changed relative to it.
    var base: Base?

    struct Base: Encodable {
        var manifest: String
        var changedBlocks: UInt64
        var changedBytes: UInt64
        var unchangedBlocks: UInt64
        var keptInodes: UInt64
    }
}
