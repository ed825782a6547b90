import Dispatch
import Foundation
import KilnCore

/// Shows a ``ProgressCounter`` on stderr, never on stdout: in a terminal a bar redrawn in place (bytes, rate,
/// ETA, what is being worked on); in CI (stderr not a terminal, or `CI` set) a plain line at most every few
/// seconds with the same figures; nothing with `-q`.
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

    private var drawn = false
    private let lock = NSLock()

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
        if style == .bar && drawn { write("\r\u{1B}[K") }
        drawn = false
    }

    private func tick() {
        lock.lock()
        defer { lock.unlock() }
        let s = counter.snapshot
        guard !s.finished, !s.phase.isEmpty else { return }
        let elapsed = Self.elapsed(s)
        switch style {
        case .bar:
            write("\r\u{1B}[K" + Self.bar(s, elapsed: elapsed, label: label, width: Self.terminalWidth()))
            drawn = true
        case .lines:
            // A line every few seconds, and one whenever a phase starts.
            guard s.phase != lastPhase || Date().timeIntervalSince(lastLine) >= Self.lineInterval else { return }
            lastPhase = s.phase
            lastLine = Date()
            lastPrintedDone = s.doneBytes
            write("kiln: \(label): " + Self.figures(s, elapsed: elapsed) + "\n")
        }
    }

    /// Seconds since the snapshot's phase started.
    static func elapsed(_ s: ProgressCounter.Snapshot) -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        return Double(now > s.phaseStartedNanoseconds ? now - s.phaseStartedNanoseconds : 0) / 1e9
    }

    /// `layers  42% 120.0 MB of 285.2 MB, 61.3 MB/s, ETA 3 s  app:v1 layer 2/3`
    static func figures(_ s: ProgressCounter.Snapshot, elapsed: Double) -> String {
        var parts = [s.phase]
        if s.totalBytes > 0 {
            let fraction = min(1, Double(s.doneBytes) / Double(s.totalBytes))
            let rate = elapsed > 0 ? Double(s.doneBytes) / elapsed : 0
            var text = "\(Int(fraction * 100))% \(formatBytes(s.doneBytes)) of \(formatBytes(s.totalBytes))"
            if rate > 0 {
                text += ", \(formatBytes(Int64(rate)))/s"
                let left = Double(s.totalBytes - s.doneBytes) / rate
                if left.isFinite { text += ", ETA \(Int(left.rounded(.up))) s" }
            }
            parts.append(text)
        } else {
            parts.append("\(Int(elapsed)) s")
        }
        if !s.item.isEmpty { parts.append(s.item) }
        return parts.joined(separator: "  ")
    }

    static func bar(_ s: ProgressCounter.Snapshot, elapsed: Double, label: String, width: Int) -> String {
        let text = figures(s, elapsed: elapsed)
        let barWidth = 24
        var bar = ""
        if s.totalBytes > 0 {
            let filled = Int(Double(barWidth) * min(1, Double(s.doneBytes) / Double(s.totalBytes)))
            bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "] "
        }
        let line = "\(label) \(bar)\(text)"
        return line.count > width - 1 ? String(line.prefix(max(10, width - 1))) : line
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
