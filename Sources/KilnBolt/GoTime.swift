import Foundation

/// An instant as Go's `time.Time` stores it, with the 15-byte `MarshalBinary` encoding
/// containerd writes for `createdat` and `updatedat`.
public struct GoTime: Sendable, Hashable, Comparable {
    /// Seconds between 0001-01-01 (Go's internal epoch) and 1970-01-01 UTC.
    public static let unixToInternal: Int64 = 62_135_596_800

    /// Seconds since 1970-01-01 UTC.
    public let unixSeconds: Int64
    /// Nanoseconds within the second, 0 through 999,999,999.
    public let nanoseconds: Int32

    /// Errors raised while decoding.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case empty
        case unsupportedVersion(UInt8)
        case invalidLength(Int, expected: Int)
        case invalidNanoseconds(Int32)

        public var description: String {
            switch self {
            case .empty: return "empty Go time encoding"
            case .unsupportedVersion(let version): return "unsupported Go time encoding version \(version)"
            case .invalidLength(let length, let expected):
                return "Go time encoding of \(length) bytes, expected \(expected)"
            case .invalidNanoseconds(let nanos): return "Go time nanoseconds \(nanos) out of range"
            }
        }
    }

    /// Creates a time like Go's `time.Unix`: nanoseconds outside one second carry into the seconds.
    public init(unixSeconds: Int64, nanoseconds: Int64 = 0) {
        let carry = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds + 1) / 1_000_000_000 - 1
        self.unixSeconds = unixSeconds &+ carry
        self.nanoseconds = Int32(nanoseconds - carry * 1_000_000_000)
    }

    /// The time of `date`, to the nanosecond a `Double` can hold.
    public init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        let seconds = interval.rounded(.down)
        let nanos = ((interval - seconds) * 1e9).rounded()
        // Dates beyond what Int64 seconds can hold (or not finite) are clamped, not trapped on.
        guard seconds.magnitude < 0x1p62 else {
            self.init(unixSeconds: seconds < 0 ? -(1 << 62) : 1 << 62)
            return
        }
        self.init(unixSeconds: Int64(seconds), nanoseconds: Int64(nanos))
    }

    /// The time as a `Date` (which keeps about a microsecond of precision today).
    public var date: Date {
        Date(timeIntervalSince1970: Double(unixSeconds) + Double(nanoseconds) / 1e9)
    }

    /// Go's `time.Time.MarshalBinary` of this instant in UTC: version 1, int64 seconds since
    /// year 1, int32 nanoseconds, int16 zone offset in minutes (-1 means UTC), big-endian.
    public func marshalBinary() -> Data {
        var out = Data([1])
        let sinceYearOne = unixSeconds &+ Self.unixToInternal
        withUnsafeBytes(of: sinceYearOne.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: nanoseconds.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: Int16(-1).bigEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// Go's `time.Time.UnmarshalBinary` (versions 1 and 2). The zone offset names only how
    /// the time was displayed; the instant does not depend on it and is all this keeps.
    public init(marshalledBinary data: Data) throws {
        let bytes = [UInt8](data)
        guard let version = bytes.first else { throw Error.empty }
        let expected: Int
        switch version {
        case 1: expected = 15
        case 2: expected = 16
        default: throw Error.unsupportedVersion(version)
        }
        guard bytes.count == expected else { throw Error.invalidLength(bytes.count, expected: expected) }
        let sinceYearOne = bytes[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let nanos = Int32(bitPattern: bytes[9..<13].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard (0..<1_000_000_000).contains(nanos) else { throw Error.invalidNanoseconds(nanos) }
        self.unixSeconds = Int64(bitPattern: sinceYearOne) &- Self.unixToInternal
        self.nanoseconds = nanos
    }

    public static func < (lhs: GoTime, rhs: GoTime) -> Bool {
        (lhs.unixSeconds, lhs.nanoseconds) < (rhs.unixSeconds, rhs.nanoseconds)
    }
}
