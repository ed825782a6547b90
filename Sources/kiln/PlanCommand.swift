import ArgumentParser
import Foundation
import KilnPlan

/// `kiln plan`: how fast a burst of new nodes gets ready, what binds first, and what it costs.
struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Plan how fast a fleet of new nodes gets ready, and what it costs.",
        discussion: """
            Models, for a burst of new nodes that each get a data volume from the baked snapshot and load model \
            files from EFS: EBS volume initialization (provisioned rate 100-300 MiB/s, the default lazy rate as a \
            range, Fast Snapshot Restore credits), EC2 launch throttling, and a discrete-event simulation of the \
            EFS preloads under the per-stream, per-node and per-file-system limits. Reports the ready-time \
            percentiles, the bottleneck, the recommendation and the costs.

            Sizes: 187GB (10^9), 50GiB or 50Gi (2^30); a bare number is bytes. Rates: 60GiB/s, 1500MiB/s. \
            Durations: 90s, 6m, 1h30m, 7m30s; a bare number is seconds.

            A recipe's `plan:` section supplies defaults with the option names in camelCase (deadline: 7m, \
            volumesPerMinute: 200, burst: 3m, instanceStart: 90s, modelBytes: 50GB, models: path, streams: 16, \
            efsMode: elastic, rate: auto, manifest: path, ...); options on the command line win. Paths in the \
            recipe are relative to it.

            Exit codes: 0 the deadline is met, 1 infeasible (the report says why and what would fix it), \
            2 bad input, 3 I/O error.
            """)

    @Argument(help: "Recipe YAML whose `plan:` section supplies defaults for the options below.")
    var recipe: String?

    @Option(help: ArgumentHelp("Snapshot manifest written by `kiln bake`: its blocks.writtenBytes is the full snapshot size.", valueName: "manifest.json"))
    var manifest: String?

    @Option(help: ArgumentHelp("Full snapshot size (written blocks) instead of a manifest, e.g. 187GB.", valueName: "size"))
    var writtenBytes: String?

    @Option(help: ArgumentHelp("Snapshot (volume) size for FSR's credits. Default: the manifest's volume.size, else the written bytes.", valueName: "size"))
    var snapshotSize: String?

    @Option(help: ArgumentHelp("Volume initialization rate: 100..300 (MiB/s), auto (the lowest that meets the deadline) or default (no provisioned rate, lazy). Default: auto.", valueName: "rate"))
    var rate: String?

    @Option(help: ArgumentHelp("From a node's request to ready (volume initialized and models loaded). Default: 7m.", valueName: "duration"))
    var deadline: String?

    @Option(help: ArgumentHelp("Nodes (volumes) requested a minute, evenly spaced. Default: 200.", valueName: "n"))
    var volumesPerMinute: String?

    @Option(help: ArgumentHelp("How long the burst lasts. Default: 1m.", valueName: "duration"))
    var burst: String?

    @Option(help: ArgumentHelp("Total nodes in the burst. Default: volumes-per-minute x burst.", valueName: "n"))
    var nodes: String?

    @Option(help: ArgumentHelp("CSV of request times instead of a uniform burst: one line per request, time[,count], time in seconds or like 90s.", valueName: "file"))
    var arrivals: String?

    @Option(help: ArgumentHelp("From launch to containerd ready. Default: 90s.", valueName: "duration"))
    var instanceStart: String?

    @Option(help: ArgumentHelp("Model bytes every node loads from EFS, as one byte range. Default: 0 (no models).", valueName: "size"))
    var modelBytes: String?

    @Option(help: ArgumentHelp("Model files every node loads: a listing (path and size per line) or a directory to scan.", valueName: "path"))
    var models: String?

    @Option(help: ArgumentHelp("Parallel preload streams per node. Default: 16.", valueName: "n"))
    var streams: String?

    @Option(help: ArgumentHelp("Most one stream reads (a single NFS reader), or none. Default: 100MiB/s.", valueName: "rate"))
    var streamLimit: String?

    @Option(help: ArgumentHelp("How files go on streams: lpt (whole files, largest first onto the least-loaded stream) or ranges (all bytes split evenly, like Run:ai's streamer). Default: lpt with --models, ranges otherwise.", valueName: "lpt|ranges"))
    var schedule: String?

    @Option(help: ArgumentHelp("EFS throughput mode: elastic, provisioned or bursting. Default: elastic.", valueName: "mode"))
    var efsMode: String?

    @Option(help: ArgumentHelp("File-system read limit shared by all nodes. Default by mode: elastic 60GiB/s (10GiB/s outside the large regions), provisioned 3GiB/s, bursting 3 x max(100MiB/s, 100MiB/s per TiB stored).", valueName: "rate"))
    var efsReadLimit: String?

    @Option(help: ArgumentHelp("Per-node (client) EFS limit. Default: 1500MiB/s for elastic (efs-utils >= 2.0 or the CSI driver), 500MiB/s otherwise.", valueName: "rate"))
    var clientLimit: String?

    @Option(help: ArgumentHelp("Bytes stored in a bursting file system (sets its burst rate). Default: the model bytes.", valueName: "size"))
    var efsStored: String?

    @Option(help: ArgumentHelp("When the preload starts: containerd (as soon as containerd is ready) or volume (after the volume is initialized). Default: containerd.", valueName: "when"))
    var preloadAfter: String?

    @Option(help: ArgumentHelp("Range of the default (lazy) initialization rate. Default: 50MB/s..140MB/s.", valueName: "low..high"))
    var lazyRate: String?

    @Option(help: ArgumentHelp("EC2 launch token bucket size (instances). Default: 1000.", valueName: "n"))
    var launchBucket: String?

    @Option(help: ArgumentHelp("EC2 launch tokens refilled per second. Default: 2.", valueName: "n"))
    var launchRefill: String?

    @Option(help: ArgumentHelp("Launch tokens left when the burst starts. Default: a full bucket.", valueName: "n"))
    var launchTokens: String?

    @Option(help: ArgumentHelp("Availability Zones the burst spreads over (FSR has one bucket per AZ and bills per AZ). Default: 3.", valueName: "n"))
    var azs: String?

    @Option(help: ArgumentHelp("Provisioned-rate price in USD per GiB written at 300 MiB/s, scaled linearly for lower rates. Default: 0.0036.", valueName: "usd"))
    var ratePrice: String?

    @Option(help: ArgumentHelp("EFS read price in USD per GiB. Default: 0.03 for elastic, 0 otherwise.", valueName: "usd"))
    var efsReadPrice: String?

    @Option(help: ArgumentHelp("FSR price in USD per DSU-hour per AZ. Default: 0.75.", valueName: "usd"))
    var fsrPrice: String?

    @Option(help: ArgumentHelp("Write an SVG timeline to this file.", valueName: "file"))
    var svg: String?

    @Option(help: ArgumentHelp("Write an HTML page (timeline and report) to this file.", valueName: "file"))
    var html: String?

    @OptionGroup var report: ReportOptions

    func run() async throws {
        let started = Date()
        let input = try makeInput()
        let result: PlanReport
        do {
            result = try Planner.plan(input)
        } catch let error as PlanError {
            throw CLIFailure.input(error.description)
        }
        if let svg { try PlanOutput.write(result.svg(), to: svg, option: "--svg") }
        if let html { try PlanOutput.write(result.html(), to: html, option: "--html") }
        if report.json {
            try printJSON(result)
        } else {
            FileHandle.standardOutput.write(Data(result.text().utf8))
        }
        Console.progress(String(format: "planned %d nodes in %.0f ms", result.nodes.count, Date().timeIntervalSince(started) * 1000), quiet: report.quiet || report.json)
        if !result.feasible {
            throw CLIFailure.failed("plan infeasible: \(result.nodes.missedDeadline) of \(result.nodes.count) nodes miss the \(TimeSpan.format(result.deadlineSeconds)) deadline; bottleneck \(result.bottleneck.rawValue)")
        }
    }

    /// Merges the command line over the recipe over the defaults and parses every value, naming the option
    /// whose text is wrong.
    func makeInput() throws -> PlanInput {
        let recipe = try self.recipe.map { try PlanRecipe(path: $0) } ?? PlanRecipe()
        let values = PlanValues(recipe: recipe)

        // The volume: a manifest or a size, command line first.
        var written: UInt64
        var volumeBytes: UInt64?
        var name = recipe.name
        let cliManifest = manifest, cliWritten = writtenBytes
        if cliManifest != nil, cliWritten != nil { throw CLIFailure.input("give --manifest or --written-bytes, not both") }
        let manifestPath = cliManifest ?? (cliWritten == nil ? recipe["manifest"] : nil)
        let writtenText = cliWritten ?? (cliManifest == nil && manifestPath == nil ? recipe["writtenBytes"] : nil)
        if let manifestPath {
            let summary: ManifestSummary
            do {
                summary = try ManifestSummary.load(path: manifestPath)
            } catch let error as ManifestSummary.Error {
                if case .unreadable = error { throw CLIFailure.io(error.description) }
                throw CLIFailure.input("--manifest: \(error.description)")
            }
            written = summary.writtenBytes
            volumeBytes = summary.volumeBytes
            name = name ?? summary.name
        } else if let writtenText {
            written = try values.size(writtenText, option: "--written-bytes")
        } else {
            throw CLIFailure.input("no snapshot size: give --manifest manifest.json or --written-bytes SIZE (or plan.manifest in the recipe)")
        }
        if let text = values.pick(snapshotSize, "snapshotSize") {
            volumeBytes = try values.size(text, option: "--snapshot-size")
        }

        let rateChoice: RateChoice
        do {
            rateChoice = try RateChoice(parsing: values.pick(rate, "rate") ?? "auto")
        } catch {
            throw CLIFailure.input("--rate: \(error)")
        }
        let deadlineSeconds = try values.duration(values.pick(deadline, "deadline") ?? "7m", option: "--deadline")
        let startSeconds = try values.duration(values.pick(instanceStart, "instanceStart") ?? "90s", option: "--instance-start")

        // Requests.
        var requests: [Double]
        var arrivalDescription: String
        if let path = values.pick(arrivals, "arrivals") {
            guard FileManager.default.fileExists(atPath: path) else { throw CLIFailure.input("--arrivals: file '\(path)' does not exist") }
            guard let data = PlanFile.read(path), let text = String(data: data, encoding: .utf8) else {
                throw CLIFailure.io("--arrivals: file '\(path)' cannot be read")
            }
            do {
                requests = try Arrivals.parseCSV(text, source: path)
            } catch {
                throw CLIFailure.input("--arrivals: \(error)")
            }
            arrivalDescription = "launch times from \(path)"
        } else {
            let perMinute = try values.number(values.pick(volumesPerMinute, "volumesPerMinute") ?? "200", option: "--volumes-per-minute")
            guard perMinute > 0 else { throw CLIFailure.input("--volumes-per-minute must be greater than zero") }
            let burstText = values.pick(burst, "burst")
            let burstSeconds = try values.duration(burstText ?? "1m", option: "--burst")
            let count: Int
            if let nodesText = values.pick(nodes, "nodes") {
                count = try values.integer(nodesText, option: "--nodes", range: 1...1_000_000)
            } else {
                guard burstSeconds > 0 else { throw CLIFailure.input("--burst must be greater than zero") }
                count = Arrivals.count(perMinute: perMinute, burstSeconds: burstSeconds)
            }
            requests = Arrivals.uniform(perMinute: perMinute, count: count)
            arrivalDescription = String(format: "%g a minute over %@", perMinute, TimeSpan.format(Double(count) * 60 / perMinute))
        }

        // Models.
        let cliModelBytes = modelBytes, cliModels = models
        if cliModelBytes != nil, cliModels != nil { throw CLIFailure.input("give --model-bytes or --models, not both") }
        var modelSet = ModelSet(files: [])
        var haveListing = false
        let modelsPath = cliModels ?? (cliModelBytes == nil ? recipe["models"] : nil)
        if let modelsPath {
            do {
                modelSet = try ModelSet.load(from: modelsPath)
            } catch let error as ModelSet.Error {
                if case .unreadable = error { throw CLIFailure.io(error.description) }
                throw CLIFailure.input("--models: \(error.description)")
            }
            haveListing = true
        } else if let text = cliModelBytes ?? recipe["modelBytes"] {
            modelSet = .single(bytes: try values.size(text, option: "--model-bytes"))
        }
        let streamCount = try values.integer(values.pick(streams, "streams") ?? "16", option: "--streams", range: 1...1024)
        var perStream: ByteRate? = .mibPerSecond(100)
        if let text = values.pick(streamLimit, "streamLimit") {
            perStream = text.lowercased() == "none" ? nil : try values.rate(text, option: "--stream-limit")
        }
        let scheduleKind: StreamSchedule.Kind
        if let text = values.pick(schedule, "schedule") {
            guard let kind = StreamSchedule.Kind(rawValue: text.lowercased()) else {
                throw CLIFailure.input("--schedule: '\(text)' is not lpt or ranges")
            }
            scheduleKind = kind
        } else {
            scheduleKind = haveListing ? .lpt : .ranges
        }

        // EFS.
        let modeText = values.pick(efsMode, "efsMode") ?? "elastic"
        guard let mode = EFSMode(rawValue: modeText.lowercased()) else {
            throw CLIFailure.input("--efs-mode: '\(modeText)' is not elastic, provisioned or bursting")
        }
        let readLimit = try values.pick(efsReadLimit, "efsReadLimit").map { try values.rate($0, option: "--efs-read-limit") }
        let client = try values.pick(clientLimit, "clientLimit").map { try values.rate($0, option: "--client-limit") }
        let stored = try values.pick(efsStored, "efsStored").map { try values.size($0, option: "--efs-stored") } ?? modelSet.totalBytes
        let efs = EFSLimits.defaults(mode: mode, clientLimit: client, readLimit: readLimit, storedBytes: stored)

        let preloadText = values.pick(preloadAfter, "preloadAfter") ?? "containerd"
        guard let preload = PreloadStart(rawValue: preloadText.lowercased()) else {
            throw CLIFailure.input("--preload-after: '\(preloadText)' is not containerd or volume")
        }
        var lazy = LazyHydration()
        if let text = values.pick(lazyRate, "lazyRate") {
            do {
                lazy = LazyHydration(rates: try ByteRate.parseRange(text))
            } catch {
                throw CLIFailure.input("--lazy-rate: \(error)")
            }
        }
        let bucket = try values.number(values.pick(launchBucket, "launchBucket") ?? "1000", option: "--launch-bucket")
        let refill = try values.number(values.pick(launchRefill, "launchRefill") ?? "2", option: "--launch-refill")
        let tokens = try values.pick(launchTokens, "launchTokens").map { try values.number($0, option: "--launch-tokens") }
        if let tokens, tokens > bucket { throw CLIFailure.input("--launch-tokens \(tokens) exceeds --launch-bucket \(bucket)") }
        let zones = try values.integer(values.pick(azs, "azs") ?? "3", option: "--azs", range: 1...64)
        let pricing = Pricing(
            provisionedRatePerGiBAt300: try values.number(values.pick(ratePrice, "ratePrice") ?? "0.0036", option: "--rate-price"),
            efsReadPerGiB: try values.pick(efsReadPrice, "efsReadPrice").map { try values.number($0, option: "--efs-read-price") }
                ?? Pricing.defaultEFSReadPerGiB(mode: mode),
            fsrPerDSUHour: try values.number(values.pick(fsrPrice, "fsrPrice") ?? "0.75", option: "--fsr-price"))

        return PlanInput(
            name: name, writtenBytes: written, volumeBytes: volumeBytes, rate: rateChoice, deadline: deadlineSeconds,
            requests: requests, instanceStart: startSeconds, models: modelSet, streams: streamCount, streamLimit: perStream,
            schedule: scheduleKind, efs: efs, preloadStart: preload, lazy: lazy,
            launchThrottle: LaunchThrottle(capacity: bucket, refillPerSecond: refill, initialTokens: tokens),
            availabilityZones: zones, pricing: pricing, arrivalDescription: arrivalDescription)
    }
}

