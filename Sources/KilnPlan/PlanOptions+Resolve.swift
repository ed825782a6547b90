import Foundation
import KilnCore

extension PlanOptions {
    /// Reads every value, applies the documented defaults, loads the files named (manifest, models, arrivals)
    /// and returns what the planner runs on. Errors name the flag or recipe key whose value is wrong.
    public func resolve() throws -> PlanInput {
        var name = self.name

        // The volume: a manifest or a size.
        var written: UInt64
        var volumeBytes: UInt64?
        if let manifest = self[.manifest], let bytes = self[.writtenBytes], manifest.origin == bytes.origin {
            throw PlanError.invalidInput("give \(Self.label(.manifest, manifest.origin)) or \(Self.label(.writtenBytes, bytes.origin)), not both")
        }
        if let manifest = self[.manifest] {
            let summary = try ManifestSummary.load(path: manifest.text, as: Self.label(.manifest, manifest.origin))
            written = summary.writtenBytes
            volumeBytes = summary.volumeBytes
            name = name ?? summary.name
        } else if self[.writtenBytes] != nil {
            written = try size(.writtenBytes) ?? 0
        } else {
            throw PlanError.invalidInput("no snapshot size: give --manifest manifest.json or --written-bytes SIZE (or plan.manifest in the recipe)")
        }
        if let bytes = try size(.snapshotSize) { volumeBytes = bytes }

        let rateChoice = try initializationRate() ?? .auto
        let deadlineSeconds = try duration(.deadline) ?? 7 * 60
        let startSeconds = try duration(.instanceStart) ?? 90

        // Requests.
        var requests: [Double]
        var arrivalDescription: String
        if let arrivals = self[.arrivals] {
            let label = Self.label(.arrivals, arrivals.origin)
            let text = try Self.readText(arrivals.text, label: label)
            do {
                requests = try Arrivals.parseCSV(text, source: arrivals.text)
            } catch {
                throw PlanError.invalidInput("\(label): \(error)")
            }
            arrivalDescription = "launch times from \(arrivals.text)"
        } else {
            let perMinute = try number(.volumesPerMinute) ?? 200
            guard perMinute > 0 else { throw PlanError.invalidInput("\(label(.volumesPerMinute)) must be greater than zero") }
            let burstSeconds = try duration(.burst) ?? 60
            let count: Int
            if let nodes = try integer(.nodes) {
                count = nodes
            } else {
                guard burstSeconds > 0 else { throw PlanError.invalidInput("\(label(.burst)) must be greater than zero") }
                count = Arrivals.count(perMinute: perMinute, burstSeconds: burstSeconds)
            }
            requests = Arrivals.uniform(perMinute: perMinute, count: count)
            arrivalDescription = String(format: "%g a minute over %@", perMinute, TimeSpan.format(Double(count) * 60 / perMinute))
        }

        // Models.
        if let models = self[.models], let bytes = self[.modelBytes], models.origin == bytes.origin {
            throw PlanError.invalidInput("give \(Self.label(.models, models.origin)) or \(Self.label(.modelBytes, bytes.origin)), not both")
        }
        var modelSet = ModelSet(files: [])
        var haveListing = false
        if let models = self[.models] {
            do {
                modelSet = try ModelSet.load(from: models.text)
            } catch let error as ModelSet.Error {
                if case .unreadable = error { throw PlanError.unreadable("\(Self.label(.models, models.origin)): \(error)") }
                throw PlanError.invalidInput("\(Self.label(.models, models.origin)): \(error)")
            }
            haveListing = true
        } else if let bytes = try size(.modelBytes) {
            modelSet = .single(bytes: bytes)
        }
        let streamCount = try integer(.streams) ?? 16
        var perStream: ByteRate? = .mibPerSecond(100)
        if let limit = self[.streamLimit] { perStream = limit.text.lowercased() == "none" ? nil : try rate(.streamLimit) }
        let scheduleKind = try choice(.schedule, StreamSchedule.Kind.self) ?? (haveListing ? .lpt : .ranges)

        // EFS.
        let mode = try choice(.efsMode, EFSMode.self) ?? .elastic
        let readLimit = try rate(.efsReadLimit)
        let client = try rate(.clientLimit)
        let stored = try size(.efsStored) ?? modelSet.totalBytes
        let efs = EFSLimits.defaults(mode: mode, clientLimit: client, readLimit: readLimit, storedBytes: stored)
        let preload = try choice(.preloadAfter, PreloadStart.self) ?? .containerd
        var lazy = LazyHydration()
        if let range = try rateRange(.lazyRate) { lazy = LazyHydration(rates: range) }

        let bucket = try number(.launchBucket) ?? 1000
        let refill = try number(.launchRefill) ?? 2
        let tokens = try number(.launchTokens)
        if let tokens, tokens > bucket {
            throw PlanError.invalidInput("\(label(.launchTokens)) \(tokens) exceeds \(label(.launchBucket)) \(bucket)")
        }
        let zones = try integer(.azs) ?? 3
        let pricing = Pricing(
            provisionedRatePerGiBAt300: try number(.ratePrice) ?? 0.0036,
            efsReadPerGiB: try number(.efsReadPrice) ?? Pricing.defaultEFSReadPerGiB(mode: mode),
            fsrPerDSUHour: try number(.fsrPrice) ?? 0.75)

        return PlanInput(
            name: name, writtenBytes: written, volumeBytes: volumeBytes, rate: rateChoice, deadline: deadlineSeconds,
            requests: requests, instanceStart: startSeconds, models: modelSet, streams: streamCount, streamLimit: perStream,
            schedule: scheduleKind, efs: efs, preloadStart: preload, lazy: lazy,
            launchThrottle: LaunchThrottle(capacity: bucket, refillPerSecond: refill, initialTokens: tokens),
            availabilityZones: zones, pricing: pricing, arrivalDescription: arrivalDescription)
    }

