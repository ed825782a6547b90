/// A `WWW-Authenticate` challenge: `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
public struct AuthChallenge: Sendable, Hashable {
    /// `bearer` or `basic`, lowercased.
    public var scheme: String
    /// Parameters with lowercased names.
    public var parameters: [String: String]

    public var realm: String? { parameters["realm"] }
    public var service: String? { parameters["service"] }
    public var scope: String? { parameters["scope"] }
    public var error: String? { parameters["error"] }

    /// Parses the first challenge of a header value; nil when there is none.
    public init?(header: String) {
        let bytes = Array(header.utf8)
        var i = 0
        func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        skipSpaces()
        let schemeStart = i
        while i < bytes.count, bytes[i] != 0x20, bytes[i] != 0x2C { i += 1 }
        guard i > schemeStart else { return nil }
        scheme = String(decoding: bytes[schemeStart..<i], as: UTF8.self).lowercased()
        parameters = [:]
        while i < bytes.count {
            skipSpaces()
            if i < bytes.count, bytes[i] == 0x2C { i += 1; continue }
            let nameStart = i
            while i < bytes.count, bytes[i] != 0x3D, bytes[i] != 0x2C, bytes[i] != 0x20 { i += 1 }
            let name = String(decoding: bytes[nameStart..<i], as: UTF8.self).lowercased()
            skipSpaces()
            // A token without '=' starts the next challenge: only the first one is read.
            guard i < bytes.count, bytes[i] == 0x3D else { break }
            i += 1
            skipSpaces()
            var value: [UInt8] = []
            if i < bytes.count, bytes[i] == 0x22 {
                i += 1
                while i < bytes.count, bytes[i] != 0x22 {
                    if bytes[i] == 0x5C, i + 1 < bytes.count { i += 1 }
                    value.append(bytes[i])
                    i += 1
                }
                i += 1
            } else {
                while i < bytes.count, bytes[i] != 0x2C, bytes[i] != 0x20 { value.append(bytes[i]); i += 1 }
            }
            if !name.isEmpty { parameters[name] = String(decoding: value, as: UTF8.self) }
        }
    }
}
