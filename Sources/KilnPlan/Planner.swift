import Foundation
import KilnCore

/// Runs every model for a ``PlanInput`` and assembles the ``PlanReport``.
public enum Planner {
    /// Slack for comparing simulated times with the deadline.
    static let epsilon = 1e-6

    public static func plan(_ input: PlanInput) throws -> PlanReport {
        try input.validate()
        let requests = input.requests.sorted()
        let n = requests.count
        let launches = input.launchThrottle.launchTimes(for: requests)
        let waits = zip(launches, requests).map { $0 - $1 }
        let maxWait = waits.max() ?? 0
        guard maxWait.isFinite else { throw PlanError.invalidInput("EC2 launch throttling never launches some nodes: check --launch-refill") }
        let bytes = input.writtenBytes
        var assumptions: [String] = []
        var recommendations: [String] = []

        // Volume initialization.
        let volumeBudget = input.deadline - maxWait
        var rate: ProvisionedRate?
        var requiredMiBps: Double?
        var excessBytes: UInt64?
        var autoRate = false
        let max300 = try ProvisionedRate(mibPerSecond: ProvisionedRate.validRange.upperBound)
        switch input.rate {
        case .provisioned(let chosen):
            rate = chosen
        case .lazy:
            rate = nil
        case .auto:
            autoRate = true
            let required = ProvisionedRate.requiredMiBps(writtenBytes: bytes, within: volumeBudget)
            requiredMiBps = required.isFinite ? required : nil
            switch ProvisionedRate.lowest(writtenBytes: bytes, within: volumeBudget) {
            case .rate(let chosen): rate = chosen
            case .infeasible(_, let excess):
                rate = max300
                excessBytes = excess
            }
        }
        let lazyRange = input.lazy.initializationSeconds(writtenBytes: bytes)
        func initialization(_ rate: ProvisionedRate?) -> Double {
            rate.map { $0.initializationSeconds(writtenBytes: bytes) } ?? lazyRange.upperBound
        }

        // Preload schedules and the single-node answers.
        let streamLimit = input.streamLimit?.bytesPerSecond ?? .infinity
        let limits = FleetSimulation.Limits(
            clientLimit: input.efs.clientLimit.bytesPerSecond, streamLimit: streamLimit,
            fileSystemLimit: input.efs.readLimit.bytesPerSecond)
        func singleNode(_ kind: StreamSchedule.Kind, _ streams: Int) -> Double {
            let schedule = StreamSchedule(kind: kind, models: input.models, streams: streams)
            return FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: limits).singleNodeSeconds()
        }
        let schedule = StreamSchedule(kind: input.schedule, models: input.models, streams: input.streams)
        let simulation = FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: limits)
        let lptSeconds = singleNode(.lpt, input.streams)
        let rangesSeconds = singleNode(.ranges, input.streams)
        let singleSeconds = input.schedule == .lpt ? lptSeconds : rangesSeconds
        // Beyond a few dozen streams nothing changes for realistic limits; the bound keeps the search cheap.
        var counts = Array(1...min(128, max(64, input.streams)))
        if input.streams > 128 { counts.append(input.streams) }
        let candidates = counts.map { ($0, singleNode(input.schedule, $0)) }
        let best = candidates.map(\.1).min() ?? 0
        let recommendedStreams = candidates.first { $0.1 <= best * 1.01 + epsilon }?.0 ?? input.streams

        // The fleet for a given volume initialization time and file-system limit.
        struct Fleet {
            var containerd: [Double]
            var volume: [Double]
            var result: FleetSimulation.Result
            var ready: [Double]
            var modelReady: [Double]
        }
        func runFleet(initSeconds: Double, simulation: FleetSimulation, tracked: Set<Int> = []) -> Fleet {
            let containerd = launches.map { $0 + input.instanceStart }
            let volume = launches.map { $0 + initSeconds }
            let starts = zip(containerd, volume).map { input.preloadStart == .containerd ? $0 : max($0, $1) }
            let result = simulation.run(starts: starts, tracked: tracked)
            let modelReady = (0..<n).map { max(containerd[$0], result.nodes[$0].loadEnd) }
            let ready = (0..<n).map { max(modelReady[$0], volume[$0]) }
            return Fleet(containerd: containerd, volume: volume, result: result, ready: ready, modelReady: modelReady)
        }
        func meets(_ times: [Double]) -> Bool {
            zip(times, requests).allSatisfy { $0 - $1 <= input.deadline + epsilon }
        }

        // With preloads waiting for the volume, the rate also moves the model path: search the lowest rate
        // that makes the whole plan feasible (feasibility only improves with the rate).
        if autoRate, input.preloadStart == .volume, input.models.totalBytes > 0, let lowest = rate {
            if meets(runFleet(initSeconds: initialization(max300), simulation: simulation).ready) {
                var lo = lowest.mibPerSecond, hi = max300.mibPerSecond
                while lo < hi {
                    let mid = (lo + hi) / 2
                    let candidate = try ProvisionedRate(mibPerSecond: mid)
                    if meets(runFleet(initSeconds: initialization(candidate), simulation: simulation).ready) {
                        hi = mid
                    } else {
                        lo = mid + 1
                    }
                }
                rate = try ProvisionedRate(mibPerSecond: lo)
            } else {
                rate = max300
            }
        }
        let initSeconds = initialization(rate)

        // First pass to find the sample nodes, second pass to record their rate history.
        var fleet = runFleet(initSeconds: initSeconds, simulation: simulation)
        let durations = (0..<n).map { fleet.ready[$0] - requests[$0] }
        let byDuration = (0..<n).sorted { (durations[$0], $0) < (durations[$1], $1) }
        let typicalIndex = byDuration[(n - 1) / 2]
        let slowestIndex = byDuration[n - 1]
        fleet = runFleet(initSeconds: initSeconds, simulation: simulation, tracked: [typicalIndex, slowestIndex])

        let feasible = meets(fleet.ready)
        let volumeOK = meets(fleet.volume)
        let modelsOK = meets(fleet.modelReady)
        let loadDurations = fleet.result.nodes.map { $0.loadEnd - $0.loadStart }

        // Peak number of nodes loading at once.
        var edges: [(Double, Int)] = []
        for node in fleet.result.nodes where node.loadEnd > node.loadStart {
            edges.append((node.loadStart, 1))
            edges.append((node.loadEnd, -1))
        }
        edges.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var loading = 0, peakLoading = 0
        for edge in edges {
            loading += edge.1
            peakLoading = max(peakLoading, loading)
        }

        // Volume fixes.
        if !volumeOK {
            let lowest = ProvisionedRate.lowest(writtenBytes: bytes, within: volumeBudget)
            switch lowest {
            case .rate(let needed):
                recommendations.append(
                    "set volumeInitializationRate to \(needed.mibPerSecond) MiB/s: the volume (\(ByteSize.decimal(Double(bytes))) written) is then initialized in \(TimeSpan.format(needed.initializationSeconds(writtenBytes: bytes))), within the \(TimeSpan.format(volumeBudget)) left after launch throttling")
            case .infeasible(let required, let excess):
                excessBytes = excess
                recommendations.append(
                    "the volume cannot be initialized in time: \(ByteSize.decimal(Double(bytes))) written needs \(String(format: "%.0f", required)) MiB/s to finish in \(TimeSpan.format(volumeBudget)), EBS allows at most 300 MiB/s (\(TimeSpan.format(max300.initializationSeconds(writtenBytes: bytes))))")
                recommendations.append(
                    "write at least \(ByteSize.decimal(Double(excess))) fewer bytes: bake with `keepLayerBlobs: false` (the unpacked snapshots stay, the compressed blobs go), drop images the nodes do not need at start, or move model files off the volume onto EFS")
            }
        } else if let rate, !autoRate, case .rate(let lowest) = ProvisionedRate.lowest(writtenBytes: bytes, within: volumeBudget),
            lowest.mibPerSecond < rate.mibPerSecond
        {
            let saving = Double(n) * Double(bytes) / Units.gib
                * (input.pricing.provisionedRatePerGiB(rate) - input.pricing.provisionedRatePerGiB(lowest))
            recommendations.append(
                "volumeInitializationRate \(lowest.mibPerSecond) MiB/s would also meet the deadline (initialized in \(TimeSpan.format(lowest.initializationSeconds(writtenBytes: bytes)))) and cost \(String(format: "$%.2f", saving)) less than \(rate.mibPerSecond) MiB/s for this burst")
        } else if let rate, autoRate {
            let costAt300 = Double(n) * Double(bytes) / Units.gib * input.pricing.provisionedRatePerGiB(max300)
            let costAtRate = Double(n) * Double(bytes) / Units.gib * input.pricing.provisionedRatePerGiB(rate)
            recommendations.append(
                "volumeInitializationRate: \(rate.mibPerSecond) MiB/s is the lowest rate that meets the deadline (initialized in \(TimeSpan.format(initSeconds)); 300 MiB/s would take \(TimeSpan.format(initialization(max300))) and cost \(String(format: "$%.2f", costAt300 - costAtRate)) more for this burst)")
        }
        if rate == nil {
            assumptions.append("no provisioned rate: volumes initialize lazily; the plan uses the pessimistic end of \(ByteRate.format(input.lazy.rates.lowerBound.bytesPerSecond))..\(ByteRate.format(input.lazy.rates.upperBound.bytesPerSecond)) (default rate fluctuates; a community measurement on gp3 saw 130-140 MB/s)")
        }

        // Model fixes.
        var requiredFileSystem: Double?
        if !modelsOK, input.models.totalBytes > 0 {
            let slowestModel = (0..<n).max { fleet.modelReady[$0] - requests[$0] < fleet.modelReady[$1] - requests[$1] } ?? 0
            let wait = launches[slowestModel] - requests[slowestModel]
            let gate = input.preloadStart == .volume ? max(input.instanceStart, initSeconds) : input.instanceStart
            let alone = wait + gate + singleSeconds
            if wait + gate >= input.deadline {
                recommendations.append(
                    "the deadline (\(TimeSpan.format(input.deadline))) is shorter than the launch wait and instance start before the preload (\(TimeSpan.format(wait + gate))): no volume or EFS setting can meet it")
            } else if alone > input.deadline + epsilon {
                let budget = input.deadline - wait - gate
                let nodeRate = min(limits.clientLimit, limits.fileSystemLimit, streamLimit * Double(input.streams))
                let fits = max(0, budget) * nodeRate
                recommendations.append(
                    "even alone on EFS a node cannot load \(ByteSize.decimal(Double(input.models.totalBytes))) in time: it needs \(TimeSpan.format(singleSeconds)) at \(ByteRate.format(nodeRate)) but only \(TimeSpan.format(max(0, budget))) remain after launch and instance start; load at most \(ByteSize.decimal(fits)) per node, or shorten the instance start")
                if input.efs.mode == .elastic, limits.clientLimit < 1500 * Units.mib {
                    recommendations.append("raise the per-node limit to 1500 MiB/s: Elastic throughput with efs-utils >= 2.0 or the EFS CSI driver")
                }
            } else {
                // Search the file-system read limit that would meet the deadline.
                let hi = Double(max(1, peakLoading)) * min(limits.clientLimit, streamLimit * Double(input.streams)) * 1.01
                func modelsMeet(_ fileSystemLimit: Double) -> Bool {
                    var l = limits
                    l.fileSystemLimit = fileSystemLimit
                    let sim = FleetSimulation(streamBytes: simulation.streamBytes, limits: l)
                    return meets(runFleet(initSeconds: initSeconds, simulation: sim).modelReady)
                }
                if hi > limits.fileSystemLimit, modelsMeet(hi) {
                    // Bisect in log space to 0.5%: the answer is a sizing hint, not a contract.
                    var lo = limits.fileSystemLimit, up = hi
                    while up > lo * 1.005 {
                        let mid = (lo * up).squareRoot()
                        if modelsMeet(mid) { up = mid } else { lo = mid }
                    }
                    requiredFileSystem = up
                    recommendations.append(
                        "the file system's read limit binds: up to \(peakLoading) nodes load at once and share \(ByteRate.format(limits.fileSystemLimit)); meeting the deadline needs about \(ByteRate.format(up)), or fewer volumes a minute, or fewer model bytes per node")
                }
            }
        }

        // Streams.
        if input.models.totalBytes > 0 {
            if recommendedStreams < input.streams {
                recommendations.append(
                    "\(recommendedStreams) streams already reach the best single-node time (\(TimeSpan.format(best))); \(input.streams) add connections without speed")
            } else if recommendedStreams > input.streams {
                recommendations.append(
                    "use \(recommendedStreams) streams: \(input.streams) leave the per-node limit unused (\(TimeSpan.format(singleSeconds)) alone vs \(TimeSpan.format(best)))")
            }
            let other: StreamSchedule.Kind = input.schedule == .lpt ? .ranges : .lpt
            let otherSeconds = input.schedule == .lpt ? rangesSeconds : lptSeconds
            if otherSeconds < singleSeconds * 0.98 {
                recommendations.append(
                    "\(other == .ranges ? "byte ranges split evenly" : "LPT by file size") is faster for one node (\(TimeSpan.format(otherSeconds)) vs \(TimeSpan.format(singleSeconds))): --schedule \(other.rawValue)")
            }
        }

        // Launch throttling.
        let throttled = waits.filter { $0 > epsilon }.count
        if throttled > 0 {
            recommendations.append(
                "EC2 launch throttling delays \(throttled) nodes, the last by \(TimeSpan.format(maxWait)) (token bucket \(Int(input.launchThrottle.capacity)), refill \(String(format: "%g", input.launchThrottle.refillPerSecond))/s): spread the burst or request a higher limit")
        }

        // FSR.
        let snapshotGiB = FastSnapshotRestore.snapshotSizeGiB(volumeBytes: input.volumeBytes ?? bytes)
        let fsr = try FastSnapshotRestore(snapshotSizeGiB: snapshotGiB)
        let covered = fsr.coveredVolumes(launchTimes: launches, availabilityZones: input.availabilityZones)
        let span = (launches.last ?? 0) - (launches.first ?? 0)
        let dsuHours = fsr.dsuHours(burstSeconds: span, availabilityZones: input.availabilityZones)
        let fsrCost = dsuHours * input.pricing.fsrPerDSUHour
        if input.volumeBytes == nil {
            assumptions.append("FSR credits use the written size as the snapshot size (\(snapshotGiB) GiB); the real snapshot size is the volume's, pass --snapshot-size")
        }
        assumptions.append("FSR: buckets full when the burst starts (enabled \(TimeSpan.format(fsr.fillHours * 3600)) ahead), volumes spread round-robin over \(input.availabilityZones) AZs")
        if covered < n {
            recommendations.append(
                "Fast Snapshot Restore would serve only \(covered) of \(n) volumes (\(String(format: "%.2f", fsr.bucketSize)) credits per AZ, refill \(String(format: "%.2f", fsr.refillPerHour))/h, \(snapshotGiB) GiB snapshot) for \(String(format: "$%.2f", fsrCost)); the provisioned rate scales to the whole burst")
        }

        // Costs.
        let gib = Double(bytes) / Units.gib
        let ratePerGiB = rate.map { input.pricing.provisionedRatePerGiB($0) } ?? 0
        let rateCost = Double(n) * gib * ratePerGiB
        let efsCost = Double(n) * Double(input.models.totalBytes) / Units.gib * input.pricing.efsReadPerGiB
        assumptions.append(String(format: "prices (USD, us-east-1 defaults unless given): provisioned rate $%.4f/GiB at 300 MiB/s, scaled linearly with the rate; EFS reads $%.3f/GiB; FSR $%.2f per DSU-hour per AZ", input.pricing.provisionedRatePerGiBAt300, input.pricing.efsReadPerGiB, input.pricing.fsrPerDSUHour))
        assumptions.append(contentsOf: input.efs.notes)
        if let limit = input.streamLimit {
            assumptions.append("one stream reads at most \(ByteRate.format(limit.bytesPerSecond)) (a single NFS reader); active streams share the node's limit equally, nodes share the file system max-min fairly")
        }
        assumptions.append("a node is ready when containerd is up, its data volume is fully initialized and its models are loaded; preloads start \(input.preloadStart == .containerd ? "when containerd is ready" : "once the volume is initialized")")
        assumptions.append("EC2 launch token bucket \(Int(input.launchThrottle.capacity)) instances, refill \(String(format: "%g", input.launchThrottle.refillPerSecond))/s, \(input.launchThrottle.initialTokens >= input.launchThrottle.capacity ? "full" : String(format: "%g tokens", input.launchThrottle.initialTokens)) at the start")

        // Bottleneck of the slowest node.
        let slow = fleet.result.nodes[slowestIndex]
        let wait = launches[slowestIndex] - requests[slowestIndex]
        let load = slow.loadEnd - slow.loadStart
        var parts: [(Bottleneck, Double, String)] = [(.ec2LaunchThrottle, wait, "waits \(TimeSpan.format(wait)) for an EC2 launch token")]
        let volumeLast = fleet.volume[slowestIndex] >= fleet.modelReady[slowestIndex] - epsilon
        if volumeLast || input.models.totalBytes == 0 && initSeconds >= input.instanceStart {
            parts.append((.ebsInitialization, initSeconds, "waits \(TimeSpan.format(initSeconds)) for its volume to initialize at \(rate.map { "\($0.mibPerSecond) MiB/s" } ?? "the default rate")"))
        } else {
            parts.append((.instanceStart, input.instanceStart, "spends \(TimeSpan.format(input.instanceStart)) from launch to containerd ready"))
            if input.preloadStart == .volume, initSeconds > input.instanceStart {
                parts.append((.ebsInitialization, initSeconds - input.instanceStart, "holds its preload \(TimeSpan.format(initSeconds - input.instanceStart)) for the volume"))
            }
            let bounds: [(Bottleneck, Double)] = [
                (.efsFileSystem, slow.fileSystemBoundSeconds), (.efsClientLimit, slow.clientBoundSeconds),
                (.efsStreams, slow.streamBoundSeconds),
            ]
            let kind = bounds.max { $0.1 < $1.1 }?.0 ?? .efsClientLimit
            if input.models.totalBytes > 0 {
            let why: String
            switch kind {
            case .efsFileSystem: why = "shares the file system's \(ByteRate.format(limits.fileSystemLimit)) with up to \(peakLoading) loading nodes"
            case .efsStreams: why = "has too few active streams to fill its \(ByteRate.format(limits.clientLimit)) limit"
            default: why = "reads at its per-node limit of \(ByteRate.format(limits.clientLimit))"
            }
            parts.append((kind, load, "loads its models in \(TimeSpan.format(load)): it \(why)"))
            }
        }
        let binding = parts.max { $0.1 < $1.1 } ?? parts[0]

        // Sample node timelines.
        func timeline(_ i: Int) -> PlanReport.NodeTimeline {
            let node = fleet.result.nodes[i]
            let streams = schedule.streams.enumerated().map { index, stream -> PlanReport.StreamTimeline in
                let end = node.streamEnds[index]
                var cumulative: UInt64 = 0
                let pieces = stream.pieces.map { piece -> PlanReport.PieceTimeline in
                    let start = timeAt(Double(cumulative), segments: node.segments, start: node.loadStart, end: end)
                    cumulative += piece.bytes
                    let finish = timeAt(Double(cumulative), segments: node.segments, start: node.loadStart, end: end)
                    return PlanReport.PieceTimeline(path: piece.path, offset: piece.offset, bytes: piece.bytes, startSeconds: start, endSeconds: finish)
                }
                return PlanReport.StreamTimeline(bytes: stream.bytes, startSeconds: node.loadStart, endSeconds: end, pieces: pieces)
            }
            return PlanReport.NodeTimeline(
                index: i, requestSeconds: requests[i], launchSeconds: launches[i],
                containerdReadySeconds: fleet.containerd[i], volumeReadySeconds: fleet.volume[i],
                loadStartSeconds: node.loadStart, loadEndSeconds: node.loadEnd, readySeconds: fleet.ready[i],
                readyAfterSeconds: fleet.ready[i] - requests[i], fileSystemBoundSeconds: node.fileSystemBoundSeconds,
                clientBoundSeconds: node.clientBoundSeconds, streamBoundSeconds: node.streamBoundSeconds, streams: streams)
        }

        let finalDurations = (0..<n).map { fleet.ready[$0] - requests[$0] }
        let streamPlan = schedule.streams.enumerated().map { index, stream in
            PlanReport.StreamSummary(
                index: index + 1, bytes: stream.bytes,
                pieces: stream.pieces.map { piece in
                    input.schedule == .lpt ? piece.path : "\(piece.path)[\(piece.offset)+\(piece.bytes)]"
                })
        }

        var report = PlanReport(
            name: input.name,
            feasible: feasible,
            deadlineSeconds: input.deadline,
            bottleneck: binding.0,
            bottleneckDetail: "the slowest node (#\(slowestIndex + 1)) " + binding.2,
            recommendations: recommendations,
            assumptions: assumptions,
            volume: .init(
                writtenBytes: bytes, initialization: rate == nil ? "default" : "provisioned-rate",
                rateMiBps: rate?.mibPerSecond, autoRate: autoRate, requiredMiBps: requiredMiBps,
                initializationSeconds: initSeconds, defaultInitializationMinSeconds: lazyRange.lowerBound,
                defaultInitializationMaxSeconds: lazyRange.upperBound, meetsDeadline: volumeOK,
                excessBytes: volumeOK ? nil : excessBytes),
            fsr: .init(
                snapshotSizeGiB: snapshotGiB, bucketCredits: fsr.bucketSize, refillCreditsPerHour: fsr.refillPerHour,
                availabilityZones: input.availabilityZones, volumesCovered: covered, volumesRequested: n,
                dsuHours: dsuHours, costUSD: fsrCost),
            models: .init(
                bytes: input.models.totalBytes, files: input.models.files.count, streams: input.streams,
                schedule: input.schedule, efsMode: input.efs.mode, clientLimitBytesPerSecond: limits.clientLimit,
                fileSystemLimitBytesPerSecond: limits.fileSystemLimit, streamLimitBytesPerSecond: input.streamLimit?.bytesPerSecond,
                preloadStart: input.preloadStart, singleNodeSeconds: singleSeconds, lptSeconds: lptSeconds,
                rangesSeconds: rangesSeconds, recommendedStreams: recommendedStreams,
                p50Seconds: percentile(loadDurations, 50), p90Seconds: percentile(loadDurations, 90),
                maxSeconds: loadDurations.max() ?? 0, peakLoadingNodes: peakLoading,
                requiredFileSystemLimitBytesPerSecond: requiredFileSystem, streamPlan: streamPlan),
            launches: .init(
                description: input.arrivalDescription, requested: n, firstRequestSeconds: requests.first ?? 0,
                lastRequestSeconds: requests.last ?? 0, maxLaunchWaitSeconds: maxWait, throttledNodes: throttled,
                bucket: input.launchThrottle.capacity, refillPerSecond: input.launchThrottle.refillPerSecond,
                instanceStartSeconds: input.instanceStart),
            nodes: .init(
                count: n, readyP50Seconds: percentile(finalDurations, 50), readyP90Seconds: percentile(finalDurations, 90),
                readyP99Seconds: percentile(finalDurations, 99), readyMaxSeconds: finalDurations.max() ?? 0,
                lastReadySeconds: fleet.ready.max() ?? 0,
                missedDeadline: finalDurations.filter { $0 > input.deadline + epsilon }.count,
                typical: timeline(typicalIndex), slowest: timeline(slowestIndex)),
            cost: .init(
                currency: "USD", provisionedRateUSD: rateCost, provisionedRatePerGiB: ratePerGiB, efsReadsUSD: efsCost,
                efsReadPerGiB: input.pricing.efsReadPerGiB, fsrUSD: fsrCost, fsrPerDSUHour: input.pricing.fsrPerDSUHour,
                totalUSD: rateCost + efsCost))
        report.timeline = .init(requestTimes: requests, readyTimes: fleet.ready.sorted(), throughput: fleet.result.throughput)
        return report
    }

    /// When a stream of a tracked node had delivered `offset` bytes, from its rate segments.
    static func timeAt(_ offset: Double, segments: [FleetSimulation.RateSegment], start: Double, end: Double) -> Double {
        if offset <= 0 { return start }
        var delivered = 0.0
        for segment in segments where segment.start < end {
            let span = min(segment.end, end) - segment.start
            let chunk = segment.perStreamRate * span
            if delivered + chunk >= offset * (1 - 1e-12) {
                guard segment.perStreamRate > 0 else { return segment.start }
                return min(end, segment.start + (offset - delivered) / segment.perStreamRate)
            }
            delivered += chunk
        }
        return end
    }
}
