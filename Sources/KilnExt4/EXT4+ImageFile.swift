#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import KilnCore
import Synchronization

extension EXT4 {
    /// Block I/O on the file that holds the filesystem, relative to the filesystem's byte offset in that file.
    final class ImageFile {
        let path: String
        let offset: UInt64
        private(set) var fd: Int32
        /// Told of every change, for whoever follows the image as it is written.
        var observer: (any ImageWriteObserver)?
        /// File data handed over to be written on another thread (``writeBehind(_:atByte:)``).
        private var behind: WriteBehind?

        #if canImport(Glibc)
        typealias FallocateFunction = @convention(c) (Int32, Int32, Int64, Int64) -> Int32
        static var fallocate: FallocateFunction? {
            guard let sym = dlsym(nil, "fallocate") else { return nil }
            return unsafeBitCast(sym, to: FallocateFunction.self)
        }
        #endif

        enum Failure: Error {
            case open(String, Int32)
            case io(String, String, Int32)
        }

        /// Opens `path` for reading, or for writing (created if missing, truncated to `offset` so that every
        /// byte of the filesystem starts out as a hole).
        init(path: String, offset: UInt64, writable: Bool) throws {
            self.path = path
            self.offset = offset
            let flags = writable ? (O_RDWR | O_CREAT | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC)
            let fd = open(path, flags, 0o644)
            guard fd >= 0 else { throw Failure.open(path, errno) }
            self.fd = fd
            if writable {
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw Failure.io("stat", path, errno) }
                if UInt64(st.st_size) > offset, ftruncate(fd, off_t(offset)) != 0 {
                    throw Failure.io("truncate", path, errno)
                }
            }
        }

        deinit {
            behind?.wait()
            if fd >= 0 { _ = Glibc_or_Darwin_close(fd) }
        }

        func close() {
            behind?.wait()
            behind = nil
            if fd >= 0 { _ = Glibc_or_Darwin_close(fd) }
            fd = -1
        }

        /// Hands `bytes` over to be written at `position` on another thread, so that the caller can go on
        /// preparing what comes next while the kernel copies them. Every other operation on the file waits for
        /// what was handed over first, so the file is always seen in the order it was written; a failure is
        /// thrown by the next operation.
        func writeBehind(_ bytes: [UInt8], atByte position: UInt64) throws {
            if behind == nil { behind = WriteBehind(fd: fd, path: path, observer: observer) }
            try behind?.write(bytes, at: offset + position)
        }

        /// A buffer of an earlier run, already written, to fill with the next one instead of allocating (and
        /// faulting in) fresh memory for every run.
        func writtenRun() -> [UInt8]? { behind?.takeWritten() }

        /// Waits for everything handed to ``writeBehind(_:atByte:)``; throws the first failure among it.
        func settle() throws {
            try behind?.settle()
        }

        var byteSize: UInt64 {
            behind?.wait()
            var st = stat()
            guard fstat(fd, &st) == 0 else { return 0 }
            return UInt64(st.st_size)
        }

        func write(_ bytes: UnsafeRawBufferPointer, atByte position: UInt64) throws {
            try settle()
            guard !bytes.isEmpty else { return }
            if let e = PositionalIO.write(fd, bytes, at: offset + position) { throw Failure.io("write", path, e) }
            observer?.imageDidWrite(offset: offset + position, bytes: bytes)
        }

        func write(_ bytes: [UInt8], atBlock block: UInt64) throws {
            try bytes.withUnsafeBytes { try write($0, atByte: block * UInt64(blockSize)) }
        }

        /// Writes a block unless it is all zeros (the image starts as holes, so zeros need no write).
        func writeIfNonZero(_ bytes: [UInt8], atBlock block: UInt64) throws {
            if bytes.isAllZero { return }
            try write(bytes, atBlock: block)
        }

