import Foundation
import KilnCore

extension PlanReport {
    /// A standalone SVG timeline: lanes for the EBS initialization and every EFS stream of the typical and
    /// the slowest node, the fleet's ready curve against the deadline, and the file system's read rate.
    public func svg() -> String {
        var svg = SVGCanvas(width: 1200)
        let t = TimeSpan.format
        svg.text(x: 20, y: 30, "kiln plan\(name.map { ": \($0)" } ?? "")", size: 20, weight: "bold")
        let verdict = feasible ? "FEASIBLE" : "INFEASIBLE"
        svg.text(x: 20, y: 54, "\(verdict): deadline \(t(deadlineSeconds)), \(nodes.count) nodes, ready p50 \(t(nodes.readyP50Seconds)), max \(t(nodes.readyMaxSeconds)); bottleneck: \(bottleneck.rawValue)",
                 size: 14, fill: feasible ? "#1b7f3b" : "#b42318", weight: "bold")
        var rateText = volume.rateMiBps.map { "EBS provisioned rate \($0) MiB/s" } ?? "EBS default initialization"
        rateText += ", \(ByteSize.decimal(Double(volume.writtenBytes))) written"
        if models.bytes > 0 {
            rateText += "; models \(ByteSize.decimal(Double(models.bytes))) over \(models.streams) streams (\(models.schedule.rawValue)), EFS \(models.efsMode.rawValue)"
        }
        svg.text(x: 20, y: 74, rateText, size: 12, fill: "#444")
        var y = 100.0

        // Sample nodes share one time axis (seconds from their own request).
        let samples = nodes.typical.index == nodes.slowest.index ? [("Node", nodes.slowest)] : [("Typical node", nodes.typical), ("Slowest node", nodes.slowest)]
        let nodeSpan = max(deadlineSeconds, samples.map { $0.1.readyAfterSeconds }.max() ?? 0) * 1.08
        let left = 190.0, right = 1170.0
        let scale = Axis(min: 0, max: max(nodeSpan, 1), from: left, to: right)
        let laneHeight = 14.0, laneGap = 4.0
        for (title, node) in samples {
            svg.text(x: 20, y: y + 12, "\(title) #\(node.index + 1): requested at \(t(node.requestSeconds)), ready after \(t(node.readyAfterSeconds))", size: 13, weight: "bold")
            y += 34
            let top = y
            var lanes: [(String, [(Double, Double, String, String)])] = []
            let r = node.requestSeconds
            lanes.append(("launch wait", [(node.requestSeconds - r, node.launchSeconds - r, "#9aa0a6", "waiting for an EC2 launch token: \(t(node.launchSeconds - node.requestSeconds))")]))
            lanes.append(("instance start", [(node.launchSeconds - r, node.containerdReadySeconds - r, "#5b7db1", "launch to containerd ready: \(t(node.containerdReadySeconds - node.launchSeconds))")]))
            let ebsLabel = volume.rateMiBps.map { "EBS init \($0) MiB/s" } ?? "EBS init (default)"
            lanes.append((ebsLabel, [(node.launchSeconds - r, node.volumeReadySeconds - r, "#e8891d", "volume initialization: \(t(node.volumeReadySeconds - node.launchSeconds))")]))
            let active = node.streams.enumerated().filter { $0.element.bytes > 0 }
            let shownStreams = active.count > 24 ? Array(active.prefix(23)) : active
            for (index, stream) in shownStreams {
                var bars: [(Double, Double, String, String)] = []
                for (p, piece) in stream.pieces.enumerated() {
                    let color = p % 2 == 0 ? "#2e9e5b" : "#7cc896"
                    let range = models.schedule == .ranges ? " bytes \(piece.offset)+\(piece.bytes)" : ""
                    bars.append((piece.startSeconds - r, piece.endSeconds - r, color,
                                 "stream \(index + 1): \(piece.path)\(range), \(ByteSize.decimal(Double(piece.bytes))), \(t(piece.startSeconds - r))..\(t(piece.endSeconds - r))"))
                }
                lanes.append(("EFS stream \(index + 1)", bars))
            }
            for (i, lane) in lanes.enumerated() {
                let ly = top + Double(i) * (laneHeight + laneGap)
                svg.rect(x: left, y: ly, width: right - left, height: laneHeight, fill: i % 2 == 0 ? "#f4f5f7" : "#fafbfc")
                svg.text(x: left - 8, y: ly + 11, lane.0, size: 11, anchor: "end", fill: "#333")
                for bar in lane.1 where bar.1 > bar.0 {
                    let x0 = scale.position(bar.0), x1 = scale.position(bar.1)
                    svg.rect(x: x0, y: ly + 1, width: max(0.8, x1 - x0), height: laneHeight - 2, fill: bar.2, title: bar.3)
                }
            }
            if active.count > shownStreams.count {
                let ly = top + Double(lanes.count) * (laneHeight + laneGap)
                svg.text(x: left - 8, y: ly + 11, "+\(active.count - shownStreams.count) more streams", size: 11, anchor: "end", fill: "#666")
                lanes.append(("", []))
            }
            let bottom = top + Double(lanes.count) * (laneHeight + laneGap)
            svg.vline(x: scale.position(deadlineSeconds), y0: top - 4, y1: bottom, stroke: "#d92d20", dash: "6,4", width: 1.5)
            svg.text(x: scale.position(deadlineSeconds) + 4, y: top - 5, "deadline \(t(deadlineSeconds))", size: 11, fill: "#d92d20")
            let readyX = scale.position(node.readySeconds - r)
            svg.vline(x: readyX, y0: top - 4, y1: bottom, stroke: "#111", dash: nil, width: 2)
            // Beside the line in the first lane, on whichever side has room.
            let roomRight = right - readyX > 90
            svg.text(x: readyX + (roomRight ? 5 : -5), y: top + 11, "ready \(t(node.readyAfterSeconds))", size: 11,
                     anchor: roomRight ? "start" : "end", fill: "#111", weight: "bold")
            svg.axis(scale, y: bottom + 2, label: "time since the node was requested")
            y = bottom + 44
        }

        // Fleet: requested, ready and due curves over absolute time.
        let lastDue = (timeline.requestTimes.last ?? 0) + deadlineSeconds
        let fleetSpan = max(nodes.lastReadySeconds, lastDue) * 1.05
        let fleetAxis = Axis(min: 0, max: max(fleetSpan, 1), from: left, to: right)
        svg.text(x: 20, y: y + 12, "Fleet: nodes requested, due and ready", size: 13, weight: "bold")
        svg.legend(x: left + 300, y: y + 12, color: "#9aa0a6", dash: nil, "requested")
        svg.legend(x: left + 420, y: y + 12, color: "#d92d20", dash: "6,4", "due (request + deadline)")
        svg.legend(x: left + 620, y: y + 12, color: "#1f6feb", dash: nil, "ready")
        y += 24
        let chartHeight = 200.0
        let count = Double(max(1, nodes.count))
        let yAxis = Axis(min: 0, max: count, from: y + chartHeight, to: y)
        svg.rect(x: left, y: y, width: right - left, height: chartHeight, fill: "#fafbfc")
        for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let value = (count * frac).rounded()
            svg.hline(x0: left, x1: right, y: yAxis.position(value), stroke: "#e3e5e8")
            svg.text(x: left - 8, y: yAxis.position(value) + 4, "\(Int(value))", size: 11, anchor: "end", fill: "#555")
        }
        func steps(_ times: [Double]) -> [(Double, Double)] {
            var points: [(Double, Double)] = [(fleetAxis.position(0), yAxis.position(0))]
            for (i, time) in times.sorted().enumerated() {
                let x = fleetAxis.position(time)
                points.append((x, yAxis.position(Double(i))))
                points.append((x, yAxis.position(Double(i + 1))))
            }
            points.append((right, points.last?.1 ?? yAxis.position(0)))
            return points
        }
        svg.polyline(steps(timeline.requestTimes), stroke: "#9aa0a6", width: 2, dash: nil)
        svg.polyline(steps(timeline.requestTimes.map { $0 + deadlineSeconds }), stroke: "#d92d20", width: 1.5, dash: "6,4")
        svg.polyline(steps(timeline.readyTimes), stroke: "#1f6feb", width: 2.5, dash: nil)
        svg.axis(fleetAxis, y: y + chartHeight + 2, label: "time since the first request")
        y += chartHeight + 46

