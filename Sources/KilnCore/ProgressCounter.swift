import Dispatch

/// How far a long operation has got, shared between the thread doing it and one that shows it.
///
/// The work adds bytes as they pass and names what it is doing; a display reads a ``Snapshot`` whenever it
/// likes. Nothing here formats or prints: that is the command line's.
public final class ProgressCounter: @unchecked Sendable {
    /// What the counter holds at one moment.
    public struct Snapshot: Sendable, Hashable {
        /// The phase (`layers`, `filesystem`, `manifest`...).
        public var phase: String
        /// What is being worked on (e.g. `app:v1 layer 2/3`).
        public var item: String
        public var doneBytes: Int64
        /// 0 when unknown.
        public var totalBytes: Int64
        /// True once the work is over.
        public var finished: Bool
        /// When the phase started (`DispatchTime` uptime, nanoseconds): rates and ETAs are the phase's own.
        public var phaseStartedNanoseconds: UInt64
    }

    /// Downloads in flight, each shown on its own line by a terminal display.
    public let transfers = TransferBoard()

    private let lock = Lock()
    private var state = Snapshot(phase: "", item: "", doneBytes: 0, totalBytes: 0, finished: false, phaseStartedNanoseconds: 0)

    public init() {}

    public var snapshot: Snapshot { lock.withLock { state } }

    /// Starts a phase of `totalBytes` (0: unknown), counting from zero; `item` is kept unless given.
    public func start(phase: String, totalBytes: Int64 = 0, item: String? = nil) {
        lock.withLock {
            state.phase = phase
            if let item { state.item = item }
            state.doneBytes = 0
            state.totalBytes = totalBytes
            state.phaseStartedNanoseconds = DispatchTime.now().uptimeNanoseconds
        }
    }

    public func setItem(_ item: String) { lock.withLock { state.item = item } }

    public func add(_ bytes: Int) { lock.withLock { state.doneBytes += Int64(bytes) } }

    /// For work that knows its own totals (blocks acknowledged of blocks to send).
    public func set(doneBytes: Int64, totalBytes: Int64) {
        lock.withLock {
            state.doneBytes = doneBytes
            state.totalBytes = totalBytes
        }
    }

    public func finish() { lock.withLock { state.finished = true } }
}
