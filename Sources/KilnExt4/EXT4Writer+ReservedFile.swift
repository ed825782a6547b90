import Foundation
import KilnCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Regular files whose blocks are allocated up front and filled later.
extension EXT4Writer {
    /// Creates a regular file of exactly `size` bytes at `path` (replacing what is there) and allocates all its
    /// blocks now, contiguously where the layout allows. Its bytes are written later through the returned
    /// ``EXT4ReservedFile``, possibly from another thread while this writer goes on with other files; blocks
    /// never written read as zeros.
    ///
    /// This is how a content blob can be copied into the filesystem in the same pass that unpacks it.
    public func reserveFile(
        _ path: BytePath, size: UInt64, metadata: EXT4.Metadata? = nil, under root: EXT4.NodeID? = nil
    ) throws -> EXT4ReservedFile {
        guard size <= EXT4.maximumFileSize else { throw Error.fileTooLarge(path: path, size: size) }
        let place = try prepareCreate(path, under: root, mergeDirectory: false)
        let node = Node(kind: .regular, metadata: clamp(metadata ?? EXT4.Metadata(permissions: 0o644, time: options.defaultTime)))
        let ino = try addNode(node, in: place.directory, name: place.name)
        let blockSize = UInt64(EXT4.blockSize)
        var left = (size + blockSize - 1) / blockSize
        var runs: [Range<UInt64>] = []
        while left > 0 {
            let r = try allocateData(left)
            if let last = runs.last, last.upperBound == r.lowerBound {
                runs[runs.count - 1] = last.lowerBound..<r.upperBound
            } else {
                runs.append(r)
            }
            left -= UInt64(r.count)
        }
        nodes[Int(ino)].extents = Self.extents(fromRuns: runs)
        nodes[Int(ino)].dataBlocks = runs.reduce(0) { $0 + UInt64($1.count) }
        nodes[Int(ino)].size = size
        try buildTreeIfNeeded(ino)
        base?.preferred = []
        let fd = dup(file.fd)
        guard fd >= 0 else { throw Error.io(operation: "dup", path: file.path, errno: errno) }
        return EXT4ReservedFile(
            path: path, node: EXT4.NodeID(inode: ino), size: size, imagePath: file.path, fd: fd, observer: file.observer,
            byteRuns: runs.map { (file.offset + $0.lowerBound * blockSize)..<(file.offset + $0.upperBound * blockSize) })
    }
}

/// The blocks of a file made by ``EXT4Writer/reserveFile(_:size:metadata:under:)``: writes land straight in the
/// image file at the file's place. Safe to use from any one thread at a time while the writer works on other
/// files; it must be done before the image is read as a whole.
public final class EXT4ReservedFile: @unchecked Sendable {
    /// The path the file was created at.
    public let path: BytePath
    public let node: EXT4.NodeID
    /// The file's size in bytes.
    public let size: UInt64
    private let imagePath: String
    private let observer: (any ImageWriteObserver)?
    private let fd: Int32
    /// Where the file's blocks are in the image file, in file order.
    private let byteRuns: [Range<UInt64>]

    /// Why a write to a reserved file failed.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case beyondEnd(path: BytePath, offset: UInt64, length: Int, size: UInt64)
        case io(path: BytePath, image: String, errno: Int32)

        public var description: String {
            switch self {
            case .beyondEnd(let p, let o, let n, let s):
                return "\(n) bytes at offset \(o) do not fit in '\(p)', which was reserved with \(s) bytes"
            case .io(let p, let image, let e):
                return "writing '\(p)' into image file '\(image)' failed: \(String(cString: strerror(e)))"
            }
        }
    }

    init(path: BytePath, node: EXT4.NodeID, size: UInt64, imagePath: String, fd: Int32, observer: (any ImageWriteObserver)?,
         byteRuns: [Range<UInt64>]) {
        self.observer = observer
        self.path = path
        self.node = node
        self.size = size
        self.imagePath = imagePath
        self.fd = fd
        self.byteRuns = byteRuns
    }

    deinit { _ = Glibc_or_Darwin_close(fd) }

    /// Writes `bytes` at `offset` in the file; the range must lie within the reserved size.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        guard offset <= size, UInt64(bytes.count) <= size - offset else {
            throw Error.beyondEnd(path: path, offset: offset, length: bytes.count, size: size)
        }
        var done = 0
        var runStart: UInt64 = 0  // the file offset where the current run begins
        for run in byteRuns where done < bytes.count {
            let runLength = UInt64(run.count)
            let position = offset + UInt64(done)
            defer { runStart += runLength }
            guard position < runStart + runLength else { continue }
            let within = position - runStart
            let n = Int(min(UInt64(bytes.count - done), runLength - within))
            let piece = UnsafeRawBufferPointer(start: base + done, count: n)
            if let e = PositionalIO.write(fd, piece, at: run.lowerBound + within) {
                throw Error.io(path: path, image: imagePath, errno: e)
            }
            observer?.imageDidWrite(offset: run.lowerBound + within, bytes: piece)
            done += n
        }
    }
}