        // File-system read rate.
        if models.bytes > 0, !timeline.throughput.isEmpty {
            svg.text(x: 20, y: y + 12, "EFS file-system reads (all nodes) vs the \(ByteRate.format(models.fileSystemLimitBytesPerSecond)) limit", size: 13, weight: "bold")
            y += 24
            let height = 130.0
            let peak = max(models.fileSystemLimitBytesPerSecond, timeline.throughput.map(\.bytesPerSecond).max() ?? 0)
            let rateAxis = Axis(min: 0, max: peak * 1.1, from: y + height, to: y)
            svg.rect(x: left, y: y, width: right - left, height: height, fill: "#fafbfc")
            var points: [(Double, Double)] = [(fleetAxis.position(timeline.throughput[0].start), rateAxis.position(0))]
            for segment in timeline.throughput {
                points.append((fleetAxis.position(segment.start), rateAxis.position(segment.bytesPerSecond)))
                points.append((fleetAxis.position(segment.end), rateAxis.position(segment.bytesPerSecond)))
            }
            points.append((points.last?.0 ?? left, rateAxis.position(0)))
            svg.polygon(points, fill: "#7cc896", stroke: "#2e9e5b")
            let limitY = rateAxis.position(models.fileSystemLimitBytesPerSecond)
            svg.hline(x0: left, x1: right, y: limitY, stroke: "#d92d20", dash: "6,4")
            svg.text(x: left - 8, y: limitY + 4, ByteRate.format(models.fileSystemLimitBytesPerSecond), size: 11, anchor: "end", fill: "#d92d20")
            svg.text(x: left - 8, y: y + height + 4, "0", size: 11, anchor: "end", fill: "#555")
            svg.axis(fleetAxis, y: y + height + 2, label: "time since the first request")
            y += height + 46
        }
        return svg.finish(height: y)
    }
}

