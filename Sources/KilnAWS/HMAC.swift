import KilnDigest

/// HMAC-SHA256 (RFC 2104) over kiln's SHA-256, for SigV4 signing keys.
public enum HMACSHA256 {
    static let blockSize = 64

    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > blockSize ? sha256(key) : key
        k += [UInt8](repeating: 0, count: blockSize - k.count)
        let inner = SHA256Hasher()
        inner.update(k.map { $0 ^ 0x36 })
        inner.update(message)
        let outer = SHA256Hasher()
        outer.update(k.map { $0 ^ 0x5c })
        outer.update(inner.finalizeBytes())
        return outer.finalizeBytes()
    }

    public static func mac(key: [UInt8], message: String) -> [UInt8] { mac(key: key, message: Array(message.utf8)) }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { SHA256Hasher.hashBytes($0) }
    }
}

extension Array where Element == UInt8 {
    /// Lowercase hex.
    public var lowercaseHex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
