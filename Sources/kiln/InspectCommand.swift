import ArgumentParser
import Foundation
import KilnDigest
import KilnLayer
import KilnOCI
import KilnRegistry

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe images: names, platforms, digests, layers, sizes, diffIDs, chainIDs, entry counts.",
        discussion: """
            SOURCE: oci:PATH[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REPO:TAG], or a plain path. \
            Layers are read once each to count entries and uncompressed bytes.

            A baked volume: `kiln inspect manifest.json` summarises it (images, layers, sizes, written bytes, \
            checksum; --blocks, --files for the details); `kiln inspect data.img` shows the partition and ext4 \
            basics and the manifest beside it.
            """
    )

    @Argument(help: ArgumentHelp("What to inspect.", valueName: "source"))
    var source: String

    @OptionGroup var platformOptions: PlatformOptions
    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Registry sources (docker://)") var registry: RegistryCLIOptions

    @Flag(name: .long, help: "For a manifest or disk image: list every written block with its sha256.")
    var blocks = false

    @Flag(name: .long, help: "For a manifest or disk image: list the file map (files, layers, metadata regions).")
    var files = false

    func run() async throws {
        // A baked volume's manifest or disk image, rather than an image source.
        if let volume = VolumeInput.detect(source) {
            return try InspectVolume(input: volume, blocks: blocks, files: files, report: report).run()
        }
        let remote = source.hasPrefix("docker://") ? try registry.opener() : nil
        let resolution = try SourceLoader.resolve(source, platforms: try platformOptions.platforms(), allPlatforms: platformOptions.allPlatforms,
                                                  remote: remote)
        let results = ImageVerifier.verify(resolution.images, resolutionProblems: resolution.problems)
        let model = InspectReport(results, problems: resolution.problems)
        if report.json {
            try printJSON(model)
        } else {
            printText(model)
        }
    }

    func printText(_ model: InspectReport) {
        for image in model.images {
            print("\(image.names.isEmpty ? "(untagged)" : image.names.joined(separator: ", "))  \(image.platform)")
            print("  source    \(image.source)")
            for d in image.indexes { print("  index     \(d.digest) (\(d.size) B)") }
            print("  manifest  \(image.manifest.digest) (\(image.manifest.size) B\(image.synthesizedManifest ? ", built by kiln: the archive has none" : ""))")
            print("  config    \(image.config.digest) (\(image.config.size) B)")
            print("  layers    \(image.layers.count), \(formatBytes(image.storedSize)) stored, \(formatBytes(image.uncompressedSize)) uncompressed")
            for l in image.layers {
                let kind = l.mediaType.split(separator: ".").last.map(String.init) ?? l.mediaType
                let unc = l.uncompressedSize.map(formatBytes) ?? "?"
                let entries = l.entries.map(String.init) ?? "?"
                print("  [\(l.index)] \(kind)  \(formatBytes(l.size)) -> \(unc), \(entries) entries")
                print("      digest  \(l.digest)")
                print("      diffID  \(l.diffID)")
                print("      chainID \(l.chainID)")
            }
            for p in image.problems { print("  WARNING: \(p)") }
            print("")
        }
        for p in model.orphanProblems { print("WARNING: \(p)") }
    }
}

/// `kiln inspect --json` for image sources.
struct InspectReport: Encodable {
    struct Blob: Encodable {
        var mediaType: String
        var digest: String
        var size: Int64
    }
    struct Layer: Encodable {
        var index: Int
        var mediaType: String
        var digest: String
        var size: Int64
        var diffID: String
        var chainID: String
        var uncompressedSize: Int64?
        var entries: Int?
    }
    struct Image: Encodable {
        var names: [String]
        var source: String
        var platform: String
        var indexes: [Blob]
        var manifest: Blob
        var synthesizedManifest: Bool
        var config: Blob
        var imageID: String
        var storedSize: Int64
        var uncompressedSize: Int64
        var layers: [Layer]
        var problems: [Problem]
    }
    var images: [Image]
    var orphanProblems: [Problem]

    init(_ results: [ImageVerification], problems: [Problem]) {
        let names = Set(results.map(\.image.displayName))
        orphanProblems = problems.filter { !names.contains($0.image) }
        images = results.map { r in
            let img = r.image
            let chain = img.chainIDs
            let layers = img.layers.enumerated().map { i, l in
                let rep = i < r.layerReports.count ? r.layerReports[i] : nil
                return Layer(index: i, mediaType: l.descriptor.mediaType, digest: l.descriptor.digest.description,
                             size: l.descriptor.size, diffID: l.diffID.description, chainID: chain[i].description,
                             uncompressedSize: rep?.uncompressedSize, entries: rep?.entryCount)
            }
            func blob(_ d: Descriptor) -> Blob { Blob(mediaType: d.mediaType, digest: d.digest.description, size: d.size) }
            return Image(
                names: img.names, source: img.source.description, platform: img.platform.description,
                indexes: img.indexChain.map(blob), manifest: blob(img.manifestDescriptor),
                synthesizedManifest: img.synthesizedManifest, config: blob(img.manifest.config),
                imageID: img.manifest.config.digest.description,
                storedSize: layers.reduce(0) { $0 + $1.size },
                uncompressedSize: layers.reduce(0) { $0 + ($1.uncompressedSize ?? 0) },
                layers: layers, problems: r.problems)
        }
    }
}
