import Dispatch
import Foundation
import KilnCore

/// Shows a ``ProgressCounter`` on stderr, never on stdout: in a terminal a bar redrawn in place (bytes, rate,
/// ETA, what is being worked on), with a line of its own above it for each download in flight; in CI (stderr not
/// a terminal, or `CI` set) plain lines at most every few seconds with the same figures, one for the whole and
/// one for each download; nothing with `-q`.
final class ProgressDisplay: @unchecked Sendable {
    enum Style {
        case bar, lines
    }

    private let counter: ProgressCounter
    let style: Style
    private let label: String
    private let timer: DispatchSourceTimer
    private var lastLine = Date.distantPast
    private var lastPhase = ""
    private var lastPrintedDone: Int64 = -1
    private var stopped = false

    /// Lines the last drawing took (0: nothing on the screen).
    private var drawnLines = 0
    private let lock = NSLock()

    /// Downloads shown one per line; more are counted on one line.
    static let transferLines = 6

    /// How often a CI log gets a line.
    static let lineInterval: TimeInterval = 3

    /// The style this process's stderr calls for.
    static var environmentStyle: Style {
        let ci = ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "false" && $0 != "0" } ?? false
        return isatty(STDERR_FILENO) == 1 && !ci ? .bar : .lines
    }

    /// Starts showing `counter` (nil when quiet).
    static func start(_ counter: ProgressCounter, label: String, quiet: Bool) -> ProgressDisplay? {
        guard !quiet else { return nil }
        let display = ProgressDisplay(counter: counter, style: environmentStyle, label: label)
        display.timer.resume()
        return display
    }

    private init(counter: ProgressCounter, style: Style, label: String) {
        self.counter = counter
        self.style = style
        self.label = label
        timer = DispatchSource.makeTimerSource(queue: .global())
        // Lines are printed only when a phase starts or every few seconds; looking often catches every phase.
        timer.schedule(deadline: .now() + 0.05, repeating: style == .bar ? 0.2 : 0.1)
        timer.setEventHandler { [weak self] in self?.tick() }
    }

    /// Stops and clears the bar. A CI log keeps its lines and gets the phase's final figures if its last line
    /// did not show them (a phase shorter than the interval would otherwise show none).
    func stop() {
        timer.cancel()
        clear()
        lock.lock()
        defer { lock.unlock() }
        guard style == .lines, !stopped else { return }
        stopped = true
        let s = counter.snapshot
        guard !s.phase.isEmpty, s.totalBytes > 0, s.doneBytes != lastPrintedDone || s.phase != lastPhase else { return }
        write("kiln: \(label): " + Self.figures(s, elapsed: Self.elapsed(s)) + "\n")
    }

    /// Clears the bar so that a message can be printed (the next tick draws it again).
    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if style == .bar && drawnLines > 0 { write(Self.up(drawnLines - 1) + "\r\u{1B}[J") }
        drawnLines = 0
    }

    /// Moves the cursor `lines` lines up.
    static func up(_ lines: Int) -> String { lines > 0 ? "\u{1B}[\(lines)A" : "" }

    private func tick() {
        lock.lock()
        defer { lock.unlock() }
        let s = counter.snapshot
        guard !s.finished, !s.phase.isEmpty else { return }
        let elapsed = Self.elapsed(s)
        let transfers = counter.transfers.active
        switch style {
        case .bar:
            // The block is redrawn from its first line: it may have more or fewer lines than before.
            let width = Self.terminalWidth()
            let lines = Self.transferBars(transfers, width: width) + [Self.bar(s, elapsed: elapsed, label: label, width: width)]
            var text = Self.up(drawnLines - 1) + "\r\u{1B}[J"
            for line in lines.dropLast() { text += line + "\n" }
            text += "\r\u{1B}[K" + (lines.last ?? "")
            write(text)
            drawnLines = lines.count
        case .lines:
            // A line every few seconds, and one whenever a phase starts.
            guard s.phase != lastPhase || Date().timeIntervalSince(lastLine) >= Self.lineInterval else { return }
            lastPhase = s.phase
            lastLine = Date()
            lastPrintedDone = s.doneBytes
            var text = "kiln: \(label): " + Self.figures(s, elapsed: elapsed) + "\n"
            for t in transfers { text += "kiln: \(label): fetch " + Self.transferFigures(t) + "\n" }
            write(text)
        }
    }

    /// `registry.example.com/app layer 4d03f256a1b2  45% 12.0 MB of 26.7 MB, 5.1 MB/s, ETA 3 s`
    static func transferFigures(_ t: TransferBoard.Transfer) -> String {
        let elapsed = seconds(since: t.startedNanoseconds)
        return t.label + "  " + amounts(done: t.doneBytes, total: t.totalBytes, elapsed: elapsed)
    }

    /// One line per download, `  fetch [#####.......] ...`; past ``transferLines``, one line counts the rest.
    static func transferBars(_ transfers: [TransferBoard.Transfer], width: Int) -> [String] {
        var lines = transfers.prefix(transferLines).map { t in
            fit("  fetch " + meter(done: t.doneBytes, total: t.totalBytes, width: 12) + transferFigures(t), width: width)
        }
        if transfers.count > transferLines {
            let rest = transfers.dropFirst(transferLines)
            let done = rest.reduce(Int64(0)) { $0 + $1.doneBytes }, total = rest.reduce(Int64(0)) { $0 + $1.totalBytes }
            lines.append(fit("  fetch \(rest.count) more layers  \(formatBytes(done)) of \(formatBytes(total))", width: width))
        }
        return lines
    }

    /// Seconds since the snapshot's phase started.
    static func elapsed(_ s: ProgressCounter.Snapshot) -> Double { seconds(since: s.phaseStartedNanoseconds) }

    /// Seconds from `start` (`DispatchTime` uptime, nanoseconds) to now.
    static func seconds(since start: UInt64) -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        return Double(now > start ? now - start : 0) / 1e9
    }

    /// `layers  42% 120.0 MB of 285.2 MB, 61.3 MB/s, ETA 3 s  app:v1 layer 2/3`
    static func figures(_ s: ProgressCounter.Snapshot, elapsed: Double) -> String {
        var parts = [s.phase, amounts(done: s.doneBytes, total: s.totalBytes, elapsed: elapsed)]
        if !s.item.isEmpty { parts.append(s.item) }
        return parts.joined(separator: "  ")
    }

    /// `42% 120.0 MB of 285.2 MB, 61.3 MB/s, ETA 3 s`, or the seconds so far when the total is unknown.
    static func amounts(done: Int64, total: Int64, elapsed: Double) -> String {
        guard total > 0 else { return "\(Int(elapsed)) s" }
        let fraction = min(1, Double(done) / Double(total))
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(Int(fraction * 100))% \(formatBytes(done)) of \(formatBytes(total))"
        if rate > 0 {
            text += ", \(formatBytes(Int64(rate)))/s"
            let left = Double(max(0, total - done)) / rate
            if left.isFinite { text += ", ETA \(Int(left.rounded(.up))) s" }
        }
        return text
    }

    /// `[######..........] ` of `width` cells, or nothing when the total is unknown.
    static func meter(done: Int64, total: Int64, width: Int) -> String {
        guard total > 0 else { return "" }
        let filled = Int(Double(width) * min(1, Double(done) / Double(total)))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
    }

    static func bar(_ s: ProgressCounter.Snapshot, elapsed: Double, label: String, width: Int) -> String {
        fit("\(label) \(meter(done: s.doneBytes, total: s.totalBytes, width: 24))\(figures(s, elapsed: elapsed))", width: width)
    }

    /// A line cut to the terminal's width, so that it never wraps (a wrapped line would break the redraw).
    static func fit(_ line: String, width: Int) -> String {
        line.count > width - 1 ? String(line.prefix(max(10, width - 1))) : line
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
