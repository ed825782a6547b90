import Foundation

/// Go's `encoding/binary` varints, as containerd stores integers in its bbolt databases.
///
/// ``encode(_:)`` matches `binary.PutVarint` (zigzag, so small negatives stay short) and
/// ``encodeUnsigned(_:)`` matches `binary.PutUvarint` (7 bits a byte, low bits first).
public enum GoVarint {
    /// Errors raised while decoding.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        /// The bytes end before a byte without the continuation bit.
        case truncated
        /// More than 64 bits of value.
        case overflow

        public var description: String {
            switch self {
            case .truncated: return "truncated varint: the bytes end inside the number"
            case .overflow: return "varint overflows 64 bits"
            }
        }
    }

    /// The longest encoding of a 64-bit value.
    public static let maxLength = 10

    /// Go's `binary.PutVarint`.
    public static func encode(_ value: Int64) -> Data {
        let zigzag = UInt64(bitPattern: value) << 1
        return encodeUnsigned(value < 0 ? ~zigzag : zigzag)
    }

    /// Go's `binary.PutUvarint`.
    public static func encodeUnsigned(_ value: UInt64) -> Data {
        var out = Data()
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
        return out
    }

    /// Go's `binary.Varint`: the value at the start of `bytes` and how many bytes it used.
    public static func decode(_ bytes: Data) throws -> (value: Int64, length: Int) {
        let (zigzag, length) = try decodeUnsigned(bytes)
        let magnitude = Int64(bitPattern: zigzag >> 1)
        return (zigzag & 1 == 0 ? magnitude : ~magnitude, length)
    }

    /// Go's `binary.Uvarint`: the value at the start of `bytes` and how many bytes it used.
    public static func decodeUnsigned(_ bytes: Data) throws -> (value: UInt64, length: Int) {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            guard index < maxLength else { throw Error.overflow }
            if byte < 0x80 {
                // The tenth byte may only contribute the top bit.
                if index == maxLength - 1 && byte > 1 { throw Error.overflow }
                return (value | UInt64(byte) << shift, index + 1)
            }
            value |= UInt64(byte & 0x7F) << shift
            shift += 7
        }
        throw bytes.count >= maxLength ? Error.overflow : Error.truncated
    }
}
