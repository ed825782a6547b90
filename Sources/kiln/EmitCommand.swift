import ArgumentParser
import Foundation
import KilnCore
import KilnPlan

/// `kiln emit`: the block device mappings that put the baked snapshot on new nodes.
struct Emit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Emit Karpenter or launch-template snippets that use a snapshot.",
        discussion: """
            karpenter: the `blockDeviceMappings` of a Karpenter v1 EC2NodeClass (paste under `spec:`; \
            volumeInitializationRate needs Karpenter 1.5 or later). launch-template: EC2 launch-template data \
            as JSON, for `aws ec2 create-launch-template --launch-template-data file://...`.

            Both list the OS disk (/dev/xvda) and the data disk (/dev/xvdb) that carries the snapshot; the data \
            disk is at least as large as the image (Bottlerocket grows the partition and filesystem to the \
            volume at first boot).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case karpenter
        case launchTemplate = "launch-template"
    }

    @Argument(help: "What to emit: karpenter or launch-template.")
    var format: Format

    @Option(help: ArgumentHelp("Snapshot manifest written by `kiln bake` (volume.size sets the minimum volume size; snapshotId is used when present).", valueName: "manifest.json"))
    var manifest: String?

    @Option(name: .customLong("snapshot-id"), help: ArgumentHelp("EBS snapshot id (snap-...). Optional when the manifest records one.", valueName: "id"))
    var snapshotID: String?

    @Option(help: ArgumentHelp("Region whose snapshot to use, from the manifest's snapshots (written by `kiln upload`). Default: the upload's region (snapshotId).", valueName: "region"))
    var region: String?

    @Option(help: ArgumentHelp("VolumeInitializationRate in MiB/s (100..300), or none to omit it (lazy initialization). Default: 300; `kiln plan --rate auto` finds the lowest that meets a deadline.", valueName: "rate"))
    var rate: String = "300"

    @Option(help: ArgumentHelp("Data volume size, e.g. 200Gi or 200GiB (a bare number is GiB); rounded up to whole GiB. Default: the image size. Required without --manifest.", valueName: "size"))
    var volumeSize: String?

    @Option(help: ArgumentHelp("Data volume type. Default: gp3.", valueName: "type"))
    var volumeType: String = "gp3"

    @Option(help: ArgumentHelp("Provisioned IOPS (gp3: 3000-16000). Default: the volume type's baseline.", valueName: "n"))
    var iops: Int?

    @Option(help: ArgumentHelp("Provisioned throughput in MiB/s (gp3: 125-1000). Default: the baseline.", valueName: "n"))
    var throughput: Int?

    @Flag(inversion: .prefixedNo, help: "Encrypt both volumes. Default: encrypted.")
    var encrypted = true

    @Option(name: .customLong("kms-key-id"), help: ArgumentHelp("KMS key (id, alias or ARN) for the encryption. Default: the account's EBS default key.", valueName: "key"))
    var kmsKeyID: String?

    @Flag(inversion: .prefixedNo, help: "Delete the data volume when the instance terminates. Default: yes.")
    var deleteOnTermination = true

    @Option(help: ArgumentHelp("OS volume (/dev/xvda) size. Default: 4Gi (Karpenter's Bottlerocket default).", valueName: "size"))
    var osVolumeSize: String = "4Gi"

    @Option(name: [.short, .long], help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file"))
    var output: String?

    @Flag(name: .long, help: "Print a JSON report instead: the snippet, and the block devices as EC2 field names.")
    var json = false

    func run() async throws {
        var imageBytes: UInt64 = 0
        var recordedID: String?
        var name: String?
        var writtenBytes: UInt64?
        if let manifest {
            let summary = try ManifestSummary.load(path: manifest, as: "--manifest")
            guard let size = summary.volumeBytes ?? (volumeSize != nil ? summary.writtenBytes : nil) else {
                throw CLIFailure.input("--manifest: '\(manifest)' records no volume.size; pass --volume-size so the volume fits the image")
            }
            imageBytes = size
            if let region {
                guard let id = summary.snapshots?[region] else {
                    let known = (summary.snapshots ?? [:]).keys.sorted()
                    throw CLIFailure.input("--region: manifest '\(manifest)' records no snapshot in \(region)"
                                           + (known.isEmpty ? " (run `kiln upload`)" : " (it has \(known.joined(separator: ", ")))"))
                }
                recordedID = id
            } else {
                recordedID = summary.snapshotId
            }
            name = summary.name
            writtenBytes = summary.writtenBytes
        } else if region != nil {
            throw CLIFailure.input("--region reads the snapshot id from --manifest")
        } else if volumeSize == nil {
            throw CLIFailure.input("give --manifest manifest.json (or --volume-size) so the volume fits the image")
        }
        guard let snapshot = snapshotID ?? recordedID else {
            throw CLIFailure.input("--snapshot-id is required: the manifest records no snapshotId (run `kiln upload` or pass the id)")
        }
        let sizeGiB = try volumeSize.map { try Self.gib($0, option: "--volume-size") }
        let osGiB = try Self.gib(osVolumeSize, option: "--os-volume-size")
        var initialization: ProvisionedRate?
        if rate.lowercased() != "none" {
            do {
                guard case .provisioned(let value) = try RateChoice(parsing: rate) else {
                    throw CLIFailure.input("--rate: '\(rate)' is not a rate 100..300 (MiB/s) or none")
                }
                initialization = value
            } catch let e as CLIFailure {
                throw e
            } catch {
                throw CLIFailure.wrapping("--rate", error)
            }
        }
        let mapping: DataVolumeMapping
        do {
            mapping = try DataVolumeMapping(
                snapshotID: snapshot, imageBytes: imageBytes, volumeSizeGiB: sizeGiB, volumeType: volumeType, iops: iops,
                throughput: throughput, initializationRate: initialization, encrypted: encrypted, kmsKeyID: kmsKeyID,
                deleteOnTermination: deleteOnTermination, osVolumeSizeGiB: osGiB)
        } catch let error as DataVolumeMapping.Error {
            throw CLIFailure.input(error.description)
        }

        let text: String
        switch format {
        case .karpenter:
            var header = ["Karpenter v1 EC2NodeClass: paste under spec: (volumeInitializationRate needs Karpenter >= 1.5)"]
            var about = "data volume \(snapshot)"
            if let name { about += " from kiln image '\(name)'" }
            if imageBytes > 0 { about += ", image \(ByteSize.binary(Double(imageBytes)))" }
            if let writtenBytes { about += ", \(ByteSize.decimal(Double(writtenBytes))) written" }
            header.append(about)
            text = mapping.karpenterYAML(header: header)
        case .launchTemplate:
            let data = try JSONEncoder.report.encode(mapping.launchTemplateData())
            text = String(decoding: data, as: UTF8.self) + "\n"
        }
        if json {
            try printJSON(EmitReport(format: format.rawValue, snapshotId: snapshot, region: region, manifest: manifest,
                                     launchTemplateData: mapping.launchTemplateData(), text: text))
            return
        }
        if let output {
            try PlanOutput.write(text, to: output, option: "--output")
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// Whole GiB from `200Gi`, `200GiB` or `214GB` (rounded up to whole GiB). A bare number is refused: EC2 counts
    /// volume sizes in GiB and kiln counts sizes in bytes, so `200` would be ambiguous.
    static func gib(_ text: String, option: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if !trimmed.isEmpty, trimmed.allSatisfy(\.isNumber) {
            throw CLIFailure.input("\(option): '\(text)' is ambiguous: give a unit, e.g. \(trimmed)Gi (GiB, as EC2 counts) or \(trimmed)G")
        }
        let bytes: UInt64
        do { bytes = try ByteSize(parsing: trimmed).bytes } catch { throw CLIFailure.wrapping(option, error) }
        guard bytes > 0 else { throw CLIFailure.input("\(option): '\(text)' must be at least 1 GiB") }
        return DataVolumeMapping.minimumSizeGiB(imageBytes: bytes)
    }
}

/// `kiln emit --json`: what was emitted, and the same block devices in EC2's field names for scripts.
struct EmitReport: Encodable {
    var format: String
    var snapshotId: String
    var region: String?
    var manifest: String?
    var launchTemplateData: DataVolumeMapping.LaunchTemplateData
    /// The snippet exactly as `kiln emit` without `--json` prints it.
    var text: String
}
