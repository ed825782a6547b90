import Foundation

/// Caches credentials from a resolver and refreshes them five minutes before they expire.
public actor CredentialProvider {
    let resolve: @Sendable () async throws -> AWSCredentials
    var cached: AWSCredentials?

    public init(_ resolve: @escaping @Sendable () async throws -> AWSCredentials) {
        self.resolve = resolve
    }

    /// Fixed credentials.
    public init(static credentials: AWSCredentials) {
        self.resolve = { credentials }
        self.cached = credentials
    }

    /// Current credentials, resolved again when close to expiry.
    public func credentials() async throws -> AWSCredentials {
        if let cached, !cached.expires(within: 300) { return cached }
        let fresh = try await resolve()
        cached = fresh
        return fresh
    }
}

/// Retry rules: attempts, exponential backoff with full jitter, and how long a new snapshot may stay unseen.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: TimeInterval
    public var maxDelay: TimeInterval
    /// How long to keep retrying a 404 for a resource just created.
    public var notFoundWindow: TimeInterval

    public init(maxAttempts: Int = 8, baseDelay: TimeInterval = 0.25, maxDelay: TimeInterval = 20, notFoundWindow: TimeInterval = 180) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.notFoundWindow = notFoundWindow
    }

    /// The wait before attempt `attempt` (1 is the first retry): uniform in 0 ..< min(max, base x 2^attempt).
    public func delay(attempt: Int) -> TimeInterval {
        let ceiling = min(maxDelay, baseDelay * pow(2, Double(min(attempt, 20))))
        return Double.random(in: 0..<max(ceiling, 0.001))
    }
}

/// One AWS API call: what to sign and send.
public struct AWSCall: Sendable {
    public var operation: String
    public var method: String
    /// Encoded path, without the endpoint's base path.
    public var path: String
    public var query: [(String, String)]
    /// Headers besides host, date, token and authorization.
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// Sign `UNSIGNED-PAYLOAD` instead of the body's hash.
    public var unsignedPayload: Bool
    /// Whether a 404 may be a resource not visible yet.
    public var retryNotFound: Bool
    public var maxResponseBytes: Int

    public init(operation: String, method: String, path: String, query: [(String, String)] = [], headers: [(String, String)] = [],
                body: [UInt8]? = nil, unsignedPayload: Bool = false, retryNotFound: Bool = false, maxResponseBytes: Int = 4 << 20) {
        self.operation = operation
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.unsignedPayload = unsignedPayload
        self.retryNotFound = retryNotFound
        self.maxResponseBytes = maxResponseBytes
    }
}

/// Counts of what went over the wire, for reports and benchmarks.
public final class AWSCallStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var _requests = 0
    private var _retries = 0
    private var _inFlight = 0
    private var _peakInFlight = 0
    private var _bytesInFlight = 0
    private var _peakBytesInFlight = 0
    private var _bytesSent: UInt64 = 0

    public init() {}

    func begin(bytes: Int) {
        lock.lock()
        _requests += 1
        _inFlight += 1
        _bytesInFlight += bytes
        _bytesSent += UInt64(bytes)
        _peakInFlight = max(_peakInFlight, _inFlight)
        _peakBytesInFlight = max(_peakBytesInFlight, _bytesInFlight)
        lock.unlock()
    }

    func end(bytes: Int) {
        lock.lock()
        _inFlight -= 1
        _bytesInFlight -= bytes
        lock.unlock()
    }

    func retried() {
        lock.lock()
        _retries += 1
        lock.unlock()
    }

    public struct Snapshot: Sendable, Codable, Hashable {
        public var requests: Int
        public var retries: Int
        public var peakInFlight: Int
        public var peakBytesInFlight: Int
        public var bytesSent: UInt64
    }

    public var snapshot: Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return Snapshot(requests: _requests, retries: _retries, peakInFlight: _peakInFlight, peakBytesInFlight: _peakBytesInFlight, bytesSent: _bytesSent)
    }
}

/// A service in a region: signs calls with SigV4 and retries what may succeed on another attempt.
public struct AWSClient: Sendable {
    public var service: String
    public var region: String
    public var endpoint: AWSEndpoint
    public let transport: AWSTransport
    public let credentials: CredentialProvider
    public var retry: RetryPolicy
    public let statistics: AWSCallStatistics
    /// Called before each retry with the error and the wait, for logs.
    public var onRetry: (@Sendable (AWSError, TimeInterval) -> Void)?

    public init(service: String, region: String, endpoint: AWSEndpoint? = nil, transport: AWSTransport, credentials: CredentialProvider,
                retry: RetryPolicy = RetryPolicy(), statistics: AWSCallStatistics = AWSCallStatistics()) {
        self.service = service
        self.region = region
        self.endpoint = endpoint ?? .standard(service: service, region: region)
        self.transport = transport
        self.credentials = credentials
        self.retry = retry
        self.statistics = statistics
    }

