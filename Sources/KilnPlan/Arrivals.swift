import Foundation
import KilnCore

/// When nodes are asked for, and when EC2 actually launches them.
public enum Arrivals {
    /// `perMinute` requests a minute, evenly spaced, for `count` requests starting at time 0.
    public static func uniform(perMinute: Double, count: Int) -> [Double] {
        guard count > 0, perMinute > 0 else { return [] }
        let spacing = 60 / perMinute
        return (0..<count).map { Double($0) * spacing }
    }

    /// The number of requests `perMinute` a minute yield over `burstSeconds` (at least one).
    public static func count(perMinute: Double, burstSeconds: Double) -> Int {
        max(1, Int((perMinute * burstSeconds / 60).rounded()))
    }

    /// Parses launch times from CSV: one request a line, `time[,count]`, time as seconds or a duration
    /// (`90s`, `1m30s`). A non-numeric first line is a header; `#` lines are comments.
    public static func parseCSV(_ text: String, source: String) throws -> [Double] {
        var times: [Double] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard let time = try? TimeSpan(parsing: fields[0]), time.seconds >= 0 else {
                if times.isEmpty && index == 0 { continue }
                throw Error.badLine(source: source, line: index + 1, text: line)
            }
            var count = 1
            if fields.count > 1, !fields[1].isEmpty {
                guard let c = Int(fields[1]), c >= 0 else {
                    throw Error.badLine(source: source, line: index + 1, text: line)
                }
                count = c
            }
            times.append(contentsOf: repeatElement(time.seconds, count: count))
        }
        guard !times.isEmpty else { throw Error.empty(source) }
        return times.sorted()
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case badLine(source: String, line: Int, text: String)
        case empty(String)

        public var description: String {
            switch self {
            case .badLine(let source, let line, let text):
                return "arrivals '\(source)' line \(line): expected 'time[,count]' with time in seconds or like 90s, got '\(text)'"
            case .empty(let source):
                return "arrivals '\(source)' lists no launch times"
            }
        }
    }
}

/// EC2's documented resource token bucket for launching instances: `capacity` instances at once, refilled
/// at `refillPerSecond`. Requests beyond it wait for a token (first come, first served).
public struct LaunchThrottle: Sendable, Hashable {
    public var capacity: Double
    public var refillPerSecond: Double
    /// Tokens in the bucket when the burst begins (other launches in the account may have used some).
    public var initialTokens: Double

    public static let ec2Default = LaunchThrottle(capacity: 1000, refillPerSecond: 2)

    public init(capacity: Double, refillPerSecond: Double, initialTokens: Double? = nil) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        self.initialTokens = initialTokens ?? capacity
    }

    /// Launch times for requests at `requests` (seconds, any order); the result is in ascending order of
    /// request.
    public func launchTimes(for requests: [Double]) -> [Double] {
        let sorted = requests.sorted()
        var tokens = initialTokens
        var clock = sorted.first ?? 0
        var result: [Double] = []
        result.reserveCapacity(sorted.count)
        for request in sorted {
            let start = max(request, clock)
            tokens = min(capacity, tokens + (start - clock) * refillPerSecond)
            clock = start
            if tokens >= 1 - 1e-9 {
                tokens -= 1
                result.append(start)
            } else if refillPerSecond > 0 {
                let wait = (1 - tokens) / refillPerSecond
                clock = start + wait
                tokens = 0
                result.append(clock)
            } else {
                result.append(.infinity)
            }
        }
        return result
    }
}
