import Foundation
import KilnTestSupport
import Testing

@testable import KilnPlan

@Suite("Planner end to end")
struct PlannerTests {
    static let mib = 1_048_576.0

    static func input(written: UInt64 = 190_000_000_000, deadline: Double = 420, nodes: Int = 200, modelBytes: UInt64 = 50_000_000_000, rate: RateChoice = .auto) -> PlanInput {
        PlanInput(
            name: "gpu", writtenBytes: written, volumeBytes: UInt64(200) << 30, rate: rate, deadline: deadline,
            requests: Arrivals.uniform(perMinute: 200, count: nodes), instanceStart: 90, models: .single(bytes: modelBytes),
            efs: EFSLimits.defaults(mode: .elastic))
    }

    @Test func napkinScenarioIsInfeasibleBecauseOfTheVolume() throws {
        let report = try Planner.plan(Self.input())
        #expect(!report.feasible)
        #expect(report.bottleneck == .ebsInitialization)
        #expect(report.volume.rateMiBps == 300)
        #expect(!report.volume.meetsDeadline)
        #expect(abs(report.volume.initializationSeconds - 190e9 / (300 * Self.mib)) < 1e-6)
        let excess = try #require(report.volume.excessBytes)
        #expect(excess == UInt64((190e9 - 420 * 300 * Self.mib).rounded(.up)))
        #expect(report.recommendations.contains { $0.contains("keepLayerBlobs: false") })
        #expect(report.nodes.missedDeadline == 200)
    }

    @Test func autoRateWithALongerDeadline() throws {
        // 12 minutes: 190e9 / (720 s * 2^20) = 251.7 MiB/s, so 252.
        let report = try Planner.plan(Self.input(deadline: 720))
        #expect(report.feasible)
        #expect(report.volume.rateMiBps == 252)
        #expect(report.volume.autoRate)
        #expect(report.bottleneck == .ebsInitialization)
        // Every node: ready when its volume is initialized (models load well before that).
        #expect(abs(report.nodes.readyMaxSeconds - 190e9 / (252 * Self.mib)) < 1e-6)
        // One node alone: 50 GB at 1500 MiB/s.
        #expect(abs(report.models.singleNodeSeconds - 50e9 / (1500 * Self.mib)) < 1e-6)
        // Cost: 200 volumes x 176.95 GiB x 0.0036 * 252/300.
        let expected = 200 * 190e9 / 1_073_741_824 * 0.0036 * 252 / 300
        #expect(abs(report.cost.provisionedRateUSD - expected) < 1e-9)
        #expect(abs(report.cost.efsReadsUSD - 200 * 50e9 / 1_073_741_824 * 0.03) < 1e-9)
        // FSR on a 200 GiB snapshot: 5.12 credits per AZ, 3 AZs cover 15 of 200.
        #expect(report.fsr.volumesCovered == 15)
        #expect(report.fsr.bucketCredits == 5.12)
    }

    @Test func fileSystemBoundBurst() throws {
        // Small volume, all nodes at once, 10 GiB/s: the file system binds.
        var input = Self.input(written: 10_000_000_000, deadline: 600, nodes: 200)
        input.requests = Array(repeating: 0, count: 200)
        input.efs = EFSLimits.defaults(mode: .elastic, readLimit: .gibPerSecond(10))
        let report = try Planner.plan(input)
        #expect(report.bottleneck == .efsFileSystem)
        // 200 x 50 GB / 10 GiB/s = 931 s, after 90 s of instance start.
        let load = 200 * 50e9 / (10 * 1_073_741_824)
        #expect(abs(report.models.maxSeconds - load) < 1e-6)
        #expect(abs(report.nodes.readyMaxSeconds - (90 + load)) < 1e-6)
        #expect(!report.feasible)
        // It should find a read limit close to the one that finishes 200 x 50 GB in 510 s.
        let required = try #require(report.models.requiredFileSystemLimitBytesPerSecond)
        let ideal = 200 * 50e9 / 510
        #expect(required >= ideal * 0.999 && required <= ideal * 1.01)
    }

