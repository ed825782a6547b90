import Foundation

/// Splits "187GB", "1.5 GiB", "60GiB/s" into a decimal number and a unit, shared by the size, rate and
/// duration parsers so they agree on what a number looks like.
enum QuantityParser {
    /// Multipliers for size units, keyed by lowercased unit. Single letters ("G") are deliberately absent:
    /// they are ambiguous between 10^9 and 2^30 and that ambiguity is what the planner exists to remove.
    static let sizeUnits: [String: Double] = [
        "": 1, "b": 1, "byte": 1, "bytes": 1,
        "kb": Units.kb, "mb": Units.mb, "gb": Units.gb, "tb": Units.tb, "pb": 1e15,
        "kib": Units.kib, "mib": Units.mib, "gib": Units.gib, "tib": Units.tib, "pib": Units.tib * 1024,
        "ki": Units.kib, "mi": Units.mib, "gi": Units.gib, "ti": Units.tib, "pi": Units.tib * 1024,
    ]

    /// Reads a leading unsigned decimal number (digits with at most one point) and returns it with the rest.
    static func leadingNumber(_ text: Substring) -> (value: Double, text: Substring, rest: Substring)? {
        var end = text.startIndex
        var sawDigit = false
        var sawPoint = false
        while end < text.endIndex {
            let c = text[end]
            if c.isASCII && c.isNumber {
                sawDigit = true
            } else if c == "." && !sawPoint {
                sawPoint = true
            } else {
                break
            }
            end = text.index(after: end)
        }
        guard sawDigit, let value = Double(text[text.startIndex..<end]) else { return nil }
        return (value, text[text.startIndex..<end], text[end...])
    }

    /// Parses a size into bytes as a Double (fractions allowed with a unit, e.g. "1.5GiB").
    static func bytes(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let (value, numberText, rest) = leadingNumber(Substring(trimmed)) else { return nil }
        let unit = rest.trimmingCharacters(in: .whitespaces).lowercased()
        guard let multiplier = sizeUnits[unit] else { return nil }
        // A bare byte count has no fraction: "1.5" bytes is a typo, not a size.
        if multiplier == 1 && numberText.contains(".") { return nil }
        return value * multiplier
    }
}
