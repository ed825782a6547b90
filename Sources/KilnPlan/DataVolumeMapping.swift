import Foundation
import KilnCore

/// The block device mappings that put a baked snapshot on Bottlerocket's data disk (`/dev/xvdb`) and keep
/// the OS disk (`/dev/xvda`) explicit: listing only the data disk makes Karpenter drop its defaults for the
/// OS disk.
public struct DataVolumeMapping: Sendable, Hashable {
    public static let volumeTypes = ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"]

    public var snapshotID: String
    public var volumeSizeGiB: Int
    public var volumeType: String
    public var iops: Int?
    public var throughput: Int?
    public var initializationRate: ProvisionedRate?
    public var encrypted: Bool?
    public var kmsKeyID: String?
    public var deleteOnTermination: Bool
    public var osVolumeSizeGiB: Int
    public var osVolumeType: String

    /// Smallest whole GiB that holds an image of `bytes`.
    public static func minimumSizeGiB(imageBytes bytes: UInt64) -> Int {
        max(1, Int((Double(bytes) / Units.gib).rounded(.up)))
    }

    /// Validates against what EC2 and Karpenter's EC2NodeClass accept.
    public init(
        snapshotID: String, imageBytes: UInt64, volumeSizeGiB: Int? = nil, volumeType: String = "gp3", iops: Int? = nil,
        throughput: Int? = nil, initializationRate: ProvisionedRate? = nil, encrypted: Bool? = true, kmsKeyID: String? = nil,
        deleteOnTermination: Bool = true, osVolumeSizeGiB: Int = 4, osVolumeType: String = "gp3"
    ) throws {
        guard Self.isSnapshotID(snapshotID) else { throw Error.snapshotID(snapshotID) }
        guard Self.volumeTypes.contains(volumeType) else { throw Error.volumeType(volumeType) }
        guard Self.volumeTypes.contains(osVolumeType) else { throw Error.volumeType(osVolumeType) }
        let minimum = Self.minimumSizeGiB(imageBytes: imageBytes)
        let size = volumeSizeGiB ?? minimum
        guard size >= minimum else { throw Error.tooSmall(size, minimum) }
        let maxSize = ["gp3", "gp2", "io1", "io2", "st1", "sc1"].contains(volumeType) ? 16384 : 1024
        guard size <= maxSize else { throw Error.tooLarge(size, maxSize, volumeType) }
        guard (1...16384).contains(osVolumeSizeGiB) else { throw Error.tooLarge(osVolumeSizeGiB, 16384, osVolumeType) }
        if let iops {
            switch volumeType {
            case "gp3": guard (3000...16000).contains(iops) else { throw Error.iops(iops, "3000-16000", volumeType) }
            case "io1", "io2": guard (100...64000).contains(iops) else { throw Error.iops(iops, "100-64000", volumeType) }
            default: throw Error.iops(iops, "not supported", volumeType)
            }
        }
        if let throughput {
            guard volumeType == "gp3" else { throw Error.throughput(throughput, "only gp3 takes a throughput") }
            guard (125...1000).contains(throughput) else { throw Error.throughput(throughput, "gp3 accepts 125-1000 MiB/s") }
        }
        if kmsKeyID != nil, encrypted == false { throw Error.kmsWithoutEncryption }
        self.snapshotID = snapshotID
        self.volumeSizeGiB = size
        self.volumeType = volumeType
        self.iops = iops
        self.throughput = throughput
        self.initializationRate = initializationRate
        self.encrypted = kmsKeyID != nil ? true : encrypted
        self.kmsKeyID = kmsKeyID
        self.deleteOnTermination = deleteOnTermination
        self.osVolumeSizeGiB = osVolumeSizeGiB
        self.osVolumeType = osVolumeType
    }

