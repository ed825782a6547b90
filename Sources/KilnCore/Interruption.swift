#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Files a command is writing that must not outlive it when it is interrupted.
///
/// Libraries register the partial files they create; the command line installs ``installHandlers()``, so that
/// SIGINT and SIGTERM remove them and exit with 130 and 143 (128 + the signal), as shells report. A `kill -9`
/// cannot be caught: outputs are therefore written under partial names and renamed only when complete (see
/// ``commit(_:)``), so what such a kill leaves never looks complete.
public enum Interruption {
    private static let lock = Lock()
    nonisolated(unsafe) private static var partial: Set<String> = []
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Removes `path` if the process is interrupted before ``release(_:)``.
    public static func protect(_ path: String) {
        lock.withLock { _ = partial.insert(path) }
    }

    /// `path` is complete (or gone): leave it alone from now on.
    public static func release(_ path: String) {
        lock.withLock { _ = partial.remove(path) }
    }

    /// Runs `body` (renames that make outputs final) so that an interruption waits for it: the outputs are either
    /// all still partial (and removed) or all final.
    public static func commit<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Removes every registered file now (the signal handlers call this).
    public static func removePartialFiles() {
        lock.withLock {
            for path in partial { unlink(path) }
            partial.removeAll()
        }
    }

    /// SIGINT and SIGTERM remove the partial files and exit with 128 + the signal.
    public static func installHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                removePartialFiles()
                _exit(128 + sig)
            }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }
}

