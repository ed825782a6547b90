import CArchive
import Foundation
import KilnCore

/// Reads tar entries with libarchive from the decompressed bytes of a ``LayerStream`` (no second decompression:
/// libarchive sees a plain tar).
final class TarReader {
    private let archive: OpaquePointer
    private let stream: LayerStream
    private var callbackError: Swift.Error?
    /// The stream ended right after the last entry's data, without the padding and end-of-archive blocks.
    /// Go's archive/tar (containerd, umoci) accepts such tars, and some producers write them.
    private(set) var missingEndOfArchive = false
    /// libarchive asked for more and was told the stream had ended.
    fileprivate(set) var sawEndOfStream = false
    /// Offset in the tar stream where the current entry's data ends (nil when unknown, e.g. sparse entries).
    private var dataEnd: Int64? = nil
    private let zeroPadding: UnsafeMutableRawBufferPointer = {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 64)
        b.initializeMemory(as: UInt8.self, repeating: 0)
        return b
    }()

    /// libarchive refused the tar; its message is kept for the user, never read to classify the failure.
    enum Failure: KilnError {
        case tar(String)
        /// A header libarchive reads but that no Linux filesystem can hold as it says (containerd refuses it).
        case refused(entry: BytePath, String)

        var exitStatus: ExitStatus { .verificationFailed }

        var isRefusal: Bool {
            if case .refused = self { return true }
            return false
        }

        var description: String {
            switch self {
            case .tar(let m): return m
            case .refused(let entry, let why): return "tar entry '\(entry)': \(why)"
            }
        }
    }

    init(stream: LayerStream) throws {
        guard let a = archive_read_new() else { throw Failure.tar("cannot allocate a tar reader") }
        archive = a
        self.stream = stream
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        let client = Unmanaged.passUnretained(self).toOpaque()
        let rc = archive_read_open(a, client, nil, { _, client, buffer in
            guard let client, let buffer else { return -1 }
            let reader = Unmanaged<TarReader>.fromOpaque(client).takeUnretainedValue()
            do {
                let chunk = try reader.stream.next()
                if chunk.isEmpty, let pad = reader.paddingToSupply() {
                    buffer.pointee = UnsafeRawPointer(reader.zeroPadding.baseAddress)
                    return pad
                }
                if chunk.isEmpty { reader.sawEndOfStream = true }
                buffer.pointee = chunk.baseAddress
                return chunk.count
            } catch {
                reader.callbackError = error
                return -1
            }
        }, nil)
        if rc != ARCHIVE_OK {
            // Opening an empty stream is not an error for a layer: it has no entries.
            if let e = callbackError { throw e }
        }
    }

    deinit {
        archive_read_free(archive)
        zeroPadding.deallocate()
    }

    /// When the stream ends exactly where the last entry's data ends but off a 512-byte boundary, the tar
    /// lacks its padding: supply the zeros (not part of the diffID) so the archive reads to its end.
    private func paddingToSupply() -> Int? {
        let delivered = stream.uncompressedBytes
        guard !missingEndOfArchive, !stream.failed, delivered % 512 != 0, dataEnd == delivered else { return nil }
        missingEndOfArchive = true
        return Int(512 - delivered % 512)
    }

    private func errorText() -> String {
        if let e = archive_error_string(archive) { return String(cString: e) }
        return "unreadable tar data"
    }

    /// The next entry, or nil at the end of the archive.
    func nextEntry() throws -> (TarEntry, OpaquePointer)? {
        var entryPointer: OpaquePointer?
        let rc = archive_read_next_header(archive, &entryPointer)
        if let e = callbackError { throw e }
        if rc == ARCHIVE_EOF {
            return nil
        }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = entryPointer else {
            throw Failure.tar(errorText())
        }
        let described = Self.describe(entry)
        let uid = archive_entry_uid(entry), gid = archive_entry_gid(entry)
        guard (0...Int64(UInt32.max)).contains(Int64(uid)), (0...Int64(UInt32.max)).contains(Int64(gid)) else {
            throw Failure.refused(entry: described.path, "owner \(uid):\(gid) does not fit in 32 bits")
        }
        guard archive_entry_size(entry) >= 0 else { throw Failure.refused(entry: described.path, "negative size") }
        dataEnd = described.isSparse ? nil : Int64(archive_filter_bytes(archive, 0)) + described.size
        return (described, entry)
    }

    /// Hands the current entry's data to `body` block by block, with each block's offset in the file
    /// (offsets skip over holes in sparse files).
    func readData(_ body: (UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let rc = archive_read_data_block(archive, &buffer, &size, &offset)
            if let e = callbackError { throw e }
            if rc == ARCHIVE_EOF { return }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else { throw Failure.tar(errorText()) }
            if size > 0, let buffer {
                try body(UnsafeRawBufferPointer(start: buffer, count: size), Int64(offset))
            }
        }
    }

    /// The bytes of a name exactly as the archive holds them. The locale-converted form libarchive offers as
    /// `_utf8` would fail or rewrite names that are not UTF-8; the raw form keeps every byte.
    static func bytes(_ raw: UnsafePointer<CChar>?) -> BytePath? {
        guard let raw else { return nil }
        return BytePath(bytes: UnsafeRawBufferPointer(start: raw, count: strlen(raw)))
    }

    static func describe(_ e: OpaquePointer) -> TarEntry {
        let path = bytes(archive_entry_pathname(e)) ?? BytePath([])
        let hardlink = bytes(archive_entry_hardlink(e))
        let symlink = bytes(archive_entry_symlink(e))
        let type = archive_entry_filetype(e)
        var kind: TarEntry.Kind
        // libarchive's AE_IF* values are the POSIX S_IF* values.
        switch UInt32(type) & 0o170000 {
        case 0o040000: kind = .directory
        case 0o120000: kind = .symlink
        case 0o020000: kind = .characterDevice
        case 0o060000: kind = .blockDevice
        case 0o010000: kind = .fifo
        case 0o140000: kind = .socket
        default: kind = .file
        }
        if hardlink != nil && kind == .file { kind = .hardlink }
        var xattrs: [(String, [UInt8])] = []
        if archive_entry_xattr_reset(e) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK {
                guard let name else { continue }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                xattrs.append((String(cString: name), bytes))
            }
        }
        func time(_ s: Int, _ ns: Int) -> TarEntry.Time { TarEntry.Time(seconds: Int64(s), nanoseconds: Int32(clamping: ns)) }
        return TarEntry(
            path: path,
            kind: kind,
            permissions: UInt32(archive_entry_perm(e)) & 0o7777,
            uid: UInt32(truncatingIfNeeded: archive_entry_uid(e)),
            gid: UInt32(truncatingIfNeeded: archive_entry_gid(e)),
            size: archive_entry_size_is_set(e) != 0 ? Int64(archive_entry_size(e)) : 0,
            modificationTime: time(archive_entry_mtime(e), archive_entry_mtime_nsec(e)),
            accessTime: archive_entry_atime_is_set(e) != 0 ? time(archive_entry_atime(e), archive_entry_atime_nsec(e)) : nil,
            changeTime: archive_entry_ctime_is_set(e) != 0 ? time(archive_entry_ctime(e), archive_entry_ctime_nsec(e)) : nil,
            linkTarget: kind == .hardlink ? hardlink : (kind == .symlink ? symlink : nil),
            deviceMajor: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(e)),
            deviceMinor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(e)),
            xattrs: xattrs,
            isSparse: archive_entry_sparse_count(e) > 0
        )
    }
}