    /// Sends `call` once, signed; a non-2xx answer is thrown as a classified ``AWSError``.
    public func sendOnce(_ call: AWSCall) async throws -> AWSResponse {
        let creds = try await credentials.credentials()
        let payloadHash = call.unsignedPayload ? SigV4Signer.unsignedPayload : SigV4Signer.payloadHash(call.body ?? [])
        let fullPath = endpoint.basePath + call.path
        var headers = [("host", endpoint.hostHeader), ("x-amz-content-sha256", payloadHash)] + call.headers
        let signer = SigV4Signer(service: service, region: region)
        headers = signer.sign(.init(method: call.method, path: fullPath, query: call.query, headers: headers, payloadHash: payloadHash), credentials: creds)
        let query = call.query.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
        let url = endpoint.url(path: call.path, query: query)
        let size = call.body?.count ?? 0
        statistics.begin(bytes: size)
        defer { statistics.end(bytes: size) }
        // async-http-client sets Host itself.
        let sent = headers.filter { $0.0.lowercased() != "host" }
        let response = try await transport.execute(operation: call.operation, method: call.method, url: url, headers: sent, body: call.body,
                                                   maxResponseBytes: call.maxResponseBytes)
        guard (200..<300).contains(response.status) else {
            let (code, message) = Self.errorDetails(response)
            var error = AWSError.classify(status: response.status, code: code, message: message, operation: call.operation)
            if error.kind == .notFoundYet && !call.retryNotFound { error.kind = .fatal }
            throw error
        }
        return response
    }

    /// Sends `call`, retrying transient failures with jittered backoff, up to the policy's attempts.
    public func send(_ call: AWSCall) async throws -> AWSResponse {
        var attempt = 0
        let started = Date()
        while true {
            do {
                return try await sendOnce(call)
            } catch let error as AWSError {
                attempt += 1
                let more: Bool
                switch error.kind {
                case .transient: more = attempt < retry.maxAttempts
                case .notFoundYet: more = Date().timeIntervalSince(started) < retry.notFoundWindow
                case .fatal, .configuration: more = false
                }
                guard more else { throw error }
                let wait = error.kind == .notFoundYet ? min(5, 0.5 + retry.delay(attempt: attempt)) : retry.delay(attempt: attempt)
                statistics.retried()
                onRetry?(error, wait)
                try await Task.sleep(nanoseconds: UInt64(wait * 1e9))
            }
        }
    }

    /// The error code and message of an error answer: JSON (`__type`/`code`, `message`), the `x-amzn-ErrorType`
    /// header, or XML (`<Code>`, `<Message>`).
    public static func errorDetails(_ response: AWSResponse) -> (String?, String) {
        var code = response.header("x-amzn-ErrorType").map { String($0.split(separator: ":").first ?? "") }
        var message = ""
        if let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
            if code == nil || code == "" {
                code = (object["__type"] as? String ?? object["code"] as? String ?? object["Code"] as? String).map { String($0.split(separator: "#").last ?? "") }
            }
            message = object["message"] as? String ?? object["Message"] as? String ?? ""
            if let reason = object["Reason"] as? String ?? object["reason"] as? String, !reason.isEmpty { message += " (\(reason))" }
        } else if let xml = Optional(response.text), xml.contains("<") {
            if code == nil { code = XMLFields.first("Code", in: xml) }
            message = XMLFields.first("Message", in: xml) ?? ""
        } else {
            message = String(response.text.prefix(300))
        }
        if code?.isEmpty == true { code = nil }
        return (code, message.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Just enough XML for the EC2 and STS query APIs' answers: the text of elements by name.
public enum XMLFields {
    /// The text of the first `<name>` element in `xml`, entities decoded.
    public static func first(_ name: String, in xml: String) -> String? {
        all(name, in: xml).first
    }

    /// The text of every `<name>` element in `xml`, in order.
    public static func all(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            out.append(decode(String(rest[a.upperBound..<b.lowerBound])))
            rest = rest[b.upperBound...]
        }
        return out
    }

    /// The contents of each `<name>...</name>` element (inner XML), in order.
    public static func elements(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            out.append(String(rest[a.upperBound..<b.lowerBound]))
            rest = rest[b.upperBound...]
        }
        return out
    }

    /// `xml` without its `<name>...</name>` elements (not nested in themselves).
    public static func removing(_ name: String, in xml: String) -> String {
        var out = ""
        var rest = xml[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            out += rest[..<a.lowerBound]
            rest = rest[b.upperBound...]
        }
        return out + rest
    }

    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// Form encoding for query-API bodies (`Action=...&Version=...`).
    public static func formEncode(_ pairs: [(String, String)]) -> [UInt8] {
        Array(pairs.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&").utf8)
    }
}
