import Foundation

/// A throughput in bytes per second parsed from text such as `60GiB/s`, `1500MiB/s` or `140MB/s`.
///
/// The size part follows ``Quantity`` (SI and IEC units); the `/s` suffix is optional.
public struct ByteRate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bytesPerSecond: Double

    public init(bytesPerSecond: Double) { self.bytesPerSecond = bytesPerSecond }

    public static func mibPerSecond(_ value: Double) -> ByteRate { ByteRate(bytesPerSecond: value * Units.mib) }
    public static func gibPerSecond(_ value: Double) -> ByteRate { ByteRate(bytesPerSecond: value * Units.gib) }

    public init(parsing text: String) throws(QuantityError) {
        let value = try Quantity.bytesPerSecond(text)
        guard value > 0 else { throw .notPositive(text) }
        bytesPerSecond = value
    }

    public typealias Error = QuantityError

    public var mibPerSecond: Double { bytesPerSecond / Units.mib }

    public static func < (lhs: ByteRate, rhs: ByteRate) -> Bool { lhs.bytesPerSecond < rhs.bytesPerSecond }

    /// Binary units, the way AWS quotes EBS and EFS limits: `1500 MiB/s`, `60.0 GiB/s`.
    public var description: String { ByteRate.format(bytesPerSecond) }

    public static func format(_ bytesPerSecond: Double) -> String {
        // GiB/s for file-system scale numbers (or whole GiB), MiB/s for per-node and per-volume ones.
        let gib = bytesPerSecond / Units.gib
        if gib >= 10 || (gib >= 1 && gib == gib.rounded()) {
            let v = gib
            return v == v.rounded() ? String(format: "%.0f GiB/s", v) : String(format: "%.2f GiB/s", v)
        }
        if bytesPerSecond >= Units.mib {
            let v = bytesPerSecond / Units.mib
            return v == v.rounded() ? String(format: "%.0f MiB/s", v) : String(format: "%.1f MiB/s", v)
        }
        return String(format: "%.0f KiB/s", bytesPerSecond / Units.kib)
    }
}

extension ByteRate {
    /// Parses `LOW..HIGH`, e.g. `50MB/s..140MB/s`; a single rate gives an empty-width range.
    public static func parseRange(_ text: String) throws(QuantityError) -> ClosedRange<ByteRate> {
        let parts = text.components(separatedBy: "..")
        switch parts.count {
        case 1:
            let rate = try ByteRate(parsing: parts[0])
            return rate...rate
        case 2:
            guard let low = try? ByteRate(parsing: parts[0]), let high = try? ByteRate(parsing: parts[1]), low <= high else {
                throw .invalidRange(text)
            }
            return low...high
        default:
            throw .invalidRange(text)
        }
    }
}
