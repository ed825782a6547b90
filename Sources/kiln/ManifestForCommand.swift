import ArgumentParser
import Foundation
import KilnCore
import KilnDisk
import KilnManifest

/// `kiln manifest-for IMAGE -o DIR`: a manifest and sidecar for an image kiln did not bake (benchmarks, and
/// images made by other tools). Hidden from help: a bake writes its own, richer manifest.
struct ManifestFor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest-for",
        abstract: "Hash an existing disk image and write manifest.json and its block digest sidecar.",
        discussion: """
            The manifest records the image's blocks, LINEAR checksum, sha256, partition and ext4 basics, and the \
            partition tables and superblock as metadata regions; it lists no images and no files, and no recipe \
            digest. createdAt comes from SOURCE_DATE_EPOCH (default 0).
            """,
        shouldDisplay: false
    )

    @Argument(help: ArgumentHelp("The disk image.", valueName: "image"))
    var image: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Directory for manifest.json and manifest.blocks (default: the image's).", valueName: "dir"))
    var output: String?

    @Option(name: .long, help: "Layout to record (default: what the image looks like: bottlerocket, gpt, ext4 or unknown).")
    var layout: String?

    @Option(name: .long, help: "Recipe name to record (default: the image's file name).")
    var name: String?

    @Option(name: .long, help: "Threads hashing blocks (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var report: ReportOptions

    func run() async throws {
        do {
            guard FileManager.default.fileExists(atPath: image) else { throw CLIFailure.input("image '\(image)' does not exist") }
            let directory = output ?? URL(fileURLWithPath: image).deletingLastPathComponent().path
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CLIFailure.io("cannot create '\(directory)': \(error.localizedDescription)")
            }
            let epoch: Int64
            do { epoch = try ManifestTimestamp.sourceDateEpoch(environment: ProcessInfo.processInfo.environment) ?? 0 } catch {
                throw CLIFailure.input("\(error)")
            }
            let probe = try VolumeProbe(path: image)
            var map = FileMapInput()
            map.regions += probe.partitionTableRanges.map { FileMapInput.Region(name: "partition table", ranges: [.init(offset: $0.offset, length: $0.length)]) }
            if let fs = probe.filesystem {
                map.addRegion(name: "\(fs.type) superblock", ranges: [(fs.offset + 1024, 1024)])
            }
            let inputs = SnapshotInputs(
                kilnVersion: KilnVersion.current,
                recipe: .init(name: name ?? URL(fileURLWithPath: image).lastPathComponent, digest: nil),
                createdAt: ManifestTimestamp.rfc3339(epochSeconds: epoch), images: [], layout: layout ?? probe.layout,
                partition: probe.partition.map(ManifestPartition.init), filesystem: probe.filesystem.map(ManifestFilesystem.init), fileMap: map)
            let started = Date()
            let manifest = try ManifestWriter.writeSnapshot(image: image, outputDirectory: directory, inputs: inputs,
                                                            hasher: BlockHasher(threads: max(1, jobs)))
            let path = URL(fileURLWithPath: directory).appendingPathComponent(SnapshotManifest.fileName).path
            if report.json {
                try printJSON(manifest.overview)
            } else {
                print("wrote \(path): \(manifest.blocks.written) written blocks of \(manifest.blocks.count), LINEAR \(manifest.blocks.checksum), \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
            }
        }
    }
}
