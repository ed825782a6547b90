#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `pread` and `pwrite` carried through to the end: the kernel may move fewer bytes than asked, or be interrupted
/// by a signal, and every caller must go on from where it stopped. Callers turn the errno into their own typed
/// error, naming their file.
public enum PositionalIO {
    /// What a read moved: the bytes read, and the errno that stopped it early, if one did. Fewer bytes than asked
    /// with no errno means the file ended.
    public struct ReadResult: Sendable, Equatable {
        public var count: Int
        public var errno: Int32?
    }

    /// Fills `buffer` from `offset` until it is full, the file ends, or a read fails.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> ReadResult {
        guard let base = buffer.baseAddress else { return ReadResult(count: 0, errno: nil) }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return ReadResult(count: done, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return ReadResult(count: done, errno: nil)
    }

    /// Writes all of `bytes` at `offset`; the errno of the write that failed, or nil.
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> Int32? {
        guard let base = bytes.baseAddress else { return nil }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return nil
    }
}
