import Foundation
import KilnCore

/// Which volume initialization the plan uses.
public enum RateChoice: Sendable, Hashable {
    /// The lowest provisioned rate that meets the deadline (the cheapest).
    case auto
    case provisioned(ProvisionedRate)
    /// No provisioned rate: EBS's default lazy initialization (the plan uses the pessimistic end).
    case lazy

    /// Parses `auto`, `default`/`lazy`, or a provisioned rate: a bare integer 100..300 is MiB/s (the unit of
    /// EC2's `VolumeInitializationRate`); with a unit it is any rate ``Quantity`` reads (`300MiB/s`), which must
    /// come to whole MiB/s.
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "auto": self = .auto
        case "default", "lazy", "none": self = .lazy
        default:
            if let value = Int(t) {
                self = .provisioned(try ProvisionedRate(mibPerSecond: value))
                return
            }
            let mib: Double
            do { mib = try ByteRate(parsing: text).mibPerSecond } catch { throw ProvisionedRate.Error.invalidRate(text) }
            guard mib == mib.rounded(), let value = Int(exactly: mib) else { throw ProvisionedRate.Error.invalidRate(text) }
            self = .provisioned(try ProvisionedRate(mibPerSecond: value))
        }
    }
}

/// When a node's preloader starts reading from EFS.
public enum PreloadStart: String, Sendable, Codable, CaseIterable {
    /// As soon as containerd is ready (the preloader's image is on the baked volume); EBS initialization
    /// continues in the background.
    case containerd
    /// Only once the data volume is fully initialized (e.g. models are written to the volume).
    case volume
}

/// Prices in USD; AWS us-east-1 list prices as defaults.
public struct Pricing: Sendable, Hashable, Codable {
    /// Provisioned-rate initialization, per GiB of full snapshot size, at 300 MiB/s. AWS documents
    /// $0.0036/GB at 300 MiB/s; other rates are assumed to scale linearly with the rate.
    public var provisionedRatePerGiBAt300: Double
    /// EFS reads per GiB (Elastic: $0.03; Provisioned and Bursting reads are covered by the throughput
    /// or storage charge: 0).
    public var efsReadPerGiB: Double
    /// Fast Snapshot Restore per DSU-hour per snapshot per AZ.
    public var fsrPerDSUHour: Double

    public init(provisionedRatePerGiBAt300: Double = 0.0036, efsReadPerGiB: Double = 0.03, fsrPerDSUHour: Double = 0.75) {
        self.provisionedRatePerGiBAt300 = provisionedRatePerGiBAt300
        self.efsReadPerGiB = efsReadPerGiB
        self.fsrPerDSUHour = fsrPerDSUHour
    }

    /// The default EFS read price for a throughput mode.
    public static func defaultEFSReadPerGiB(mode: EFSMode) -> Double { mode == .elastic ? 0.03 : 0 }

    public func provisionedRatePerGiB(_ rate: ProvisionedRate) -> Double {
        provisionedRatePerGiBAt300 * Double(rate.mibPerSecond) / 300
    }
}

/// Everything a plan needs; every number has a documented default in the CLI.
public struct PlanInput: Sendable {
    public var name: String?
    /// Full snapshot size: written 512 KiB blocks.
    public var writtenBytes: UInt64
    /// The image (volume) size, which sets the snapshot size FSR's credits depend on.
    public var volumeBytes: UInt64?
    public var rate: RateChoice
    public var deadline: Double
    /// When each node is asked for, seconds from the start of the burst.
    public var requests: [Double]
    /// Launch to containerd ready.
    public var instanceStart: Double
    public var models: ModelSet
    public var streams: Int
    /// Per stream; nil when one stream can use the whole client limit.
    public var streamLimit: ByteRate?
    public var schedule: StreamSchedule.Kind
    public var efs: EFSLimits
    public var preloadStart: PreloadStart
    public var lazy: LazyHydration
    public var launchThrottle: LaunchThrottle
    public var availabilityZones: Int
    public var pricing: Pricing
    /// Human-readable description of how the requests were produced, for the report.
    public var arrivalDescription: String

    public init(
        name: String? = nil, writtenBytes: UInt64, volumeBytes: UInt64? = nil, rate: RateChoice = .auto,
        deadline: Double, requests: [Double], instanceStart: Double, models: ModelSet, streams: Int = 16,
        streamLimit: ByteRate? = .mibPerSecond(100), schedule: StreamSchedule.Kind = .ranges, efs: EFSLimits,
        preloadStart: PreloadStart = .containerd, lazy: LazyHydration = LazyHydration(),
        launchThrottle: LaunchThrottle = .ec2Default, availabilityZones: Int = 3, pricing: Pricing = Pricing(),
        arrivalDescription: String = ""
    ) {
        self.name = name
        self.writtenBytes = writtenBytes
        self.volumeBytes = volumeBytes
        self.rate = rate
        self.deadline = deadline
        self.requests = requests
        self.instanceStart = instanceStart
        self.models = models
        self.streams = streams
        self.streamLimit = streamLimit
        self.schedule = schedule
        self.efs = efs
        self.preloadStart = preloadStart
        self.lazy = lazy
        self.launchThrottle = launchThrottle
        self.availabilityZones = availabilityZones
        self.pricing = pricing
        self.arrivalDescription = arrivalDescription
    }

    /// Rejects inputs the models cannot run with, naming the input.
    public func validate() throws {
        if requests.isEmpty { throw PlanError.invalidInput("the burst asks for no nodes: give --volumes-per-minute with --burst, --nodes, or --arrivals") }
        if deadline <= 0 { throw PlanError.invalidInput("--deadline must be greater than zero") }
        if instanceStart < 0 { throw PlanError.invalidInput("--instance-start must not be negative") }
        if streams < 1 || streams > 1024 { throw PlanError.invalidInput("--streams must be between 1 and 1024, got \(streams)") }
        if efs.clientLimit.bytesPerSecond <= 0 { throw PlanError.invalidInput("--client-limit must be greater than zero") }
        if efs.readLimit.bytesPerSecond <= 0 { throw PlanError.invalidInput("--efs-read-limit must be greater than zero") }
        if let streamLimit, streamLimit.bytesPerSecond <= 0 { throw PlanError.invalidInput("--stream-limit must be greater than zero") }
        if availabilityZones < 1 { throw PlanError.invalidInput("--azs must be at least 1") }
        if launchThrottle.capacity < 1 || launchThrottle.refillPerSecond <= 0 {
            throw PlanError.invalidInput("--launch-bucket must be at least 1 and --launch-refill greater than zero")
        }
        if lazy.rates.lowerBound.bytesPerSecond <= 0 { throw PlanError.invalidInput("--lazy-rate must be greater than zero") }
    }
}

/// Why a plan cannot be made: an input that does not read (exit 2) or a file that cannot be read (exit 3).
public enum PlanError: Swift.Error, CustomStringConvertible, Equatable {
    case invalidInput(String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .invalidInput(let message), .unreadable(let message): return message
        }
    }
}