/// Parses option text with KilnPlan's parsers and turns their errors into one clear usage line.
struct PlanValues {
    let recipe: PlanRecipe

    /// The command-line value, else the recipe's.
    func pick(_ cli: String?, _ key: String) -> String? { cli ?? recipe[key] }

    func size(_ text: String, option: String) throws -> UInt64 {
        do { return try ByteSize(parsing: text).bytes } catch { throw CLIFailure.input("\(option): \(error)") }
    }

    func rate(_ text: String, option: String) throws -> ByteRate {
        do { return try ByteRate(parsing: text) } catch { throw CLIFailure.input("\(option): \(error)") }
    }

    func duration(_ text: String, option: String) throws -> Double {
        do { return try TimeSpan(parsing: text).seconds } catch { throw CLIFailure.input("\(option): \(error)") }
    }

    func number(_ text: String, option: String) throws -> Double {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, value >= 0 else {
            throw CLIFailure.input("\(option): '\(text)' is not a non-negative number")
        }
        return value
    }

    func integer(_ text: String, option: String, range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw CLIFailure.input("\(option): '\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

/// Writes report files atomically: a reader never sees half a timeline.
enum PlanOutput {
    static func write(_ text: String, to path: String, option: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CLIFailure.io("\(option): cannot write '\(path)': \(error.localizedDescription)")
        }
    }
}
