/// The one reader of numbers with units that kiln takes on the command line and in recipes: sizes
/// (`20GiB`, `500M`), rates (`1500MiB/s`) and durations (`7m30s`).
///
/// Size units are case-insensitive. SI units are powers of 1000: `k`, `M`, `G`, `T`, `P`, with or without a
/// trailing `B`. IEC units are powers of 1024: `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, with or without a trailing `B`. A bare
/// number, or `B`, is bytes. So `64M` and `64MB` are 64,000,000 bytes and `64Mi` and `64MiB` are 67,108,864,
/// everywhere.
///
/// Refused, as input errors naming the text: negative numbers, exponents (`5e9`), digit grouping (`1,000`,
/// `1_000`, ambiguous between a separator and a decimal point), a fraction of a byte (`1.5`, `1.0001KiB`),
/// several numbers (`12 34`), unknown units, and values beyond 2^64 bytes.
public enum Quantity {
    /// Multipliers of the size units, keyed by the lowercased unit.
    static let sizeUnits: [String: UInt64] = {
        var units: [String: UInt64] = ["": 1, "b": 1, "byte": 1, "bytes": 1]
        let prefixes = ["k", "m", "g", "t", "p"]
        var si: UInt64 = 1
        var iec: UInt64 = 1
        for prefix in prefixes {
            si *= 1000
            iec *= 1024
            units[prefix] = si
            units[prefix + "b"] = si
            units[prefix + "i"] = iec
            units[prefix + "ib"] = iec
        }
        return units
    }()

    /// A number as written: its integer and fractional digits, so sizes are computed exactly.
    struct Number {
        var integer: Substring
        var fraction: Substring
        var text: Substring

        var doubleValue: Double { Double(text) ?? .nan }
    }

    /// Reads a leading unsigned decimal number (digits with at most one point) and returns it with the rest.
    static func leadingNumber(_ text: Substring, whole: String) throws(QuantityError) -> (Number, rest: Substring) {
        if text.first == "-" { throw .negative(whole) }
        if text.first == "+" { throw .invalid(whole, expected: nil) }
        var end = text.startIndex
        var point: Substring.Index? = nil
        while end < text.endIndex {
            let c = text[end]
            if c.isASCII && c.isNumber {
            } else if c == "." && point == nil {
                point = end
            } else {
                break
            }
            end = text.index(after: end)
        }
        let integer = text[text.startIndex..<(point ?? end)]
        let fraction = point.map { text[text.index(after: $0)..<end] } ?? text[end..<end]
        guard !integer.isEmpty || !fraction.isEmpty else { throw .invalid(whole, expected: nil) }
        if end < text.endIndex, [",", "_", "'"].contains(text[end]) { throw .grouped(whole) }
        if end < text.endIndex, text[end] == "e" || text[end] == "E",
           text.index(after: end) < text.endIndex, text[text.index(after: end)].isNumber || "+-".contains(text[text.index(after: end)]) {
            throw .exponent(whole)
        }
        return (Number(integer: integer, fraction: fraction, text: text[text.startIndex..<end]), text[end...])
    }

    /// Parses a size into bytes.
    public static func bytes(_ text: String) throws(QuantityError) -> UInt64 {
        let trimmed = Substring(text.trimmingSpaces)
        guard !trimmed.isEmpty else { throw .empty }
        let (number, rest) = try leadingNumber(trimmed, whole: text)
        let unit = String(rest.trimmingSpaces).lowercased()
        guard let multiplier = sizeUnits[unit] else {
            if unit.contains(where: { $0.isNumber }) { throw .invalid(text, expected: .size) }
            throw .unknownUnit(text, unit: String(rest.trimmingSpaces), kind: .size)
        }
        return try exactBytes(number, multiplier: multiplier, text: text)
    }

