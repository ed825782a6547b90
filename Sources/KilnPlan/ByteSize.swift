import Foundation

/// An amount of bytes parsed from text such as `187GB`, `50GiB`, `200Gi` or `1048576`.
///
/// Decimal suffixes (KB, MB, GB, TB, PB) are powers of 10, binary suffixes (KiB/Ki, MiB/Mi, GiB/Gi, TiB/Ti,
/// PiB/Pi) powers of 2, a bare number is bytes. Units are case-insensitive; single-letter units are rejected
/// as ambiguous.
public struct ByteSize: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bytes: UInt64

    public init(_ bytes: UInt64) { self.bytes = bytes }

    /// Parses a size; fractions are allowed with a unit and rounded to the nearest byte.
    public init(parsing text: String) throws {
        guard let value = QuantityParser.bytes(text) else { throw Error.invalid(text) }
        guard value.isFinite, value < 0x1p64 else { throw Error.tooLarge(text) }
        bytes = UInt64(value.rounded())
    }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    public var description: String { ByteSize.format(Double(bytes)) }

    /// Formats bytes in decimal units with the binary equivalent, e.g. `190.00 GB (176.95 GiB)`, because
    /// users compare against both kinds of numbers.
    public static func format(_ bytes: Double) -> String {
        if bytes < Units.kb { return "\(Int(bytes)) B" }
        return "\(decimal(bytes)) (\(binary(bytes)))"
    }

    /// Decimal units only, e.g. `190.00 GB`.
    public static func decimal(_ bytes: Double) -> String {
        let units: [(Double, String)] = [(1e15, "PB"), (Units.tb, "TB"), (Units.gb, "GB"), (Units.mb, "MB"), (Units.kb, "KB")]
        for (size, name) in units where bytes >= size {
            return String(format: "%.2f %@", bytes / size, name)
        }
        return "\(Int(bytes)) B"
    }

    /// Binary units only, e.g. `176.95 GiB`.
    public static func binary(_ bytes: Double) -> String {
        let units: [(Double, String)] = [(Units.tib * 1024, "PiB"), (Units.tib, "TiB"), (Units.gib, "GiB"), (Units.mib, "MiB"), (Units.kib, "KiB")]
        for (size, name) in units where bytes >= size {
            return String(format: "%.2f %@", bytes / size, name)
        }
        return "\(Int(bytes)) B"
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String)
        case tooLarge(String)

        public var description: String {
            switch self {
            case .invalid(let text):
                return "invalid size '\(text)': expected a number with an optional unit such as 187GB, 50GiB, 200Gi or 1048576 (bytes)"
            case .tooLarge(let text):
                return "size '\(text)' is too large"
            }
        }
    }
}
