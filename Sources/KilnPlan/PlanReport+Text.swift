import Foundation
import KilnCore

extension PlanReport {
    /// The readable report: inputs, per-phase timeline of a typical and the slowest node, fleet percentiles,
    /// bottleneck, recommendations, costs and assumptions.
    public func text() -> String {
        var out: [String] = []
        let t = TimeSpan.format
        let verdict = feasible ? "FEASIBLE" : "INFEASIBLE"
        out.append("kiln plan\(name.map { ": \($0)" } ?? "")  \(verdict)  (deadline \(t(deadlineSeconds)) from request to ready)")
        out.append("")

        out.append("Burst")
        out.append(row("nodes", "\(launches.requested) requested\(launches.description.isEmpty ? "" : " (\(launches.description))")"))
        out.append(row("instance start", "\(t(launches.instanceStartSeconds)) from launch to containerd ready"))
        if launches.throttledNodes > 0 {
            out.append(row("launch throttling", "\(launches.throttledNodes) nodes wait for a token, the longest \(t(launches.maxLaunchWaitSeconds))"))
        } else {
            out.append(row("launch throttling", "none (bucket \(Int(launches.bucket)), refill \(String(format: "%g", launches.refillPerSecond))/s)"))
        }
        out.append("")

        out.append("Volume initialization")
        out.append(row("written", ByteSize.format(Double(volume.writtenBytes))))
        if let rate = volume.rateMiBps {
            var line = "\(rate) MiB/s"
            if volume.autoRate, let required = volume.requiredMiBps {
                line += required > 300
                    ? String(format: " (auto: the deadline needs %.0f MiB/s, above EBS's 300)", required)
                    : String(format: " (auto: lowest meeting the deadline; exact need %.1f MiB/s)", required)
            }
            out.append(row("provisioned rate", line))
        } else {
            out.append(row("provisioned rate", "none: default (lazy) initialization"))
        }
        out.append(row("initialized after", "\(t(volume.initializationSeconds))\(volume.meetsDeadline ? "" : "  MISSES THE DEADLINE")"))
        out.append(row("default (lazy)", "\(t(volume.defaultInitializationMinSeconds)) .. \(t(volume.defaultInitializationMaxSeconds)) (unpredictable)"))
        out.append(row("fast snapshot restore", String(format: "%d GiB snapshot: bucket %.2f credits, refill %.2f/h per AZ; covers %d of %d volumes over %d AZs; %.1f DSU-hours",
            fsr.snapshotSizeGiB, fsr.bucketCredits, fsr.refillCreditsPerHour, fsr.volumesCovered, fsr.volumesRequested, fsr.availabilityZones, fsr.dsuHours)))
        out.append("")

        out.append("Model preload (EFS \(models.efsMode.rawValue))")
        if models.bytes == 0 {
            out.append(row("models", "none"))
        } else {
            out.append(row("per node", "\(ByteSize.format(Double(models.bytes))) in \(models.files) file\(models.files == 1 ? "" : "s")"))
            var limitsLine = "\(ByteRate.format(models.clientLimitBytesPerSecond)) per node, \(ByteRate.format(models.fileSystemLimitBytesPerSecond)) per file system"
            if let s = models.streamLimitBytesPerSecond { limitsLine += ", \(ByteRate.format(s)) per stream" }
            out.append(row("limits", limitsLine))
            out.append(row("streams", "\(models.streams) (\(models.schedule == .lpt ? "LPT by file size" : "byte ranges split evenly")); \(models.recommendedStreams) reach the best single-node time"))
            out.append(row("one node alone", "\(t(models.singleNodeSeconds))  (LPT \(t(models.lptSeconds)), byte ranges \(t(models.rangesSeconds)))"))
            out.append(row("in the burst", "p50 \(t(models.p50Seconds)), p90 \(t(models.p90Seconds)), max \(t(models.maxSeconds)); up to \(models.peakLoadingNodes) nodes loading at once"))
            if let required = models.requiredFileSystemLimitBytesPerSecond {
                out.append(row("file system needed", ByteRate.format(required)))
            }
            let shown = models.streamPlan.filter { !$0.pieces.isEmpty }.prefix(8)
            for stream in shown {
                let names = stream.pieces.prefix(4).joined(separator: ", ") + (stream.pieces.count > 4 ? ", +\(stream.pieces.count - 4) more" : "")
                out.append(row("  stream \(stream.index)", "\(ByteSize.decimal(Double(stream.bytes))): \(names)"))
            }
            let hidden = models.streamPlan.filter { !$0.pieces.isEmpty }.count - shown.count
            if hidden > 0 { out.append(row("", "... \(hidden) more streams (see --json)")) }
        }
        out.append("")

        out.append("Nodes (request to ready)")
        out.append(row("percentiles", "p50 \(t(nodes.readyP50Seconds)), p90 \(t(nodes.readyP90Seconds)), p99 \(t(nodes.readyP99Seconds)), max \(t(nodes.readyMaxSeconds))"))
        out.append(row("last node ready", "\(t(nodes.lastReadySeconds)) after the first request"))
        out.append(row("missed the deadline", "\(nodes.missedDeadline) of \(nodes.count)"))
        out.append("")
        out.append("  phase (from request)      " + pad("typical #\(nodes.typical.index + 1)", 24) + "slowest #\(nodes.slowest.index + 1)")
        for (label, a, b) in phaseRows(nodes.typical, nodes.slowest) {
            out.append("  " + pad(label, 26) + pad(a, 24) + b)
        }
        out.append("")

        out.append("Bottleneck: \(bottleneck.rawValue)")
        out.append("  \(bottleneckDetail)")
        out.append("")
        if !recommendations.isEmpty {
            out.append("Recommendation")
            for r in recommendations { out.append("  - \(r)") }
            out.append("")
        }

        out.append("Costs (\(cost.currency), for this burst)")
        let gib = Double(volume.writtenBytes) / Units.gib
        if volume.rateMiBps != nil {
            out.append(row("provisioned rate", String(format: "$%.2f  (%d volumes x %.2f GiB x $%.5f/GiB)", cost.provisionedRateUSD, nodes.count, gib, cost.provisionedRatePerGiB)))
        }
        out.append(row("EFS reads", String(format: "$%.2f  (%d nodes x %.2f GiB x $%.3f/GiB)", cost.efsReadsUSD, nodes.count, Double(models.bytes) / Units.gib, cost.efsReadPerGiB)))
        out.append(row("total", String(format: "$%.2f", cost.totalUSD)))
        out.append(row("FSR instead", String(format: "$%.2f  (%.1f DSU-hours x $%.2f, covers %d of %d volumes)", cost.fsrUSD, fsr.dsuHours, cost.fsrPerDSUHour, fsr.volumesCovered, fsr.volumesRequested)))
        out.append("")
        out.append("Assumptions")
        for a in assumptions { out.append("  - \(a)") }
        return out.joined(separator: "\n") + "\n"
    }

