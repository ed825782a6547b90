import Foundation
import KilnCore
import Testing

@testable import KilnPlan

@Suite("EBS initialization and Fast Snapshot Restore")
struct VolumeModelTests {
    @Test func provisionedRateTime() throws {
        // The napkin case: 190 GB at 300 MiB/s is 190e9 / (300 * 2^20) s, about ten minutes, not six.
        let rate = try ProvisionedRate(mibPerSecond: 300)
        let seconds = rate.initializationSeconds(writtenBytes: 190_000_000_000)
        #expect(abs(seconds - 190e9 / 314_572_800) < 1e-9)
        #expect(seconds > 600 && seconds < 610)
        let slow = try ProvisionedRate(mibPerSecond: 100)
        #expect(slow.initializationSeconds(writtenBytes: UInt64(10) << 30) == 102.4)
    }

    @Test func rateRangeIsEnforced() {
        #expect(throws: ProvisionedRate.Error.outOfRange(50)) { try ProvisionedRate(mibPerSecond: 50) }
        #expect(throws: ProvisionedRate.Error.outOfRange(1000)) { try ProvisionedRate(mibPerSecond: 1000) }
    }

    @Test func autoRatePicksTheLowestThatMeetsTheDeadline() throws {
        // 50 GiB in 5 minutes: 51200 MiB / 300 s = 170.67 MiB/s, so 171.
        let bytes = UInt64(50) << 30
        guard case .rate(let rate) = ProvisionedRate.lowest(writtenBytes: bytes, within: 300) else {
            Issue.record("expected a rate")
            return
        }
        #expect(rate.mibPerSecond == 171)
        #expect(rate.initializationSeconds(writtenBytes: bytes) <= 300)
        #expect(try ProvisionedRate(mibPerSecond: 170).initializationSeconds(writtenBytes: bytes) > 300)
    }

    @Test func autoRateNeverGoesBelowTheMinimum() {
        #expect(ProvisionedRate.lowest(writtenBytes: 1 << 30, within: 3600) == .rate(try! ProvisionedRate(mibPerSecond: 100)))
    }

    @Test func autoRateInfeasibleReportsTheShortfall() {
        // 190 GB in 7 minutes needs 431.4 MiB/s; 300 MiB/s writes 420 * 300 MiB = 132.1 GB.
        let selection = ProvisionedRate.lowest(writtenBytes: 190_000_000_000, within: 420)
        guard case .infeasible(let required, let excess) = selection else {
            Issue.record("expected infeasible")
            return
        }
        #expect(abs(required - 190e9 / 420 / 1_048_576) < 1e-9)
        let writable = 420.0 * 300 * 1_048_576
        #expect(excess == UInt64((190e9 - writable).rounded(.up)))
    }

    @Test func lazyRange() {
        let lazy = LazyHydration(rates: ByteRate(bytesPerSecond: 50e6)...ByteRate(bytesPerSecond: 140e6))
        let range = lazy.initializationSeconds(writtenBytes: 140_000_000_000)
        #expect(range.lowerBound == 1000)
        #expect(range.upperBound == 2800)
    }

    /// Snapshot size GiB, bucket, refill per hour (AWS: MAX(1, MIN(10, 1024/size)) and MIN(10, 1024/size)).
    static let bucketCases: [(Int, Double, Double)] = [
        (128, 8.0, 8.0), (50, 10.0, 10.0), (1024, 1.0, 1.0), (2048, 1.0, 0.5), (4096, 1.0, 0.25), (190, 1024.0 / 190, 1024.0 / 190),
    ]

    @Test(arguments: bucketCases)
    func fsrBucket(size: Int, bucket: Double, refill: Double) throws {
        let fsr = try FastSnapshotRestore(snapshotSizeGiB: size)
        #expect(fsr.bucketSize == bucket)
        #expect(fsr.refillPerHour == refill)
    }

    @Test func fsrSnapshotSizeRoundsUp() {
        #expect(FastSnapshotRestore.snapshotSizeGiB(volumeBytes: (UInt64(128) << 30) + 1) == 129)
        #expect(FastSnapshotRestore.snapshotSizeGiB(volumeBytes: UInt64(128) << 30) == 128)
    }

    @Test func fsrCoverage() throws {
        let fsr = try FastSnapshotRestore(snapshotSizeGiB: 128)
        // All at once: each AZ's bucket of 8 serves 8.
        #expect(fsr.coveredVolumes(launchTimes: Array(repeating: 0, count: 100), availabilityZones: 3) == 24)
        // One AZ: 9 at t=0 (8 served), one at t=460 s (8/h refills 1.02 credits by then: served).
        #expect(fsr.coveredVolumes(launchTimes: Array(repeating: 0, count: 9) + [460], availabilityZones: 1) == 9)
        // ... but not at t=400 s (0.89 credits).
        #expect(fsr.coveredVolumes(launchTimes: Array(repeating: 0, count: 9) + [400], availabilityZones: 1) == 8)
    }

    @Test func fsrBilling() throws {
        let fsr = try FastSnapshotRestore(snapshotSizeGiB: 128)
        // Fill 1 h, burst 3 min: 63 minutes in each of 3 AZs.
        #expect(abs(fsr.dsuHours(burstSeconds: 180, availabilityZones: 3) - 3 * 63.0 / 60) < 1e-12)
        // A 2 TiB snapshot fills its single credit in 2 h.
        let big = try FastSnapshotRestore(snapshotSizeGiB: 2048)
        #expect(big.fillHours == 2)
        #expect(big.dsuHours(burstSeconds: 0, availabilityZones: 1) == 2)
    }

    @Test func launchThrottle() {
        // 1200 at once: 1000 from the bucket, then one every 0.5 s.
        let launches = LaunchThrottle.ec2Default.launchTimes(for: Array(repeating: 0, count: 1200))
        #expect(launches[999] == 0)
        #expect(abs(launches[1000] - 0.5) < 1e-9)
        #expect(abs(launches[1199] - 100) < 1e-9)
        // 3.33 a second for 3 minutes never empties a 1000 bucket.
        let steady = LaunchThrottle.ec2Default.launchTimes(for: Arrivals.uniform(perMinute: 200, count: 600))
        #expect(steady == Arrivals.uniform(perMinute: 200, count: 600))
        // An empty bucket: one every 1/refill seconds.
        let empty = LaunchThrottle(capacity: 10, refillPerSecond: 2, initialTokens: 0).launchTimes(for: [0, 0, 0])
        #expect(empty.map { ($0 * 1000).rounded() / 1000 } == [0.5, 1.0, 1.5])
    }
}
