import Foundation
import KilnDigest

/// AWS Signature Version 4 for the request header (`Authorization`), as the SDKs sign.
///
/// Every header given is signed (kiln sends only headers it means to sign); the payload hash is taken from
/// `x-amz-content-sha256` when the request carries it, otherwise computed from the body.
public struct SigV4Signer: Sendable {
    /// The payload hash for a body that is not hashed (EBS PutSnapshotBlock).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public var service: String
    public var region: String

    public init(service: String, region: String) {
        self.service = service
        self.region = region
    }

    /// A request as SigV4 sees it: method, encoded path, query parameters (unencoded), headers and body hash.
    public struct Request: Sendable, Hashable {
        public var method: String
        /// The URI path, already percent-encoded as sent (e.g. `/snapshots/snap-1/blocks/7`).
        public var path: String
        /// Query parameters, not encoded.
        public var query: [(String, String)]
        /// Header names as sent; they are lowercased for signing.
        public var headers: [(String, String)]
        /// Hex sha256 of the body, or ``SigV4Signer/unsignedPayload``.
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }

        public static func == (a: Request, b: Request) -> Bool {
            a.method == b.method && a.path == b.path && a.payloadHash == b.payloadHash
                && a.query.map { [$0.0, $0.1] } == b.query.map { [$0.0, $0.1] }
                && a.headers.map { [$0.0, $0.1] } == b.headers.map { [$0.0, $0.1] }
        }

        public func hash(into h: inout Hasher) {
            h.combine(method)
            h.combine(path)
            h.combine(payloadHash)
        }
    }

    /// The `x-amz-date` value for `date`: `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// Hex sha256 of `body`.
    public static func payloadHash(_ body: [UInt8]) -> String { HMACSHA256.sha256(body).lowercaseHex }

    /// RFC 3986 encoding of everything but the unreserved characters (and `/` when `keepSlash`).
    public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// The canonical query string: each name and value encoded, sorted by name then value.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (uriEncode($0.0), uriEncode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// The canonical request, string to sign and `Authorization` value of `request` at `amzDate`.
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signedHeaders: String
        public var authorization: String
    }

    /// Signs `request`, which must already carry `host` and `x-amz-date` (and `x-amz-security-token` with
    /// temporary credentials).
    public func signature(_ request: Request, credentials: AWSCredentials, amzDate: String) -> Signature {
        var merged: [String: [String]] = [:]
        for (name, value) in request.headers {
            let trimmed = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let path = request.path.isEmpty ? "/" : Self.uriEncode(request.path, keepSlash: true)
        let canonical = [request.method.uppercased(), path, Self.canonicalQuery(request.query), canonicalHeaders,
                         signedHeaders, request.payloadHash].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, HMACSHA256.sha256(Array(canonical.utf8)).lowercaseHex]
            .joined(separator: "\n")
        var key = HMACSHA256.mac(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: day)
        key = HMACSHA256.mac(key: key, message: region)
        key = HMACSHA256.mac(key: key, message: service)
        key = HMACSHA256.mac(key: key, message: "aws4_request")
        let signature = HMACSHA256.mac(key: key, message: stringToSign).lowercaseHex
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(canonicalRequest: canonical, stringToSign: stringToSign, signedHeaders: signedHeaders, authorization: authorization)
    }

    /// The headers to send: `request`'s, with `x-amz-date`, the session token and `Authorization` added.
    public func sign(_ request: Request, credentials: AWSCredentials, date: Date = Date()) -> [(String, String)] {
        let amzDate = Self.amzDate(date)
        var r = request
        r.headers.removeAll { ["x-amz-date", "authorization", "x-amz-security-token"].contains($0.0.lowercased()) }
        r.headers.append(("x-amz-date", amzDate))
        if let token = credentials.sessionToken { r.headers.append(("x-amz-security-token", token)) }
        let s = signature(r, credentials: credentials, amzDate: amzDate)
        return r.headers + [("Authorization", s.authorization)]
    }
}