    func phaseRows(_ a: NodeTimeline, _ b: NodeTimeline) -> [(String, String, String)] {
        func rel(_ node: NodeTimeline, _ time: Double) -> String { "+" + TimeSpan.format(time - node.requestSeconds) }
        func span(_ node: NodeTimeline, _ s: Double, _ e: Double) -> String {
            "\(rel(node, s)) .. \(rel(node, e))"
        }
        var rows: [(String, String, String)] = [
            ("requested at", TimeSpan.format(a.requestSeconds), TimeSpan.format(b.requestSeconds)),
            ("launch (token wait)", rel(a, a.launchSeconds), rel(b, b.launchSeconds)),
            ("containerd ready", rel(a, a.containerdReadySeconds), rel(b, b.containerdReadySeconds)),
            ("volume initialized", rel(a, a.volumeReadySeconds), rel(b, b.volumeReadySeconds)),
        ]
        if models.bytes > 0 {
            rows.append(("models loading", span(a, a.loadStartSeconds, a.loadEndSeconds), span(b, b.loadStartSeconds, b.loadEndSeconds)))
        }
        rows.append(("READY", rel(a, a.readySeconds), rel(b, b.readySeconds)))
        return rows
    }

    func row(_ label: String, _ value: String) -> String { "  " + pad(label, 22) + value }

    func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