        func read(atByte position: UInt64, count: Int) throws -> [UInt8] {
            try settle()
            // Past the end of the file: zeros.
            var out = [UInt8](repeating: 0, count: count)
            let result = out.withUnsafeMutableBytes { PositionalIO.read(fd, into: $0, at: offset + position) }
            if let e = result.errno { throw Failure.io("read", path, e) }
            return out
        }

        func readBlocks(_ block: UInt64, count: Int = 1) throws -> [UInt8] {
            try read(atByte: block * UInt64(blockSize), count: count * blockSize)
        }

        /// Turns blocks back into zeros: a punched hole where the filesystem supports it, written zeros otherwise.
        func zero(blocks start: UInt64, count: UInt64) throws {
            guard count > 0 else { return }
            try settle()
            let byteStart = offset + start * UInt64(blockSize)
            let byteCount = count * UInt64(blockSize)
            #if canImport(Glibc)
            // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; fallocate is a GNU extension the Glibc module does
            // not export, so it is looked up at run time.
            if let punch = Self.fallocate, punch(fd, 0x02 | 0x01, Int64(byteStart), Int64(byteCount)) == 0 {
                observer?.imageDidChange(offset: byteStart, count: byteCount)
                return
            }
            #endif
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            var done: UInt64 = 0
            while done < byteCount {
                let n = Int(min(UInt64(chunk.count), byteCount - done))
                try chunk.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), atByte: start * UInt64(blockSize) + done) }
                done += UInt64(n)
            }
        }

        /// Grows the file so that it covers `blocks` filesystem blocks (never shrinks it).
        func extend(toBlocks blocks: UInt64) throws {
            try settle()
            let want = offset + blocks * UInt64(blockSize)
            if byteSize < want, ftruncate(fd, off_t(want)) != 0 {
                throw Failure.io("extend", path, errno)
            }
        }
    }
}

/// Writes buffers on a thread of its own, in the order they were handed over, a few at a time.
final class WriteBehind: @unchecked Sendable {
    private let fd: Int32
    private let path: String
    private let observer: (any ImageWriteObserver)?
    private let queue = DispatchQueue(label: "kiln.ext4.write-behind")
    /// Buffers in flight: enough to keep the kernel busy, few enough to bound memory.
    private let inFlight = DispatchSemaphore(value: 3)
    /// The first failure: written on `queue`, read by the next write (which then refuses at once) or wait.
    private let failure = Mutex<EXT4.ImageFile.Failure?>(nil)
    /// Buffers written and handed back for reuse, each the only reference to its storage.
    private let written = Mutex<[[UInt8]]>([])

    /// Holds a run while it is written, so that it can give up its buffer without a second reference left behind.
    private final class Run: @unchecked Sendable {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
    }

    init(fd: Int32, path: String, observer: (any ImageWriteObserver)?) {
        self.fd = fd
        self.path = path
        self.observer = observer
    }

    func write(_ bytes: [UInt8], at position: UInt64) throws {
        if let failed = failure.withLock({ $0 }) { throw failed }
        inFlight.wait()
        let run = Run(bytes)
        queue.async { [self] in
            defer { inFlight.signal() }
            guard failure.withLock({ $0 == nil }) else { return }
            let failed = run.bytes.withUnsafeBytes { PositionalIO.write(fd, $0, at: position) }
            if let failed {
                failure.withLock { $0 = .io("write", path, failed) }
                return
            }
            run.bytes.withUnsafeBytes { observer?.imageDidWrite(offset: position, bytes: $0) }
            written.withLock { spare in
                // One is enough: the writer takes it for the run it starts next. More would only hold memory.
                if spare.isEmpty { spare.append(run.bytes) }
                run.bytes = []
            }
        }
    }

    /// A written buffer to reuse, if one is back.
    func takeWritten() -> [UInt8]? { written.withLock { $0.popLast() } }

    /// Waits until everything handed over is written.
    func wait() { queue.sync {} }

    /// Waits, then throws the first failure.
    func settle() throws {
        wait()
        if let failed = failure.withLock({ $0 }) { throw failed }
    }
}

@inline(__always) func Glibc_or_Darwin_close(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