    /// `number x multiplier` computed on integers, refusing a result that is not a whole number of bytes.
    static func exactBytes(_ number: Number, multiplier: UInt64, text: String) throws(QuantityError) -> UInt64 {
        let fraction = number.fraction.reversed().drop { $0 == "0" }.reversed()
        guard number.integer.count <= 20, fraction.count <= 18 else { throw .tooLarge(text) }
        guard let whole = UInt64(number.integer.isEmpty ? "0" : String(number.integer)) else { throw .tooLarge(text) }
        let (integerPart, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        if overflow { throw .tooLarge(text) }
        guard !fraction.isEmpty else { return integerPart }
        // fraction digits f over 10^n: f x multiplier must be divisible by 10^n.
        var scale: UInt64 = 1
        for _ in fraction { scale *= 10 }
        guard let digits = UInt64(String(fraction)) else { throw .invalid(text, expected: .size) }
        let (high, low) = digits.multipliedFullWidth(by: multiplier)
        let (quotient, remainder) = scale.dividingFullWidth((high, low))
        guard remainder == 0 else { throw .fractionalBytes(text) }
        let (sum, sumOverflow) = integerPart.addingReportingOverflow(quotient)
        if sumOverflow { throw .tooLarge(text) }
        return sum
    }

    /// Parses a rate in bytes per second: a size with an optional `/s` (or `/sec`); the size part is ``bytes(_:)``
    /// but may be fractional (a rate need not be a whole number of bytes per second).
    public static func bytesPerSecond(_ text: String) throws(QuantityError) -> Double {
        var body = Substring(text.trimmingSpaces)
        guard !body.isEmpty else { throw .empty }
        for suffix in ["/sec", "/s"] where body.lowercased().hasSuffix(suffix) {
            body = body.dropLast(suffix.count)
            break
        }
        let (number, rest) = try leadingNumber(body, whole: text)
        let unit = String(rest.trimmingSpaces).lowercased()
        guard let multiplier = sizeUnits[unit] else { throw .unknownUnit(text, unit: String(rest.trimmingSpaces), kind: .rate) }
        let value = number.doubleValue * Double(multiplier)
        guard value.isFinite, value < 0x1p64 else { throw .tooLarge(text) }
        return value
    }

    /// Parses a duration in seconds: one or more number-unit pairs (`90s`, `6m`, `1h30m`, `7m30s`, `1.5m`,
    /// `250ms`, `2d`), or a bare number of seconds. Units: `ms`, `s`/`sec`, `m`/`min`, `h`/`hr`/`hour`, `d`/`day`,
    /// in any case, each at most once, largest first.
    public static func seconds(_ text: String) throws(QuantityError) -> Double {
        let trimmed = Substring(text.trimmingSpaces.lowercased())
        guard !trimmed.isEmpty else { throw .empty }
        var rest = trimmed
        var total = 0.0
        var lastScale = Double.infinity
        var parts = 0
        while !rest.isEmpty {
            let (number, afterNumber) = try leadingNumber(rest, whole: text)
            let after = afterNumber.drop { $0 == " " }
            var unitEnd = after.startIndex
            while unitEnd < after.endIndex, after[unitEnd].isLetter { unitEnd = after.index(after: unitEnd) }
            let unit = after[after.startIndex..<unitEnd]
            let scale: Double
            switch unit {
            case "" where parts == 0 && unitEnd == after.endIndex: scale = 1
            case "d", "day", "days": scale = 86_400
            case "h", "hr", "hrs", "hour", "hours": scale = 3600
            case "m", "min", "mins", "minute", "minutes": scale = 60
            case "s", "sec", "secs", "second", "seconds": scale = 1
            case "ms": scale = 0.001
            case "": throw .invalid(text, expected: .duration)
            default: throw .unknownUnit(text, unit: String(unit), kind: .duration)
            }
            // `1m30` or `30s1m` are typos, not durations.
            guard scale < lastScale else { throw .invalid(text, expected: .duration) }
            lastScale = scale
            total += number.doubleValue * scale
            parts += 1
            rest = after[unitEnd...].drop { $0 == " " }
        }
        guard total.isFinite else { throw .tooLarge(text) }
        return total
    }
}

extension Quantity {
    /// Parses a plain non-negative decimal number (a count per minute, a price), with the same rules for what
    /// a number looks like.
    public static func number(_ text: String) throws(QuantityError) -> Double {
        let trimmed = Substring(text.trimmingSpaces)
        guard !trimmed.isEmpty else { throw .empty }
        let (number, rest) = try leadingNumber(trimmed, whole: text)
        guard rest.isEmpty else { throw .invalid(text, expected: nil) }
        return number.doubleValue
    }

