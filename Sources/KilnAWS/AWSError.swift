import Foundation

/// A failed AWS call, classified for retrying.
public struct AWSError: Swift.Error, Sendable, CustomStringConvertible {
    /// What kind of failure it is, and so whether a retry may help.
    public enum Kind: String, Sendable {
        /// Throttled, a 5xx, a reset, a timeout: retried with backoff.
        case transient
        /// A brand-new snapshot not visible yet (404): retried for a while.
        case notFoundYet
        /// Access denied, validation, quota, conflict: stops at once.
        case fatal
        /// No credentials, no region, a bad endpoint: stops at once.
        case configuration
    }

    public var kind: Kind
    /// The operation, e.g. `PutSnapshotBlock`.
    public var operation: String
    /// The HTTP status, when there was a response.
    public var status: Int?
    /// The API's error code, e.g. `AccessDeniedException`.
    public var code: String?
    /// The API's message, or what went wrong on the connection.
    public var message: String

    public init(kind: Kind, operation: String, status: Int? = nil, code: String? = nil, message: String) {
        self.kind = kind
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
    }

    public var isRetryable: Bool { kind == .transient || kind == .notFoundYet }

    public var description: String {
        var head = operation.lowercased() == operation ? operation : "\(operation)"
        if let status { head += " answered \(status)" } else { head += " failed" }
        if let code { head += " \(code)" }
        return message.isEmpty ? head : "\(head): \(message)"
    }

    /// Classifies an error response by its status and code, as the SDKs' standard retry mode does.
    public static func classify(status: Int, code: String?, message: String, operation: String) -> AWSError {
        let c = code ?? ""
        let throttling: Set<String> = [
            "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
            "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
            "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
            "EC2ThrottledException", "ConcurrentLimitExceededException", "InternalServerException", "InternalError",
            "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "IDPCommunicationError",
        ]
        if throttling.contains(c) || status == 429 || status >= 500 || status == 408 {
            return AWSError(kind: .transient, operation: operation, status: status, code: code, message: message)
        }
        // "Failed to read block data" is the service losing the upload body: the block is sent again.
        if message.contains("Failed to read block data") {
            return AWSError(kind: .transient, operation: operation, status: status, code: code, message: message)
        }
        if status == 404 && (c == "ResourceNotFoundException" || c.isEmpty) {
            return AWSError(kind: .notFoundYet, operation: operation, status: status, code: code, message: message)
        }
        return AWSError(kind: .fatal, operation: operation, status: status, code: code, message: message)
    }
}
