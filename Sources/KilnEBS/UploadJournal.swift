import Foundation
import KilnAWS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The record of an upload in progress, beside the manifest: which snapshot it goes to and which blocks the
/// service acknowledged. Appended to as blocks are acknowledged, so a killed upload resumes where it stopped.
///
/// Format: a first line of JSON (``Header``), then one line per acknowledged block (`+INDEX`), and `completed`
/// once CompleteSnapshot was accepted. A last line without its newline (a kill mid-write) is ignored.
public struct UploadJournal: Sendable, Hashable {
    /// The journal's file name beside the manifest.
    public static let fileName = "manifest.upload-journal"
    public static let format = "kiln-upload-journal-v1"

    /// What the upload is: the snapshot and the parameters it was started with.
    public struct Header: Sendable, Hashable, Codable {
        public var format: String
        public var region: String
        public var snapshotId: String
        public var clientToken: String
        /// The LINEAR checksum the upload completes with.
        public var checksum: String
        public var changedBlocks: UInt64
        public var volumeSizeGiB: Int
        public var encrypted: Bool
        /// Bumped each time an upload starts over with a new snapshot, so its ClientToken differs.
        public var generation: Int

        public init(region: String, snapshotId: String, clientToken: String, checksum: String, changedBlocks: UInt64, volumeSizeGiB: Int,
                    encrypted: Bool, generation: Int) {
            self.format = UploadJournal.format
            self.region = region
            self.snapshotId = snapshotId
            self.clientToken = clientToken
            self.checksum = checksum
            self.changedBlocks = changedBlocks
            self.volumeSizeGiB = volumeSizeGiB
            self.encrypted = encrypted
            self.generation = generation
        }
    }

    public var header: Header
    public var acknowledged: Set<UInt64>
    public var completed: Bool

    /// Errors reading or writing a journal.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case unreadable(String, String)
        case invalid(String, String)
        case io(String, String)

        public var description: String {
            switch self {
            case .unreadable(let p, let why): return "cannot read upload journal '\(p)': \(why)"
            case .invalid(let p, let why): return "upload journal '\(p)' is damaged: \(why); delete it to start the upload over"
            case .io(let p, let why): return "cannot write upload journal '\(p)': \(why)"
            }
        }
    }

    /// The journal at `path`, or nil when there is none.
    public static func load(path: String) throws -> UploadJournal? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw Error.unreadable(path, error.localizedDescription) }
        var lines = data.split(separator: 0x0a, omittingEmptySubsequences: false)
        // The part after the last newline is empty, or a line cut short by a kill.
        lines.removeLast()
        guard let first = lines.first else { throw Error.invalid(path, "no header line") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(first)) } catch { throw Error.invalid(path, "the header is not JSON") }
        guard header.format == format else { throw Error.invalid(path, "format '\(header.format)' is not \(format)") }
        var acknowledged = Set<UInt64>()
        var completed = false
        for (n, line) in lines.dropFirst().enumerated() {
            if line.first == UInt8(ascii: "+"), let index = UInt64(String(decoding: line.dropFirst(), as: UTF8.self)) {
                acknowledged.insert(index)
            } else if String(decoding: line, as: UTF8.self) == "completed" {
                completed = true
            } else {
                throw Error.invalid(path, "line \(n + 2) is neither +INDEX nor completed")
            }
        }
        return UploadJournal(header: header, acknowledged: acknowledged, completed: completed)
    }

    /// Removes the journal (after the manifest records the snapshot).
    public static func remove(path: String) {
        unlink(path)
    }
}

/// Appends to a journal; each record is one `write` on an `O_APPEND` descriptor, so a kill leaves whole lines.
public final class UploadJournalWriter: @unchecked Sendable {
    let fd: Int32
    let path: String
    let lock = NSLock()

    /// Creates a new journal with `header` (replacing any) or, with `header` nil, opens the existing one.
    public init(path: String, header: UploadJournal.Header?) throws {
        self.path = path
        if let header {
            let temporary = path + ".tmp-\(getpid())"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var line = (try? encoder.encode(header)) ?? Data()
            line.append(0x0a)
            do { try line.write(to: URL(fileURLWithPath: temporary)) } catch { throw UploadJournal.Error.io(path, error.localizedDescription) }
            guard rename(temporary, path) == 0 else { throw UploadJournal.Error.io(path, String(cString: strerror(errno))) }
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw UploadJournal.Error.io(path, String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    func append(_ text: String) throws {
        let bytes = Array(text.utf8)
        lock.lock()
        defer { lock.unlock() }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw UploadJournal.Error.io(path, n < 0 ? String(cString: strerror(errno)) : "short write") }
    }

    /// Records that block `index` was acknowledged.
    public func acknowledge(_ index: UInt64) throws { try append("+\(index)\n") }

    /// Records that CompleteSnapshot was accepted, and flushes.
    public func markCompleted() throws {
        try append("completed\n")
        fsync(fd)
    }

    public func sync() { fsync(fd) }
}