    /// Parses a whole number within `range`.
    public static func integer(_ text: String, in range: ClosedRange<Int>) throws(QuantityError) -> Int {
        let trimmed = Substring(text.trimmingSpaces)
        guard !trimmed.isEmpty else { throw .empty }
        let (number, rest) = try leadingNumber(trimmed, whole: text)
        guard rest.isEmpty, number.fraction.isEmpty, !number.text.contains(".") else { throw .notAnInteger(text) }
        guard let value = Int(number.integer), range.contains(value) else { throw .outOfRange(text, range) }
        return value
    }
}

/// What kind of quantity a text was read as, for messages.
public enum QuantityKind: String, Sendable {
    case size, rate, duration

    var examples: String {
        switch self {
        case .size: return "e.g. 20GiB, 500M, 187GB or 1048576 (bytes)"
        case .rate: return "e.g. 1500MiB/s, 60GiB/s or 140MB/s"
        case .duration: return "e.g. 90s, 7m, 1h30m, 7m30s or a number of seconds"
        }
    }
}

/// Why a size, rate or duration was refused; always an input error (exit 2).
public enum QuantityError: KilnError, Equatable {
    case empty
    case invalid(String, expected: QuantityKind?)
    case negative(String)
    case exponent(String)
    case grouped(String)
    case fractionalBytes(String)
    case unknownUnit(String, unit: String, kind: QuantityKind)
    case tooLarge(String)
    case notPositive(String)
    case invalidRange(String)
    case notAnInteger(String)
    case outOfRange(String, ClosedRange<Int>)

    public var exitStatus: ExitStatus { .input }

    public var description: String {
        switch self {
        case .empty: return "empty value: expected a number with a unit"
        case .invalid(let t, let kind): return "'\(t)' is not a \(kind?.rawValue ?? "number")\(kind.map { " (\($0.examples))" } ?? "")"
        case .negative(let t): return "'\(t)' is negative"
        case .exponent(let t): return "'\(t)': exponents are not accepted, write the number out or use a unit (5e9 is 5G)"
        case .grouped(let t): return "'\(t)' is ambiguous: digit separators are not accepted (write 1000, or 1k)"
        case .fractionalBytes(let t): return "'\(t)' is not a whole number of bytes"
        case .unknownUnit(let t, let unit, let kind):
            let known: String
            switch kind {
            case .size, .rate: known = "B, k, M, G, T, P (powers of 1000) or Ki, Mi, Gi, Ti, Pi (powers of 1024), with or without B"
            case .duration: known = "ms, s, m, h, d"
            }
            return "'\(t)': unknown \(kind.rawValue) unit '\(unit)' (units: \(known))"
        case .tooLarge(let t): return "'\(t)' is too large"
        case .notPositive(let t): return "'\(t)' must be greater than zero"
        case .notAnInteger(let t): return "'\(t)' is not a whole number"
        case .outOfRange(let t, let r): return "'\(t)' is not in \(r.lowerBound)...\(r.upperBound)"
        case .invalidRange(let t): return "'\(t)' is not a range: expected LOW..HIGH such as 50MB/s..140MB/s with LOW <= HIGH"
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex..<endIndex]
        }
        return self[first...last]
    }
}
