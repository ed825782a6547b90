import Foundation
import KilnCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes an image file durable without a long wait at the end: ranges known to be final are handed to the
/// kernel's writeback as they become final (`sync_file_range`, which starts writing and does not wait), so that
/// the closing ``makeDurable()`` finds little left to write, instead of every dirty page of a multi-GB image.
public final class Writeback: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    // Guarded by `lock`: the span of final ranges not yet handed over.
    private var low = UInt64.max
    private var high: UInt64 = 0
    private var gathered: UInt64 = 0

    /// Ranges are handed over once this many bytes have gathered.
    public static let batchBytes: UInt64 = 16 << 20

    /// Why the image could not be made durable.
    public struct Error: KilnError {
        public var path: String
        public var errno: Int32
        public var exitStatus: ExitStatus { .environment }
        public var description: String { "cannot make '\(path)' durable (fdatasync): \(String(cString: strerror(errno)))" }
    }

    /// Opens `path` (which must exist) for writeback; nil when it cannot be opened, which only loses the head start.
    public init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// `range` (bytes of the file) will not change again: start writing it out soon.
    public func isFinal(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var span: Range<UInt64>? = nil
        lock.withLock {
            low = min(low, range.lowerBound)
            high = max(high, range.upperBound)
            gathered += UInt64(range.count)
            if gathered >= Self.batchBytes {
                span = low..<high
                low = .max
                high = 0
                gathered = 0
            }
        }
        if let span { Self.startWriting(fd, span) }
    }

    /// Waits until every byte of the file is on stable storage.
    public func makeDurable() throws(Error) {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw Error(path: path, errno: errno)
        }
    }

    #if canImport(Glibc)
    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    // sync_file_range is a GNU extension the Glibc module does not export: looked up at run time.
    private static let syncFileRange: SyncFileRange? = {
        guard let sym = dlsym(nil, "sync_file_range") else { return nil }
        return unsafeBitCast(sym, to: SyncFileRange.self)
    }()
    #endif

    private static func startWriting(_ fd: Int32, _ span: Range<UInt64>) {
        #if canImport(Glibc)
        // SYNC_FILE_RANGE_WRITE: start writeback of the dirty pages in the range, without waiting for it.
        _ = syncFileRange?(fd, Int64(span.lowerBound), Int64(span.count), 2)
        #endif
    }
}
