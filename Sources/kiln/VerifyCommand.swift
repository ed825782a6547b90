import ArgumentParser
import Foundation
import KilnCore
import KilnDigest
import KilnLayer
import KilnOCI
import KilnRegistry

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify images offline against their digests.",
        discussion: """
            For every image selected from each SOURCE: manifest and config digests and sizes, known media types, \
            rootfs.type, each layer's size and digest, its diffID against config.rootfs.diff_ids, decompression \
            errors, truncation (undersized layer), trailing data, duplicate tar paths and missing blobs. Every \
            failure is reported, not just the first. Layers are streamed once each, in parallel.

            SOURCE: oci:PATH[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REPO:TAG], or a plain path.

            A baked volume: `kiln verify data.img [--manifest manifest.json]` checks every block of the image \
            (in parallel), which blocks are written, the LINEAR checksum and the size against the manifest and \
            its sidecar, and names the files, layers and metadata each bad block range belongs to. \
            `kiln verify manifest.json` checks the manifest and its sidecar against each other.
            An EBS snapshot: `kiln verify ebs://REGION/snap-... [--manifest manifest.json] [--download]` lists \
            the snapshot's blocks and checks that exactly the manifest's written blocks are there; --download \
            fetches each and compares its checksum and bytes with the manifest and data.img.
            Exit codes: 0 all good, 1 a mismatch was found, 2 unreadable or unsupported input, 3 I/O error.
            """
    )

    @Argument(help: ArgumentHelp("Image sources to verify.", valueName: "source"))
    var sources: [String] = []

    @OptionGroup var platformOptions: PlatformOptions
    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Registry sources (docker://)") var registry: RegistryCLIOptions

    @Option(name: .long, help: "Layers (or disk image blocks) verified at once (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: ArgumentHelp("For a disk image: the manifest to check it against (default: manifest.json beside it).", valueName: "manifest.json"))
    var manifest: String?

    @Flag(name: .long, help: "For a disk image: also recompute the sha256 of the whole file (sequential; the blocks already cover every byte).")
    var fileDigest = false

    @OptionGroup var snapshotOptions: VerifySnapshotOptions

    func run() async throws {
        // An EBS snapshot (ebs://REGION/snap-... or --snapshot) against a manifest.
        if let target = try snapshotOptions.target(sources) {
            return try await VerifyEBS(target: target, options: snapshotOptions, manifest: manifest, jobs: jobs, report: report).run()
        }
        // A baked volume's disk image or manifest, rather than an image source.
        if sources.count == 1, let volume = VolumeInput.detect(sources[0], assumeImage: manifest != nil) {
            return try VerifyVolume(input: volume, manifest: manifest, fileDigest: fileDigest, jobs: jobs, report: report).run()
        }
        if manifest != nil || fileDigest { throw CLIFailure.input("--manifest and --file-digest apply to one disk image") }
        guard !sources.isEmpty else { throw CLIFailure.input("verify: give at least one source") }
        let platforms = try platformOptions.platforms()
        let started = Date()
        var verifications: [ImageVerification] = []
        var orphanProblems: [Problem] = []
        let quiet = report.quiet || report.json
        let counter = ProgressCounter()
        let display = ProgressDisplay.start(counter, label: "verify", quiet: quiet)
        let lines = display?.style == .lines
        let remote = sources.contains { $0.hasPrefix("docker://") } ? try registry.opener(transfers: counter.transfers) : nil
        for text in sources {
            let resolution = try SourceLoader.resolve(text, platforms: platforms, allPlatforms: platformOptions.allPlatforms, remote: remote)
            let names = Set(resolution.images.map(\.displayName))
            orphanProblems += resolution.problems.filter { !names.contains($0.image) }
            counter.setItem(text)
            let results = ImageVerifier.verify(resolution.images, resolutionProblems: resolution.problems, jobs: max(1, jobs),
                                               counter: counter) { name in
                if lines { Console.progress("verified \(name)", quiet: quiet) }
            }
            verifications += results
        }
        display?.stop()
        for warning in verifications.flatMap(\.warnings) { Console.warning(warning) }
        let elapsed = Date().timeIntervalSince(started)
        let ok = orphanProblems.isEmpty && verifications.allSatisfy(\.ok)
        if report.json {
            try printJSON(VerifyReport(verifications, orphanProblems: orphanProblems, seconds: elapsed))
        } else {
            printText(verifications, orphanProblems: orphanProblems, seconds: elapsed)
        }
        if !ok { throw ExitCode(1) }
    }

    func printText(_ results: [ImageVerification], orphanProblems: [Problem], seconds: Double) {
        for p in orphanProblems { print("FAIL: \(p)") }
        var layers = 0
        var stored: Int64 = 0
        var uncompressed: Int64 = 0
        for r in results {
            let image = r.image
            layers += image.layers.count
            for rep in r.layerReports.compactMap({ $0 }) {
                stored += rep.size
                uncompressed += rep.uncompressedSize
            }
            if r.ok {
                print("PASS: \(image.displayName) \(image.platform) \(image.manifestDescriptor.digest) (\(image.layers.count) layers)")
            } else {
                for p in r.problems { print("FAIL: \(p)") }
            }
        }
        let failed = results.filter { !$0.ok }.count + (orphanProblems.isEmpty ? 0 : 1)
        let summary = "\(results.count) image\(results.count == 1 ? "" : "s"), \(layers) layers, \(formatBytes(stored)) stored, \(formatBytes(uncompressed)) uncompressed, \(String(format: "%.2f", seconds)) s"
        print(failed == 0 ? "verified \(summary): all good" : "verified \(summary): \(failed) failed")
    }
}

/// `kiln verify --json`.
struct VerifyReport: Encodable {
    struct Layer: Encodable {
        var index: Int
        var mediaType: String
        var digest: String
        var size: Int64
        var diffID: String
        var ok: Bool
        var actual: LayerReport?
    }
    struct Image: Encodable {
        var name: String
        var names: [String]
        var source: String
        var platform: String
        var manifest: String
        var config: String
        var ok: Bool
        var layers: [Layer]
        var problems: [Problem]
        /// Sound but worth a word (duplicate paths in a layer: the last wins).
        var warnings: [String]
    }
    var ok: Bool
    var seconds: Double
    var images: [Image]
    var problems: [Problem]

    init(_ results: [ImageVerification], orphanProblems: [Problem], seconds: Double) {
        images = results.map { r in
            let failing = Set(r.problems.map(\.subject))
            return Image(
                name: r.image.displayName, names: r.image.names, source: r.image.source.description,
                platform: r.image.platform.description, manifest: r.image.manifestDescriptor.digest.description,
                config: r.image.manifest.config.digest.description, ok: r.ok,
                layers: r.image.layers.enumerated().map { i, l in
                    Layer(index: i, mediaType: l.descriptor.mediaType, digest: l.descriptor.digest.description,
                          size: l.descriptor.size, diffID: l.diffID.description, ok: !failing.contains("layer \(i)"),
                          actual: i < r.layerReports.count ? r.layerReports[i] : nil)
                },
                problems: r.problems, warnings: r.warnings)
        }
        problems = orphanProblems + results.flatMap(\.problems)
        ok = problems.isEmpty
        self.seconds = (seconds * 1000).rounded() / 1000
    }
}
