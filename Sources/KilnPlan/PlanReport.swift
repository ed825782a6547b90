import Foundation

/// What binds first for the slowest node.
public enum Bottleneck: String, Sendable, Codable, CaseIterable {
    case ebsInitialization = "ebs-initialization"
    case efsFileSystem = "efs-file-system"
    case efsClientLimit = "efs-client-limit"
    case efsStreams = "efs-streams"
    case instanceStart = "instance-start"
    case ec2LaunchThrottle = "ec2-launch-throttle"
}

/// The answer to "how fast does the fleet get ready, and what does it cost", as text, JSON and a timeline.
/// Times are seconds; absolute times count from the first request of the burst.
public struct PlanReport: Sendable, Codable {
    public var name: String?
    public var feasible: Bool
    public var deadlineSeconds: Double
    public var bottleneck: Bottleneck
    /// One sentence on why `bottleneck` binds.
    public var bottleneckDetail: String
    public var recommendations: [String]
    /// Every default and modelling assumption the numbers rest on.
    public var assumptions: [String]
    public var volume: VolumeSection
    public var fsr: FSRSection
    public var models: ModelSection
    public var launches: LaunchSection
    public var nodes: NodeSection
    public var cost: CostSection
    /// Curves for the SVG/HTML timeline; not part of the JSON report.
    public var timeline: Timeline = Timeline()

    enum CodingKeys: String, CodingKey {
        case name, feasible, deadlineSeconds, bottleneck, bottleneckDetail, recommendations, assumptions
        case volume, fsr, models, launches, nodes, cost
    }

    public struct VolumeSection: Sendable, Codable {
        public var writtenBytes: UInt64
        /// `provisioned-rate` or `default` (lazy).
        public var initialization: String
        public var rateMiBps: Int?
        /// True when `--rate auto` chose the rate.
        public var autoRate: Bool
        /// The rate the deadline asks for (may exceed 300); present for `--rate auto`.
        public var requiredMiBps: Double?
        public var initializationSeconds: Double
        public var defaultInitializationMinSeconds: Double
        public var defaultInitializationMaxSeconds: Double
        /// Whether every node's volume is initialized by the deadline.
        public var meetsDeadline: Bool
        /// Bytes that would have to go for 300 MiB/s to meet the deadline.
        public var excessBytes: UInt64?
    }

    public struct FSRSection: Sendable, Codable {
        public var snapshotSizeGiB: Int
        public var bucketCredits: Double
        public var refillCreditsPerHour: Double
        public var availabilityZones: Int
        public var volumesCovered: Int
        public var volumesRequested: Int
        public var dsuHours: Double
        public var costUSD: Double
    }

    public struct StreamSummary: Sendable, Codable {
        public var index: Int
        public var bytes: UInt64
        /// Files (LPT) or `path[offset+length]` byte ranges carried by the stream.
        public var pieces: [String]
    }

    public struct ModelSection: Sendable, Codable {
        public var bytes: UInt64
        public var files: Int
        public var streams: Int
        public var schedule: StreamSchedule.Kind
        public var efsMode: EFSMode
        public var clientLimitBytesPerSecond: Double
        public var fileSystemLimitBytesPerSecond: Double
        public var streamLimitBytesPerSecond: Double?
        public var preloadStart: PreloadStart
        /// One node alone with the chosen schedule.
        public var singleNodeSeconds: Double
        public var lptSeconds: Double
        public var rangesSeconds: Double
        public var recommendedStreams: Int
        /// Load durations in the burst (start of reading to last byte).
        public var p50Seconds: Double
        public var p90Seconds: Double
        public var maxSeconds: Double
        public var peakLoadingNodes: Int
        /// Set when the file system binds and the deadline is missed: the read limit that would meet it.
        public var requiredFileSystemLimitBytesPerSecond: Double?
        public var streamPlan: [StreamSummary]
    }

    public struct LaunchSection: Sendable, Codable {
        public var description: String
        public var requested: Int
        public var firstRequestSeconds: Double
        public var lastRequestSeconds: Double
        public var maxLaunchWaitSeconds: Double
        public var throttledNodes: Int
        public var bucket: Double
        public var refillPerSecond: Double
        public var instanceStartSeconds: Double
    }

    public struct PieceTimeline: Sendable, Codable {
        public var path: String
        public var offset: UInt64
        public var bytes: UInt64
        public var startSeconds: Double
        public var endSeconds: Double
    }

    public struct StreamTimeline: Sendable, Codable {
        public var bytes: UInt64
        public var startSeconds: Double
        public var endSeconds: Double
        public var pieces: [PieceTimeline]
    }

    /// One node's phases, absolute seconds from the first request.
    public struct NodeTimeline: Sendable, Codable {
        public var index: Int
        public var requestSeconds: Double
        public var launchSeconds: Double
        public var containerdReadySeconds: Double
        public var volumeReadySeconds: Double
        public var loadStartSeconds: Double
        public var loadEndSeconds: Double
        public var readySeconds: Double
        /// Request to ready.
        public var readyAfterSeconds: Double
        public var fileSystemBoundSeconds: Double
        public var clientBoundSeconds: Double
        public var streamBoundSeconds: Double
        public var streams: [StreamTimeline]
    }

    public struct NodeSection: Sendable, Codable {
        public var count: Int
        /// Request-to-ready percentiles (nearest rank).
        public var readyP50Seconds: Double
        public var readyP90Seconds: Double
        public var readyP99Seconds: Double
        public var readyMaxSeconds: Double
        /// When the last node is ready, from the first request.
        public var lastReadySeconds: Double
        public var missedDeadline: Int
        public var typical: NodeTimeline
        public var slowest: NodeTimeline
    }

    public struct CostSection: Sendable, Codable {
        public var currency: String
        public var provisionedRateUSD: Double
        public var provisionedRatePerGiB: Double
        public var efsReadsUSD: Double
        public var efsReadPerGiB: Double
        /// The FSR alternative (not added to the total).
        public var fsrUSD: Double
        public var fsrPerDSUHour: Double
        public var totalUSD: Double
    }

    /// Fleet-wide curves for the timeline picture.
    public struct Timeline: Sendable, Codable {
        public var requestTimes: [Double] = []
        public var readyTimes: [Double] = []
        public var throughput: [FleetSimulation.ThroughputSegment] = []
    }
}

/// Nearest-rank percentile of unsorted values (0 for none).
public func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(sorted.count - 1, max(0, rank - 1))]
}
