#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KilnCore

/// A read-only image file shared by worker threads: `pread` keeps no file position, so one descriptor serves all.
public final class ImageFile: @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let fd: Int32

    /// Errors raised while reading an image file.
    public enum Error: KilnError {
        case open(String, Int32)
        case notRegular(String)
        case read(String, offset: UInt64, Int32)
        case shrank(String, offset: UInt64)

        /// A path that is not there or not a file is the user's to fix; failing to read one is the system's.
        public var exitStatus: ExitStatus {
            switch self {
            case .open(_, let e) where e == ENOENT || e == ENOTDIR: return .input
            case .notRegular: return .input
            default: return .environment
            }
        }

        public var description: String {
            switch self {
            case .open(let p, let e): return "cannot open '\(p)': \(String(cString: strerror(e)))"
            case .notRegular(let p): return "'\(p)' is not a regular file"
            case .read(let p, let o, let e): return "cannot read '\(p)' at byte \(o): \(String(cString: strerror(e)))"
            case .shrank(let p, let o): return "'\(p)' ended early at byte \(o): was it changed while being read?"
            }
        }
    }

    public init(path: String) throws(Error) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Error.open(path, errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw Error.open(path, e)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw Error.notRegular(path)
        }
        self.fd = fd
        self.path = path
        self.size = UInt64(st.st_size)
    }

    /// Whether ``withBytes(at:count:scratch:_:)`` maps pages instead of copying them; see ``mapPages()``.
    public private(set) var mapsPages = false

    deinit { close(fd) }

    /// Lets ``withBytes(at:count:scratch:_:)`` hash the file's pages in place through short-lived read-only
    /// mappings instead of copying them out. Only for files nothing truncates while they are read: a mapped page
    /// past a new end of file faults.
    public func mapPages() { mapsPages = true }

    /// Calls `body` with `count` bytes from `offset`: the file's own pages, mapped for the call, when pages are
    /// mapped and the range lies within the file; otherwise a copy read into `scratch` (zeros past the end of
    /// the file, as ``read(into:at:)``). Mappings last one call, so memory stays that of one range per thread.
    public func withBytes<T>(at offset: UInt64, count: Int, scratch: UnsafeMutableRawBufferPointer,
                      _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let page = UInt64(4096)
        if mapsPages, count > 0, offset % page == 0, offset <= size, UInt64(count) <= size - offset,
           let p = mmap(nil, count, PROT_READ, MAP_SHARED, fd, off_t(offset)), p != MAP_FAILED {
            defer { munmap(p, count) }
            return try body(UnsafeRawBufferPointer(start: p, count: count))
        }
        let region = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count])
        try read(into: region, at: offset)
        return try body(UnsafeRawBufferPointer(region))
    }

    /// Fills `buffer` from `offset`; bytes past the end of the file (a partial last block) read as zeros.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Error) {
        guard let base = buffer.baseAddress else { return }
        let wanted = offset >= size ? 0 : Int(min(UInt64(buffer.count), size - offset))
        let result = PositionalIO.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), at: offset)
        if let e = result.errno { throw Error.read(path, offset: offset + UInt64(result.count), e) }
        if result.count < wanted { throw Error.shrank(path, offset: offset + UInt64(result.count)) }
        if wanted < buffer.count { memset(base + wanted, 0, buffer.count - wanted) }
    }

    /// `count` bytes from `offset` (zeros past the end of the file), as a new array.
    public func bytes(at offset: UInt64, count: Int) throws(Error) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { buffer.deallocate() }
        let region = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
        try read(into: region, at: offset)
        return Array(UnsafeRawBufferPointer(region))
    }

    /// The runs of `blockSize` blocks that hold data, per `SEEK_DATA`/`SEEK_HOLE`: every other block lies in a
    /// hole and reads as zeros. Without hole support (the call fails) the whole file is one run.
    public func dataBlockRuns(blockSize: UInt64, useHoles: Bool = true) -> [Range<UInt64>] {
        let blocks = (size + blockSize - 1) / blockSize
        guard blocks > 0 else { return [] }
        guard useHoles else { return [0..<blocks] }
        var runs: [Range<UInt64>] = []
        var offset: UInt64 = 0
        while offset < size {
            let data = lseek(fd, off_t(offset), Self.seekData)
            if data < 0 {
                // ENXIO: no data from here to the end. Anything else: holes are not supported; read everything.
                if errno == ENXIO { break }
                return [0..<blocks]
            }
            var hole = lseek(fd, data, Self.seekHole)
            if hole < 0 { hole = off_t(size) }
            let first = UInt64(data) / blockSize
            let end = min(blocks, (UInt64(hole) + blockSize - 1) / blockSize)
            if let last = runs.last, last.upperBound >= first {
                runs[runs.count - 1] = last.lowerBound..<max(last.upperBound, end)
            } else if first < end {
                runs.append(first..<end)
            }
            offset = UInt64(hole)
        }
        return runs
    }

    #if os(Linux)
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4
    #else
    private static let seekData: Int32 = 4
    private static let seekHole: Int32 = 3
    #endif
}
