import Dispatch

/// The downloads in flight (a registry's layer blobs, several at once), each with its own bytes and rate, for a
/// display to show one line per download beside the overall figures of a ``ProgressCounter``.
///
/// Fetching tasks call ``begin(_:totalBytes:)``, ``add(_:bytes:)`` and ``end(_:)``; a display reads
/// ``active``. Nothing here formats or prints.
public final class TransferBoard: @unchecked Sendable {
    /// One download as it stands.
    public struct Transfer: Sendable, Hashable {
        /// Identifies the download between calls.
        public struct ID: Sendable, Hashable {
            let value: Int
        }

        public var id: ID
        /// What is fetched (e.g. `docker.io/library/python layer sha256:4d03f256`).
        public var label: String
        /// Bytes received so far, across resumed requests.
        public var doneBytes: Int64
        /// 0 when unknown.
        public var totalBytes: Int64
        /// When it began (`DispatchTime` uptime, nanoseconds).
        public var startedNanoseconds: UInt64
    }

    private let lock = Lock()
    private var next = 0
    private var transfers: [Transfer] = []

    public init() {}

    /// Registers a download and returns its identity.
    public func begin(_ label: String, totalBytes: Int64) -> Transfer.ID {
        lock.withLock {
            let id = Transfer.ID(value: next)
            next += 1
            transfers.append(Transfer(id: id, label: label, doneBytes: 0, totalBytes: totalBytes,
                                      startedNanoseconds: DispatchTime.now().uptimeNanoseconds))
            return id
        }
    }

    public func add(_ id: Transfer.ID, bytes: Int) {
        lock.withLock {
            if let i = transfers.firstIndex(where: { $0.id == id }) { transfers[i].doneBytes += Int64(bytes) }
        }
    }

    /// The download is over, whole or not: it leaves ``active``.
    public func end(_ id: Transfer.ID) {
        lock.withLock {
            guard let i = transfers.firstIndex(where: { $0.id == id }) else { return }
            transfers.remove(at: i)
        }
    }

    /// The downloads in flight, oldest first.
    public var active: [Transfer] { lock.withLock { transfers } }
}
