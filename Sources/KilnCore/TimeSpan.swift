import Foundation

/// A duration in seconds parsed from text such as `90s`, `6m`, `1h30m`, `7m30s`, `1.5m` or `250ms` (a bare
/// number is seconds), with ``Quantity``. Named `TimeSpan` so it does not shadow the standard library's `Duration`.
public struct TimeSpan: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    /// Parses a duration with ``Quantity/seconds(_:)``.
    public init(parsing text: String) throws(QuantityError) {
        seconds = try Quantity.seconds(text)
    }

    public typealias Error = QuantityError

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.seconds < rhs.seconds }

    public var description: String { TimeSpan.format(seconds) }

    /// `42.3s`, `10m04s`, `1h02m03s`: short enough for tables, exact enough to compare with a deadline.
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "never" }
        if seconds < 0 { return "-" + format(-seconds) }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        let h = whole / 3600, m = (whole % 3600) / 60, s = whole % 60
        if h > 0 { return String(format: "%dh%02dm%02ds", h, m, s) }
        return String(format: "%dm%02ds", m, s)
    }
}
