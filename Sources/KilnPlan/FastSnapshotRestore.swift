import Foundation
import KilnCore

/// Fast Snapshot Restore's volume creation credits: one bucket per snapshot per Availability Zone, each
/// volume created consumes one credit, a volume gets FSR only if at least one credit is in the bucket.
///
/// Both numbers depend on the snapshot size (the size of the source volume in GiB, not the data in it):
/// - bucket size = MAX(1, MIN(10, 1024 / size_GiB)) credits
/// - refill = MIN(10, 1024 / size_GiB) credits per hour
/// The bucket starts empty when FSR is enabled. Billing is per DSU-hour per snapshot per AZ, per minute with
/// a one-hour minimum.
public struct FastSnapshotRestore: Sendable, Hashable {
    public let snapshotSizeGiB: Int

    public init(snapshotSizeGiB: Int) throws {
        guard snapshotSizeGiB >= 1 else { throw Error.invalidSize(snapshotSizeGiB) }
        self.snapshotSizeGiB = snapshotSizeGiB
    }

    /// The snapshot size EBS reports (whole GiB, rounded up) for a volume image of `bytes`.
    public static func snapshotSizeGiB(volumeBytes bytes: UInt64) -> Int {
        max(1, Int((Double(bytes) / Units.gib).rounded(.up)))
    }

    public var bucketSize: Double { max(1, min(10, 1024 / Double(snapshotSizeGiB))) }

    public var refillPerHour: Double { min(10, 1024 / Double(snapshotSizeGiB)) }

    /// Hours for a freshly enabled (empty) bucket to fill.
    public var fillHours: Double { bucketSize / refillPerHour }

    /// How many of the volumes launched at `launchTimes` (seconds) get FSR when they are spread round-robin
    /// over `availabilityZones` zones whose buckets are full at time 0 (FSR enabled at least `fillHours`
    /// before the burst).
    public func coveredVolumes(launchTimes: [Double], availabilityZones: Int) -> Int {
        let zones = max(1, availabilityZones)
        var credits = Array(repeating: bucketSize, count: zones)
        var last = Array(repeating: launchTimes.min() ?? 0, count: zones)
        let perSecond = refillPerHour / 3600
        var covered = 0
        for (index, time) in launchTimes.sorted().enumerated() {
            let zone = index % zones
            credits[zone] = min(bucketSize, credits[zone] + max(0, time - last[zone]) * perSecond)
            last[zone] = time
            if credits[zone] >= 1 {
                credits[zone] -= 1
                covered += 1
            }
        }
        return covered
    }

    /// DSU-hours billed to have full buckets for a burst lasting `burstSeconds`: enabled `fillHours` ahead,
    /// kept through the burst, billed per minute with a one-hour minimum, in every zone.
    public func dsuHours(burstSeconds: Double, availabilityZones: Int) -> Double {
        let minutes = (fillHours * 60 + max(0, burstSeconds) / 60).rounded(.up)
        return max(60, minutes) / 60 * Double(max(1, availabilityZones))
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalidSize(Int)

        public var description: String {
            switch self {
            case .invalidSize(let size): return "snapshot size \(size) GiB is invalid: it must be at least 1 GiB"
            }
        }
    }
}
