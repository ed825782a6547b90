import Foundation

/// An amount of bytes parsed from text such as `187GB`, `500M`, `50GiB`, `200Gi` or `1048576`, with ``Quantity``.
public struct ByteSize: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bytes: UInt64

    public init(_ bytes: UInt64) { self.bytes = bytes }

    /// Parses a size; a fraction is allowed when the result is a whole number of bytes (`1.5GiB`).
    public init(parsing text: String) throws(QuantityError) {
        bytes = try Quantity.bytes(text)
    }

    public typealias Error = QuantityError

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
}