/// Maps a value range onto pixels.
struct Axis {
    var min: Double, max: Double, from: Double, to: Double

    func position(_ value: Double) -> Double {
        let v = Swift.min(Swift.max(value, min), max)
        return from + (v - min) / (max - min) * (to - from)
    }

    /// Tick step in seconds giving at most about ten ticks.
    var tickStep: Double {
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400]
        let span = max - min
        return steps.first { span / $0 <= 10 } ?? (span / 10).rounded(.up)
    }
}

/// A minimal SVG writer: every text node is escaped, every number printed with fixed precision, so the
/// output is well-formed XML whatever the file names contain.
struct SVGCanvas {
    let width: Double
    var body: [String] = []

    init(width: Double) { self.width = width }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters even when escaped.
                if c.value < 0x20 && c != "\t" && c != "\n" && c != "\r" { out += "?" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static func n(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }

    mutating func text(x: Double, y: Double, _ s: String, size: Double, anchor: String = "start", fill: String = "#111", weight: String = "normal") {
        body.append("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\" font-weight=\"\(weight)\">\(Self.escape(s))</text>")
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, title: String? = nil) {
        let open = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"\(fill)\""
        if let title {
            body.append(open + "><title>\(Self.escape(title))</title></rect>")
        } else {
            body.append(open + "/>")
        }
    }

    mutating func vline(x: Double, y0: Double, y1: Double, stroke: String, dash: String?, width: Double) {
        body.append("<line x1=\"\(Self.n(x))\" y1=\"\(Self.n(y0))\" x2=\"\(Self.n(x))\" y2=\"\(Self.n(y1))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func hline(x0: Double, x1: Double, y: Double, stroke: String, dash: String? = nil) {
        body.append("<line x1=\"\(Self.n(x0))\" y1=\"\(Self.n(y))\" x2=\"\(Self.n(x1))\" y2=\"\(Self.n(y))\" stroke=\"\(stroke)\" stroke-width=\"1\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double, dash: String?) {
        let p = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        body.append("<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func polygon(_ points: [(Double, Double)], fill: String, stroke: String) {
        let p = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        body.append("<polygon points=\"\(p)\" fill=\"\(fill)\" fill-opacity=\"0.6\" stroke=\"\(stroke)\" stroke-width=\"1\"/>")
    }

    mutating func legend(x: Double, y: Double, color: String, dash: String?, _ label: String) {
        body.append("<line x1=\"\(Self.n(x))\" y1=\"\(Self.n(y - 4))\" x2=\"\(Self.n(x + 24))\" y2=\"\(Self.n(y - 4))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
        text(x: x + 30, y: y, label, size: 11, fill: "#333")
    }

    mutating func axis(_ axis: Axis, y: Double, label: String) {
        hline(x0: axis.from, x1: axis.to, y: y, stroke: "#555")
        let step = axis.tickStep
        var tick = 0.0
        while tick <= axis.max + 1e-9 {
            let x = axis.position(tick)
            vline(x: x, y0: y, y1: y + 5, stroke: "#555", dash: nil, width: 1)
            text(x: x, y: y + 17, TimeSpan.format(tick), size: 10, anchor: "middle", fill: "#555")
            tick += step
        }
        text(x: axis.to, y: y + 32, label, size: 10, anchor: "end", fill: "#777")
    }

    func finish(height: Double) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"#ffffff\"/>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }
}
