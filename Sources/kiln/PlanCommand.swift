import ArgumentParser
import Foundation
import KilnCore
import KilnPlan
import KilnVolume

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

            Sizes: 187GB or 187G (10^9), 50GiB or 50Gi (2^30); a bare number is bytes. Rates: 60GiB/s, 1500MiB/s. \
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
        let result = try Planner.plan(try makeOptions().resolve())
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

    /// The command line over the recipe's `plan:` section (read by the one recipe reader); the plan library
    /// merges, parses and applies the defaults.
    func makeOptions() throws -> PlanOptions {
        let fromRecipe = try recipe.map { try Recipe(path: $0).plan } ?? PlanOptions()
        var cli = PlanOptions()
        let given: [(PlanOption, String?)] = [
            (.manifest, manifest), (.writtenBytes, writtenBytes), (.snapshotSize, snapshotSize), (.rate, rate),
            (.deadline, deadline), (.volumesPerMinute, volumesPerMinute), (.burst, burst), (.nodes, nodes),
            (.arrivals, arrivals), (.instanceStart, instanceStart), (.modelBytes, modelBytes), (.models, models),
            (.streams, streams), (.streamLimit, streamLimit), (.schedule, schedule), (.efsMode, efsMode),
            (.efsReadLimit, efsReadLimit), (.clientLimit, clientLimit), (.efsStored, efsStored),
            (.preloadAfter, preloadAfter), (.lazyRate, lazyRate), (.launchBucket, launchBucket),
            (.launchRefill, launchRefill), (.launchTokens, launchTokens), (.azs, azs), (.ratePrice, ratePrice),
            (.efsReadPrice, efsReadPrice), (.fsrPrice, fsrPrice),
        ]
        for (option, text) in given { cli.set(option, text, origin: .commandLine) }
        return cli.merged(over: fromRecipe)
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
