import Foundation

/// A duration in seconds parsed from text such as `90s`, `6m`, `1h30m`, `7m30s`, `1.5m` or `250ms`.
///
/// A bare number is seconds. Named `TimeSpan` so it does not shadow the standard library's `Duration`.
public struct TimeSpan: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let bare = Double(trimmed), trimmed.first?.isNumber == true || trimmed.first == "." {
            guard bare.isFinite else { throw Error.invalid(text) }
            seconds = bare
            return
        }
        var rest = Substring(trimmed)
        var total = 0.0
        var parts = 0
        while !rest.isEmpty {
            guard let (value, _, after) = QuantityParser.leadingNumber(rest) else { throw Error.invalid(text) }
            var unitEnd = after.startIndex
            while unitEnd < after.endIndex, after[unitEnd].isLetter { unitEnd = after.index(after: unitEnd) }
            let unit = after[after.startIndex..<unitEnd]
            let multiplier: Double
            switch unit {
            case "h", "hr", "hour", "hours": multiplier = 3600
            case "m", "min", "mins": multiplier = 60
            case "s", "sec", "secs": multiplier = 1
            case "ms": multiplier = 0.001
            default: throw Error.invalid(text)
            }
            total += value * multiplier
            parts += 1
            rest = after[unitEnd...]
        }
        guard parts > 0 else { throw Error.invalid(text) }
        seconds = total
    }

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

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String)

        public var description: String {
            switch self {
            case .invalid(let text):
                return "invalid duration '\(text)': expected e.g. 90s, 6m, 1h30m, 7m30s or a number of seconds"
            }
        }
    }
}
