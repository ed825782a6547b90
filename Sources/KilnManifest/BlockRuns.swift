/// A set of block indexes stored as sorted, disjoint, non-adjacent runs.
///
/// In JSON it is a compact string of inclusive ranges, `"0-3,7,9-12"` (empty for no blocks), which stays short
/// for the long contiguous runs a freshly written filesystem has and is quick to parse.
public struct BlockRuns: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The runs, ascending; no two overlap or touch.
    public private(set) var runs: [Range<UInt64>]

    /// Errors raised when the text form is malformed.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case malformed(String)

        public var description: String {
            switch self {
            case .malformed(let s): return "malformed block list '\(s.prefix(80))' (expected e.g. \"0-3,7,9-12\", ascending)"
            }
        }
    }

    /// An empty set.
    public init() { runs = [] }

    /// The union of `ranges`, in any order, overlapping or not.
    public init(_ ranges: some Sequence<Range<UInt64>>) {
        var sorted = ranges.filter { !$0.isEmpty }
        sorted.sort { $0.lowerBound < $1.lowerBound }
        var out: [Range<UInt64>] = []
        out.reserveCapacity(sorted.count)
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound {
                if r.upperBound > last.upperBound { out[out.count - 1] = last.lowerBound..<r.upperBound }
            } else {
                out.append(r)
            }
        }
        runs = out
    }

    /// Parses the text form.
    public init(parsing text: String) throws {
        var out: [Range<UInt64>] = []
        guard !text.isEmpty else {
            runs = []
            return
        }
        for part in text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let bounds = part.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                let first = Self.number(bounds[0]),
                let last = bounds.count == 2 ? Self.number(bounds[1]) : first,
                first <= last, last < UInt64.max
            else { throw Error.malformed(text) }
            // Runs must be ascending and separated by at least one block, so one set has one text form.
            if let previous = out.last, first <= previous.upperBound { throw Error.malformed(text) }
            out.append(first..<(last + 1))
        }
        runs = out
    }

    private static func number(_ digits: Substring.UTF8View.SubSequence) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var v: UInt64 = 0
        for c in digits {
            guard c >= 48, c <= 57 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - 48))
            if o1 || o2 { return nil }
            v = a
        }
        return v
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The text form, e.g. `0-3,7,9-12`.
    public var description: String {
        var out = ""
        for (i, r) in runs.enumerated() {
            if i > 0 { out += "," }
            out += r.count == 1 ? "\(r.lowerBound)" : "\(r.lowerBound)-\(r.upperBound - 1)"
        }
        return out
    }

    /// Number of blocks in the set.
    public var count: UInt64 {
        // Saturating: a decoded list may describe more blocks than fit in a UInt64 when summed.
        runs.reduce(0) { sum, r in
            let (v, overflow) = sum.addingReportingOverflow(r.upperBound - r.lowerBound)
            return overflow ? UInt64.max : v
        }
    }
    public var isEmpty: Bool { runs.isEmpty }
    /// The first block after the last one in the set (0 when empty).
    public var upperBound: UInt64 { runs.last?.upperBound ?? 0 }

    /// Whether any block of `range` is in the set.
    public func intersects(_ range: Range<UInt64>) -> Bool {
        guard !range.isEmpty else { return false }
        // The last run starting before range.upperBound is the only one that can reach into it... unless
        // it ends before range.lowerBound.
        var lo = 0
        var hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].lowerBound < range.upperBound { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return false }
        return runs[lo - 1].upperBound > range.lowerBound
    }

    /// Whether `block` is in the set.
    public func contains(_ block: UInt64) -> Bool { intersects(block..<(block + 1)) }
}
