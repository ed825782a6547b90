import Foundation
import KilnCore

/// An index of the members of an uncompressed tar file, so blobs inside it can be read in place
/// (random access, no extraction). Handles ustar, GNU long names and pax path/size records.
///
/// Member names are the bytes the archive holds: two names that differ only in bytes that are not UTF-8 stay two
/// members, and a name looked up (UTF-8, from a JSON document) finds only the member spelled with exactly its bytes.
public struct TarIndex: Sendable {
    public let path: String
    /// Member name (without a leading `./` or `/`) -> data range.
    public let members: [BytePath: BlobLocation]

    public enum Error: Swift.Error, CustomStringConvertible {
        case notATar(String, offset: Int64)
        case compressed(String, Compression)
        case truncated(String, member: String)
        case badSize(String, member: String, offset: Int64, detail: String)

        public var description: String {
            switch self {
            case .notATar(let p, let off): return "\(p) is not a tar archive (bad header at byte \(off))"
            case .compressed(let p, let c):
                return "\(p) is a \(c)-compressed archive; decompress it first (e.g. `\(c == .gzip ? "gunzip" : "unzstd") -k`)"
            case .truncated(let p, let m): return "\(p) is truncated inside member '\(m)'"
            case .badSize(let p, let m, let off, let detail):
                return "\(p): member '\(m)' (header at byte \(off)): \(detail)"
            }
        }
    }

    /// Reads every header of the tar at `path`.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError.io(path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let fileSize = Int64(st.st_size)
        var header = [UInt8](repeating: 0, count: 512)
        var members: [BytePath: BlobLocation] = [:]
        var position: Int64 = 0
        var longName: BytePath? = nil
        var paxPath: BytePath? = nil
        var paxSize: Int64? = nil
        var first = true

        while position + 512 <= fileSize {
            let read = header.withUnsafeMutableBytes { PositionalIO.read(fd, into: $0, at: UInt64(position)) }
            // Short of a header the length promised: the file shrank while it was indexed.
            guard read.count == 512 else { throw BlobError.io(path, errno: read.errno ?? EIO) }
            if first {
                let c = Compression.sniff(Array(header[0..<4]))
                if c != .none { throw Error.compressed(path, c) }
                first = false
            }
            if header.allSatisfy({ $0 == 0 }) { break }
            guard Self.checksumValid(header) else { throw Error.notATar(path, offset: position) }
            let type = header[156]
            var size = Self.number(header[124..<136])
            if let s = paxSize { size = s }
            let dataStart = position + 512
            // Sizes come from the archive: a negative or overflowing one is refused before any arithmetic on it.
            guard size >= 0 else {
                throw Error.badSize(path, member: (paxPath ?? Self.name(header)).description, offset: position, detail: "negative size \(size)")
            }
            guard size <= fileSize - dataStart else {
                throw Error.truncated(path, member: (paxPath ?? Self.name(header)).description)
            }
            let next = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"):
                let bytes = try Self.readData(fd: fd, offset: dataStart, count: Int(min(size, 65536)), path: path)
                longName = BytePath(bytes: bytes.prefix { $0 != 0 })
            case UInt8(ascii: "x"):
                let bytes = try Self.readData(fd: fd, offset: dataStart, count: Int(min(size, 1 << 20)), path: path)
                for (key, value) in Self.paxRecords(bytes) {
                    if key == "path" { paxPath = BytePath(value) }
                    if key == "size" {
                        let text = String(decoding: value, as: UTF8.self)
                        guard let v = Int64(text), v >= 0 else {
                            throw Error.badSize(path, member: (paxPath ?? Self.name(header)).description, offset: position,
                                                detail: "pax size '\(text.prefix(40))' is not a size that fits in 63 bits")
                        }
                        paxSize = v
                    }
                }
            case UInt8(ascii: "g"):
                break
            default:
                let name = paxPath ?? longName ?? Self.name(header)
                if type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7") {
                    let clean = Self.clean(name)
                    members[clean] = BlobLocation(path: path, offset: dataStart, length: size, displayName: "\(path):\(clean.description)")
                }
                longName = nil
                paxPath = nil
                paxSize = nil
            }
            position = next
        }
        if first { throw Error.notATar(path, offset: 0) }
        self.members = members
    }

    /// The data range of the member named `name` (its UTF-8 bytes), or nil.
    public func location(of name: String) -> BlobLocation? { members[Self.clean(BytePath(name))] }

    /// The member named by exactly these bytes, or nil.
    public func location(of name: BytePath) -> BlobLocation? { members[Self.clean(name)] }

    /// Without leading `./` and `/`, as archive writers differ in them.
    static func clean(_ name: BytePath) -> BytePath {
        var s = name.bytes[...]
        while true {
            if s.starts(with: [0x2E, 0x2F]) { s = s.dropFirst(2) } else if s.first == 0x2F { s = s.dropFirst() } else { break }
        }
        return BytePath(bytes: s)
    }

    static func name(_ h: [UInt8]) -> BytePath {
        let base = Array(h[0..<100].prefix { $0 != 0 })
        let magic = h[257..<262]
        if Array(magic) == Array("ustar".utf8) {
            let prefix = Array(h[345..<500].prefix { $0 != 0 })
            if !prefix.isEmpty { return BytePath(prefix + [0x2F] + base) }
        }
        return BytePath(base)
    }

    static func number(_ field: ArraySlice<UInt8>) -> Int64 {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            // GNU base-256: big-endian, the top bit of the first byte is the marker.
            // A value that needs more than 63 bits is returned as -1 (refused as a negative size).
            var v: Int64 = Int64(first & 0x7f)
            for b in field.dropFirst() {
                guard v <= (Int64.max >> 8) else { return -1 }
                v = v << 8 | Int64(b)
            }
            return v
        }
        var v: Int64 = 0
        for b in field {
            if b == 0 || b == 32 { if v > 0 { break } else { continue } }
            guard b >= 48, b <= 55 else { break }
            v = v * 8 + Int64(b - 48)
        }
        return v
    }

    static func checksumValid(_ h: [UInt8]) -> Bool {
        let stored = number(h[148..<156])
        var sum: Int64 = 0
        for (i, b) in h.enumerated() { sum += (i >= 148 && i < 156) ? 32 : Int64(b) }
        return stored == sum
    }

    static func readData(fd: Int32, offset: Int64, count: Int, path: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let read = out.withUnsafeMutableBytes { PositionalIO.read(fd, into: $0, at: UInt64(offset)) }
        guard read.count == count else { throw BlobError.io(path, errno: read.errno ?? EIO) }
        return out
    }

    /// `(key, value)` of each record; values are bytes (a path need not be UTF-8).
    static func paxRecords(_ data: [UInt8]) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        var i = 0
        while i < data.count {
            var j = i
            while j < data.count, data[j] != 32 { j += 1 }
            guard j < data.count, let len = Int(String(decoding: data[i..<j], as: UTF8.self)),
                  len > j - i + 1, len <= data.count - i else { break }
            let record = data[(j + 1)..<(i + len - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out.append((String(decoding: record[record.startIndex..<eq], as: UTF8.self), Array(record[(eq + 1)...])))
            }
            i += len
        }
        return out
    }
}
