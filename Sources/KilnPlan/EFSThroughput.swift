import Foundation
import KilnCore

/// EFS throughput modes and the read limits that follow from them.
public enum EFSMode: String, Sendable, Codable, CaseIterable {
    case elastic, provisioned, bursting
}

/// The two EFS limits a preload runs into: one node's client limit and the file system's total read limit.
public struct EFSLimits: Sendable, Hashable {
    public var mode: EFSMode
    /// Per node (NFS client).
    public var clientLimit: ByteRate
    /// Per file system, shared by every loading node.
    public var readLimit: ByteRate
    /// Why these numbers, for the report.
    public var notes: [String]

    public init(mode: EFSMode, clientLimit: ByteRate, readLimit: ByteRate, notes: [String] = []) {
        self.mode = mode
        self.clientLimit = clientLimit
        self.readLimit = readLimit
        self.notes = notes
    }

    /// AWS's documented limits for `mode`, with explicit values taking precedence.
    ///
    /// - Elastic: 1500 MiB/s per client (with efs-utils >= 2.0 or the EFS CSI driver), 60 GiB/s read per file
    ///   system in the large regions (10 GiB/s elsewhere).
    /// - Provisioned: 500 MiB/s per client; the read limit depends on the provisioned throughput (reads are
    ///   metered at one third) up to 3-10 GiB/s; 3 GiB/s is assumed.
    /// - Bursting: 500 MiB/s per client; the burst rate is 100 MiB/s per TiB stored (at least 100 MiB/s), and
    ///   reads are metered at one third, so reads reach 3x that while burst credits last.
    public static func defaults(
        mode: EFSMode, clientLimit: ByteRate? = nil, readLimit: ByteRate? = nil, storedBytes: UInt64 = 0
    ) -> EFSLimits {
        var notes: [String] = []
        let client: ByteRate
        if let clientLimit {
            client = clientLimit
        } else if mode == .elastic {
            client = .mibPerSecond(1500)
            notes.append("per-node limit 1500 MiB/s assumes Elastic throughput with efs-utils >= 2.0 or the EFS CSI driver (500 MiB/s otherwise)")
        } else {
            client = .mibPerSecond(500)
            notes.append("per-node limit 500 MiB/s (\(mode.rawValue) mode)")
        }
        let read: ByteRate
        if let readLimit {
            read = readLimit
        } else {
            switch mode {
            case .elastic:
                read = .gibPerSecond(60)
                notes.append("file-system read limit 60 GiB/s (Elastic, large regions; 10 GiB/s elsewhere: pass --efs-read-limit 10GiB/s)")
            case .provisioned:
                read = .gibPerSecond(3)
                notes.append("file-system read limit 3 GiB/s assumed for Provisioned mode (3-10 GiB/s depending on region and provisioned throughput)")
            case .bursting:
                let tib = Double(storedBytes) / Units.tib
                let burst = max(100 * Units.mib, 100 * Units.mib * tib)
                read = ByteRate(bytesPerSecond: burst * 3)
                notes.append("file-system read limit \(ByteRate.format(burst * 3)): Bursting at 100 MiB/s per TiB stored (\(ByteSize.binary(Double(storedBytes))), min 100 MiB/s), reads metered at 1/3, while burst credits last")
            }
        }
        return EFSLimits(mode: mode, clientLimit: client, readLimit: read, notes: notes)
    }
}
