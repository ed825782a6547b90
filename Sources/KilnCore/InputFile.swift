#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small file kiln reads whole as input (a manifest, a placement record, a block digest sidecar), opened so that
/// what it names cannot make the read endless or huge.
///
/// It must be a regular file: a FIFO would block forever and `/dev/zero` would never end, so both are refused at
/// open (which never blocks: `O_NONBLOCK`). Its length is known before anything is read, so a budget is checked
/// before memory is set aside, and a file far longer than what the filesystem stores for it (holes, which kiln
/// never writes) is refused the same way.
public struct InputFile: ~Copyable {
    /// Why a file cannot be read. Each reader wraps it in its own typed error, naming the kind of file.
    public enum Failure: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        case missing
        /// `a directory`, `a special file` or `a symbolic link` (when links are refused).
        case notARegularFile(String)
        /// Its length is past the reader's budget.
        case tooLarge(length: UInt64, limit: UInt64)
        /// Its length is far more than the bytes stored for it.
        case sparse(length: UInt64, stored: UInt64)
        /// The system's reason, from errno.
        case unreadable(String)
        /// It ended or grew while it was read.
        case changed

        /// What is wrong with the file, to follow its name: `'manifest.layout' is a special file, not a regular file`.
        public var description: String {
            switch self {
            case .missing: return "does not exist"
            case .notARegularFile(let what): return "is \(what), not a regular file"
            case .tooLarge(let length, let limit): return "is \(length) bytes, past the \(limit)-byte budget for it"
            case .sparse(let length, let stored):
                return "is \(length) bytes long but only \(stored) bytes of it are stored: it has holes, and kiln writes none"
            case .unreadable(let why): return "cannot be read: \(why)"
            case .changed: return "changed while it was read"
            }
        }
    }

    private let descriptor: Int32
    /// The file's length when it was opened.
    public let length: UInt64
    /// Bytes the filesystem stores for it (allocated blocks).
    public let stored: UInt64

    /// Opens `path` for reading; with `followSymlink: false` a symbolic link is refused as such.
    public init(path: String, followSymlink: Bool = true) throws(Failure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followSymlink ? 0 : O_NOFOLLOW))
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw .missing }
            if e == ELOOP, !followSymlink { throw .notARegularFile("a symbolic link") }
            throw .unreadable(String(cString: strerror(e)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .unreadable(String(cString: strerror(e)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .notARegularFile(st.st_mode & S_IFMT == S_IFDIR ? "a directory" : "a special file")
        }
        descriptor = fd
        length = UInt64(max(0, st.st_size))
        stored = UInt64(max(0, st.st_blocks)) &* 512
    }

    deinit { close(descriptor) }

    /// Throws unless the whole file fits `limit` bytes and most of it is stored (files over 1 MiB that store less
    /// than half their length have holes).
    public func checkBudget(limit: UInt64) throws(Failure) {
        guard length <= limit, length <= UInt64(Int.max) else { throw .tooLarge(length: length, limit: limit) }
        if length > 1 << 20, stored < length / 2 { throw .sparse(length: length, stored: stored) }
    }

    /// The whole file, after ``checkBudget(limit:)``.
    public func readAll(limit: UInt64) throws(Failure) -> [UInt8] {
        try checkBudget(limit: limit)
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let got = try read(into: &bytes, at: 0)
        guard got == bytes.count else { throw .changed }
        // One more byte would mean the file grew after it was measured: what was read is not the file.
        var probe: UInt8 = 0
        guard pread(descriptor, &probe, 1, off_t(length)) <= 0 else { throw .changed }
        return bytes
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    public func read(into buffer: inout [UInt8], at offset: UInt64) throws(Failure) -> Int {
        let result = buffer.withUnsafeMutableBytes { PositionalIO.read(descriptor, into: $0, at: offset) }
        if let e = result.errno { throw .unreadable(String(cString: strerror(e))) }
        return result.count
    }
}