    // The readers of each kind of value: nil when the option is not set; a value that does not read is an
    // input error named by its flag or recipe key.

    private func label(_ option: PlanOption) -> String { Self.label(option, self[option]?.origin ?? .commandLine) }

    private func reading<T>(_ option: PlanOption, _ parse: (String) throws -> T) throws -> T? {
        guard let s = self[option] else { return nil }
        do { return try parse(s.text) } catch { throw PlanError.invalidInput("\(label(option)): \(error)") }
    }

    func size(_ option: PlanOption) throws -> UInt64? { try reading(option) { try ByteSize(parsing: $0).bytes } }

    /// A rate; `none` (for `--stream-limit`) reads as nil.
    func rate(_ option: PlanOption) throws -> ByteRate? {
        try reading(option) { $0.lowercased() == "none" && option.kind == .rateOrNone ? nil : try ByteRate(parsing: $0) } ?? nil
    }

    func rateRange(_ option: PlanOption) throws -> ClosedRange<ByteRate>? { try reading(option) { try ByteRate.parseRange($0) } }

    func duration(_ option: PlanOption) throws -> Double? { try reading(option) { try TimeSpan(parsing: $0).seconds } }

    func number(_ option: PlanOption) throws -> Double? { try reading(option) { try Quantity.number($0) } }

    func integer(_ option: PlanOption) throws -> Int? {
        guard case .integer(let range) = option.kind else { return nil }
        return try reading(option) { try Quantity.integer($0, in: range) }
    }

    func initializationRate() throws -> RateChoice? { try reading(.rate) { try RateChoice(parsing: $0) } }

    func word(_ option: PlanOption, in words: [String]) throws -> String? {
        try reading(option) { text in
            guard words.contains(text.lowercased()) else {
                throw PlanError.invalidInput("'\(text)' is not \(words.joined(separator: ", ").replacingLast(", ", with: " or "))")
            }
            return text.lowercased()
        }
    }

    private func choice<T: RawRepresentable & CaseIterable>(_ option: PlanOption, _ type: T.Type) throws -> T? where T.RawValue == String {
        try word(option, in: T.allCases.map(\.rawValue)).flatMap { T(rawValue: $0) }
    }

    /// A text file named by an option: missing is the user's to fix (exit 2), unreadable the system's (exit 3).
    static func readText(_ path: String, label: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw PlanError.invalidInput("\(label): file '\(path)' does not exist") }
        guard let data = PlanFile.read(path), let text = String(data: data, encoding: .utf8) else {
            throw PlanError.unreadable("\(label): file '\(path)' cannot be read")
        }
        return text
    }
}
