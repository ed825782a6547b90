import Foundation

/// An index of the members of an uncompressed tar file, so blobs inside it can be read in place
/// (random access, no extraction). Handles ustar, GNU long names and pax path/size records.
public struct TarIndex: Sendable {
    public let path: String
    /// Member name (without a leading `./`) -> data range.
    public let members: [String: BlobLocation]

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
        var members: [String: BlobLocation] = [:]
        var position: Int64 = 0
        var longName: String? = nil
        var paxPath: String? = nil
        var paxSize: Int64? = nil
        var first = true

        while position + 512 <= fileSize {
            let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 512, off_t(position)) }
            guard n == 512 else { throw BlobError.io(path, errno: errno) }
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
                throw Error.badSize(path, member: paxPath ?? Self.name(header), offset: position, detail: "negative size \(size)")
            }
            guard size <= fileSize - dataStart else {
                throw Error.truncated(path, member: paxPath ?? Self.name(header))
            }
            let next = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"):
                let bytes = try Self.readData(fd: fd, offset: dataStart, count: Int(min(size, 65536)), path: path)
                longName = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            case UInt8(ascii: "x"):
                let bytes = try Self.readData(fd: fd, offset: dataStart, count: Int(min(size, 1 << 20)), path: path)
                for (key, value) in Self.paxRecords(bytes) {
                    if key == "path" { paxPath = value }
                    if key == "size" {
                        guard let v = Int64(value), v >= 0 else {
                            throw Error.badSize(path, member: paxPath ?? Self.name(header), offset: position,
                                                detail: "pax size '\(value.prefix(40))' is not a size that fits in 63 bits")
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
                    members[clean] = BlobLocation(path: path, offset: dataStart, length: size, displayName: "\(path):\(clean)")
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

    /// The data range of a member, or nil.
    public func location(of name: String) -> BlobLocation? { members[Self.clean(name)] }

    static func clean(_ name: String) -> String {
        var s = Substring(name)
        while s.hasPrefix("./") { s = s.dropFirst(2) }
        while s.hasPrefix("/") { s = s.dropFirst() }
        return String(s)
    }

    static func name(_ h: [UInt8]) -> String {
        let base = String(decoding: h[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        let magic = h[257..<262]
        if Array(magic) == Array("ustar".utf8) {
            let prefix = String(decoding: h[345..<500].prefix { $0 != 0 }, as: UTF8.self)
            if !prefix.isEmpty { return prefix + "/" + base }
        }
        return base
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
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard n == count else { throw BlobError.io(path, errno: errno) }
        return out
    }

    static func paxRecords(_ data: [UInt8]) -> [(String, String)] {
        var out: [(String, String)] = []
        var i = 0
        while i < data.count {
            var j = i
            while j < data.count, data[j] != 32 { j += 1 }
            guard j < data.count, let len = Int(String(decoding: data[i..<j], as: UTF8.self)),
                  len > j - i + 1, len <= data.count - i else { break }
            let record = data[(j + 1)..<(i + len - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out.append((String(decoding: record[record.startIndex..<eq], as: UTF8.self),
                            String(decoding: record[(eq + 1)...], as: UTF8.self)))
            }
            i += len
        }
        return out
    }
}
