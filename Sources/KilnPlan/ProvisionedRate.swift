import Foundation
import KilnCore

/// EBS Provisioned Rate for Volume Initialization: a volume created from a snapshot downloads the snapshot's
/// written blocks at a fixed rate of 100-300 MiB/s, so it is fully initialized after
/// `full snapshot size / rate`. The full snapshot size is the written blocks (512 KiB each), not the volume
/// size.
public struct ProvisionedRate: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The range EC2 accepts for `VolumeInitializationRate`, in MiB/s.
    public static let validRange = 100...300

    public let mibPerSecond: Int

    public init(mibPerSecond: Int) throws {
        guard ProvisionedRate.validRange.contains(mibPerSecond) else { throw Error.outOfRange(mibPerSecond) }
        self.mibPerSecond = mibPerSecond
    }

    public var bytesPerSecond: Double { Double(mibPerSecond) * Units.mib }

    public var description: String { "\(mibPerSecond) MiB/s" }

    /// Seconds until a volume holding `writtenBytes` of snapshot data is fully initialized.
    public func initializationSeconds(writtenBytes: UInt64) -> Double {
        Double(writtenBytes) / bytesPerSecond
    }

    /// The rate, in MiB/s (not rounded, may exceed 300), that initializes `writtenBytes` in `seconds`.
    public static func requiredMiBps(writtenBytes: UInt64, within seconds: Double) -> Double {
        guard seconds > 0 else { return .infinity }
        return Double(writtenBytes) / seconds / Units.mib
    }

    /// What `--rate auto` decides: the lowest (cheapest) valid rate that initializes `writtenBytes` within
    /// `seconds`, or why no rate can.
    public enum Selection: Sendable, Equatable {
        case rate(ProvisionedRate)
        /// Even 300 MiB/s is too slow: `requiredMiBps` would be needed and `excessBytes` more than 300 MiB/s
        /// can write in the time available.
        case infeasible(requiredMiBps: Double, excessBytes: UInt64)
    }

    public static func lowest(writtenBytes: UInt64, within seconds: Double) -> Selection {
        let required = requiredMiBps(writtenBytes: writtenBytes, within: seconds)
        let upper = validRange.upperBound
        if required.isFinite, required <= Double(upper) {
            // The rate is an integer: round up, and guard against the division landing a hair above.
            var candidate = max(validRange.lowerBound, Int(required.rounded(.up)))
            while candidate > validRange.lowerBound,
                Double(writtenBytes) / (Double(candidate - 1) * Units.mib) <= seconds
            {
                candidate -= 1
            }
            if let rate = try? ProvisionedRate(mibPerSecond: candidate) { return .rate(rate) }
        }
        let writable = max(0, seconds) * Double(upper) * Units.mib
        let excess = max(0, Double(writtenBytes) - writable)
        return .infeasible(requiredMiBps: required, excessBytes: UInt64(excess.rounded(.up)))
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case outOfRange(Int)
        case invalidRate(String)

        public var description: String {
            switch self {
            case .outOfRange(let value):
                return "volume initialization rate \(value) MiB/s is out of range: EBS accepts 100 to 300 MiB/s"
            case .invalidRate(let text):
                return "invalid rate '\(text)': expected an integer 100..300 (MiB/s), 'auto' or 'default'"
            }
        }
    }
}

/// The default (lazy) initialization of a volume created from a snapshot without a provisioned rate or FSR:
/// blocks come from S3 on first access and in the background at a rate AWS says "fluctuates". The planner
/// therefore gives a range, from `bytes / high` (optimistic) to `bytes / low` (pessimistic).
public struct LazyHydration: Sendable, Hashable {
    /// Defaults: 140 MB/s is the upper end of a community measurement on gp3 (130-140 MB/s); 50 MB/s is an
    /// assumed pessimistic lower end for a volume that is also serving first reads.
    public static let defaultRates = ByteRate(bytesPerSecond: 50 * Units.mb)...ByteRate(bytesPerSecond: 140 * Units.mb)

    public var rates: ClosedRange<ByteRate>

    public init(rates: ClosedRange<ByteRate> = LazyHydration.defaultRates) { self.rates = rates }

    /// Fastest and slowest completion for `writtenBytes`.
    public func initializationSeconds(writtenBytes: UInt64) -> ClosedRange<Double> {
        let bytes = Double(writtenBytes)
        return (bytes / rates.upperBound.bytesPerSecond)...(bytes / rates.lowerBound.bytesPerSecond)
    }
}
