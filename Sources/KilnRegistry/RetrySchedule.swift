/// The waits between the attempts of one request and when to give up: every retry loop of the client (requests,
/// small documents, resumed blobs) counts its failures here, so they all wait and give up alike.
struct RetrySchedule: Sendable {
    let delays: [Double]
    let host: String
    /// What is being fetched, for the final error.
    let what: String
    private(set) var failures = 0

    init(delays: [Double], host: String, what: String) {
        self.delays = delays
        self.host = host
        self.what = what
    }

    /// Records a failure, then waits before the next attempt (`retryAfter`, capped at a minute, when the
    /// answer asked for a wait), or throws ``RegistryError/unavailable(host:detail:)`` once every wait is used.
    mutating func failed(_ failure: String, retryAfter: Double? = nil, context: String = "") async throws {
        failures += 1
        guard failures <= delays.count else {
            throw RegistryError.unavailable(host: host, detail: "\(what): \(failure) (after \(failures) attempts\(context))")
        }
        let wait = retryAfter.map { min(60, $0) } ?? delays[failures - 1]
        try await Task.sleep(nanoseconds: UInt64(max(0, wait) * 1e9))
    }
}