    /// `snap-` followed by 8 or 17 lowercase hex digits.
    public static func isSnapshotID(_ id: String) -> Bool {
        guard id.hasPrefix("snap-") else { return false }
        let hex = id.dropFirst(5)
        return (hex.count == 8 || hex.count == 17) && hex.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// The `spec.blockDeviceMappings` of a Karpenter v1 `EC2NodeClass` (volumeInitializationRate needs
    /// Karpenter 1.5 or later), as YAML ready to paste under `spec:`.
    public func karpenterYAML(header: [String] = []) -> String {
        func q(_ s: String) -> String { Self.yamlQuoted(s) }
        var lines = header.map { "# " + $0.replacingOccurrences(of: "\n", with: " ") }
        lines.append("blockDeviceMappings:")
        lines.append("  - deviceName: /dev/xvda")
        lines.append("    ebs:")
        lines.append("      volumeSize: \(osVolumeSizeGiB)Gi")
        lines.append("      volumeType: \(osVolumeType)")
        if let encrypted { lines.append("      encrypted: \(encrypted)") }
        if let kmsKeyID { lines.append("      kmsKeyID: \(q(kmsKeyID))") }
        lines.append("      deleteOnTermination: true")
        lines.append("  - deviceName: /dev/xvdb")
        lines.append("    ebs:")
        lines.append("      snapshotID: \(q(snapshotID))")
        lines.append("      volumeSize: \(volumeSizeGiB)Gi")
        lines.append("      volumeType: \(volumeType)")
        if let iops { lines.append("      iops: \(iops)") }
        if let throughput { lines.append("      throughput: \(throughput)") }
        if let initializationRate { lines.append("      volumeInitializationRate: \(initializationRate.mibPerSecond)") }
        if let encrypted { lines.append("      encrypted: \(encrypted)") }
        if let kmsKeyID { lines.append("      kmsKeyID: \(q(kmsKeyID))") }
        lines.append("      deleteOnTermination: \(deleteOnTermination)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML double-quoted scalar (JSON string escaping is a subset of YAML's).
    static func yamlQuoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }

    /// EC2 launch-template data (`aws ec2 create-launch-template --launch-template-data file://...`),
    /// encoded with EC2's PascalCase field names.
    public struct LaunchTemplateData: Sendable, Hashable, Encodable {
        public struct Ebs: Sendable, Hashable, Encodable {
            public var snapshotId: String?
            public var volumeSize: Int
            public var volumeType: String
            public var iops: Int?
            public var throughput: Int?
            public var volumeInitializationRate: Int?
            public var encrypted: Bool?
            public var kmsKeyId: String?
            public var deleteOnTermination: Bool

            enum CodingKeys: String, CodingKey {
                case snapshotId = "SnapshotId", volumeSize = "VolumeSize", volumeType = "VolumeType", iops = "Iops"
                case throughput = "Throughput", volumeInitializationRate = "VolumeInitializationRate"
                case encrypted = "Encrypted", kmsKeyId = "KmsKeyId", deleteOnTermination = "DeleteOnTermination"
            }
        }

        public struct Mapping: Sendable, Hashable, Encodable {
            public var deviceName: String
            public var ebs: Ebs

            enum CodingKeys: String, CodingKey {
                case deviceName = "DeviceName", ebs = "Ebs"
            }
        }

        public var blockDeviceMappings: [Mapping]

        enum CodingKeys: String, CodingKey {
            case blockDeviceMappings = "BlockDeviceMappings"
        }
    }

    public func launchTemplateData() -> LaunchTemplateData {
        LaunchTemplateData(blockDeviceMappings: [
            .init(deviceName: "/dev/xvda", ebs: .init(
                snapshotId: nil, volumeSize: osVolumeSizeGiB, volumeType: osVolumeType, iops: nil, throughput: nil,
                volumeInitializationRate: nil, encrypted: encrypted, kmsKeyId: kmsKeyID, deleteOnTermination: true)),
            .init(deviceName: "/dev/xvdb", ebs: .init(
                snapshotId: snapshotID, volumeSize: volumeSizeGiB, volumeType: volumeType, iops: iops, throughput: throughput,
                volumeInitializationRate: initializationRate?.mibPerSecond, encrypted: encrypted, kmsKeyId: kmsKeyID,
                deleteOnTermination: deleteOnTermination)),
        ])
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case snapshotID(String)
        case volumeType(String)
        case tooSmall(Int, Int)
        case tooLarge(Int, Int, String)
        case iops(Int, String, String)
        case throughput(Int, String)
        case kmsWithoutEncryption

        public var description: String {
            switch self {
            case .snapshotID(let id): return "snapshot id '\(id)' is not an EBS snapshot id (snap- followed by 8 or 17 hex digits)"
            case .volumeType(let type): return "volume type '\(type)' is not one of \(DataVolumeMapping.volumeTypes.joined(separator: ", "))"
            case .tooSmall(let size, let minimum): return "volume size \(size) GiB is smaller than the image: at least \(minimum) GiB"
            case .tooLarge(let size, let maximum, let type): return "volume size \(size) GiB exceeds the \(maximum) GiB maximum for \(type)"
            case .iops(let iops, let range, let type): return "iops \(iops) is invalid for \(type): \(range)"
            case .throughput(let value, let why): return "throughput \(value) MiB/s is invalid: \(why)"
            case .kmsWithoutEncryption: return "a KMS key needs encryption: drop --no-encrypted"
            }
        }
    }
}
