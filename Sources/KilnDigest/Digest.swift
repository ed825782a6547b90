/// A content digest in the OCI form `algorithm:hex`, e.g. `sha256:e3b0c442...`.
///
/// Only `sha256` is produced by kiln; other algorithms are parsed so that errors can name them.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The algorithm part, e.g. `sha256`.
    public let algorithm: String
    /// The lowercase hexadecimal encoded part.
    public let encoded: String

    /// Errors raised when a digest string is malformed.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case malformed(String)
        case unsupportedAlgorithm(String)

        public var description: String {
            switch self {
            case .malformed(let s): return "malformed digest '\(s)' (expected sha256:<64 hex digits>)"
            case .unsupportedAlgorithm(let a): return "unsupported digest algorithm '\(a)' (only sha256 is supported)"
            }
        }
    }

    /// Parses `algorithm:hex`. Only `sha256` with 64 lowercase hex digits is accepted.
    public init(parsing string: String) throws {
        guard let colon = string.firstIndex(of: ":") else { throw Error.malformed(string) }
        let algorithm = String(string[..<colon])
        let encoded = String(string[string.index(after: colon)...])
        guard algorithm == "sha256" else {
            if algorithm.isEmpty || encoded.isEmpty { throw Error.malformed(string) }
            throw Error.unsupportedAlgorithm(algorithm)
        }
        guard encoded.utf8.count == 64, encoded.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw Error.malformed(string)
        }
        self.algorithm = algorithm
        self.encoded = encoded
    }

    /// A sha256 digest from 32 raw bytes.
    public init(sha256 bytes: some Sequence<UInt8>) {
        self.algorithm = "sha256"
        self.encoded = bytes.hexString
    }

    /// The raw digest bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encoded.utf8.count / 2)
        var high: UInt8? = nil
        for c in encoded.utf8 {
            let v: UInt8 = c <= 57 ? c - 48 : c - 87
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    public var description: String { "\(algorithm):\(encoded)" }

    /// The first 12 hex digits, as people abbreviate image ids.
    public var short: String { String(encoded.prefix(12)) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: s)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension Sequence<UInt8> {
    /// Lowercase hexadecimal text of these bytes.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