    @Test func launchThrottlingShowsUp() throws {
        var input = Self.input(written: 1_000_000_000, deadline: 1200, nodes: 1500, modelBytes: 0)
        input.requests = Array(repeating: 0, count: 1500)
        let report = try Planner.plan(input)
        #expect(report.launches.throttledNodes == 500)
        #expect(abs(report.launches.maxLaunchWaitSeconds - 250) < 1e-9)
        #expect(report.bottleneck == .ec2LaunchThrottle)
    }

    @Test func jsonHasTheDocumentedKeys() throws {
        let report = try Planner.plan(Self.input(deadline: 720))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(report)) as? [String: Any])
        #expect(object["feasible"] as? Bool == true)
        #expect(object["bottleneck"] as? String == "ebs-initialization")
        let volume = try #require(object["volume"] as? [String: Any])
        #expect(volume["rateMiBps"] as? Int == 252)
        #expect(volume["initializationSeconds"] is Double)
        let models = try #require(object["models"] as? [String: Any])
        for key in ["singleNodeSeconds", "p50Seconds", "maxSeconds"] { #expect(models[key] is Double, "models.\(key)") }
        let nodes = try #require(object["nodes"] as? [String: Any])
        for key in ["readyP50Seconds", "readyMaxSeconds"] { #expect(nodes[key] is Double, "nodes.\(key)") }
        #expect(object["timeline"] == nil)
    }

    @Test func textReportNamesTheEssentials() throws {
        let text = try Planner.plan(Self.input()).text()
        for needle in ["INFEASIBLE", "Bottleneck: ebs-initialization", "typical", "slowest", "Recommendation", "FSR instead", "Assumptions", "p50"] {
            #expect(text.contains(needle), "missing '\(needle)'")
        }
    }

    @Test func fiveHundredNodesQuickly() throws {
        var input = Self.input(written: 200_000_000_000, deadline: 900, nodes: 500)
        input.models = ModelSet(files: (0..<40).map { ModelSet.File(path: "model-\($0).safetensors", bytes: 1_250_000_000 + UInt64($0) * 1_000_000) })
        input.schedule = .lpt
        let clock = ContinuousClock()
        let elapsed = try clock.measure { _ = try Planner.plan(input) }
        // Debug builds are several times slower than release; the CLI is checked against 1 s separately.
        #expect(elapsed < .seconds(10))
    }

    @Test func invalidInputsAreNamed() {
        var input = Self.input()
        input.streams = 0
        #expect(throws: PlanError.self) { try Planner.plan(input) }
        input = Self.input()
        input.requests = []
        #expect(throws: PlanError.self) { try Planner.plan(input) }
    }

    @Test func manifestIsReadTolerantly() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-plan-manifest")
        defer { dir.remove() }
        let path = dir.path("manifest.json")
        let json = #"{"schemaVersion":1,"name":"gpu","volume":{"size":214748364800,"layout":"bottlerocket","extra":[1]},"blocks":{"size":524288,"count":409600,"written":362396,"writtenBytes":190000000000,"checksum":"x"},"images":[{"ref":"a"}],"snapshotId":"snap-0123456789abcdef0"}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        let summary = try ManifestSummary.load(path: path)
        #expect(summary == ManifestSummary(name: "gpu", snapshotId: "snap-0123456789abcdef0", volumeBytes: 214_748_364_800, layout: "bottlerocket", writtenBytes: 190_000_000_000))
        try Data(#"{"blocks":{"size":524288,"written":10}}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(try ManifestSummary.load(path: path).writtenBytes == 5_242_880)
        try Data(#"{"volume":{"size":1}}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ManifestSummary.Error.self) { try ManifestSummary.load(path: path) }
    }
}
