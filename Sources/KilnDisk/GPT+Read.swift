import Foundation
import KilnCore

extension GPT {
    /// A partition table read from a disk image: the header's facts and every used entry.
    public struct Table: Sendable, Hashable {
        /// Logical sector size the table was found with (512 or 4096).
        public var sectorSize: UInt64
        public var diskGUID: GUID
        /// The LBA of this header and of the other copy.
        public var currentLBA: UInt64
        public var alternateLBA: UInt64
        public var firstUsableLBA: UInt64
        public var lastUsableLBA: UInt64
        public var entriesLBA: UInt64
        public var entryCount: Int
        public var entrySize: Int
        /// Used entries (non-zero type GUID), in table order.
        public var partitions: [Partition]
        /// True when this is the backup header (the primary was damaged).
        public var fromBackup: Bool
        /// What is wrong with the other copy (the damaged primary when ``fromBackup``, else the backup), or nil
        /// when it checks out too.
        public var otherCopyProblem: String? = nil

        /// Bytes of the entry array.
        public var entryBytes: UInt64 { UInt64(entryCount) * UInt64(entrySize) }
    }

    /// One used partition entry.
    public struct Partition: Sendable, Hashable {
        /// 1-based position in the entry array (what `/dev/sdaN` counts).
        public var number: Int
        public var type: GUID
        public var unique: GUID
        public var firstLBA: UInt64
        public var lastLBA: UInt64
        public var name: String
    }

    /// Why a partition table cannot be read; the image is damaged or is not what it claims (exit 2).
    public enum ReadError: KilnError, Equatable {
        case header(String)
        case entries(String)
        /// Neither copy checks out: why the primary (at LBA 1) and the backup (at `backupLBA`) were refused.
        case bothCopies(primary: String, backupLBA: UInt64, backup: String)
        case io(String)

        public var exitStatus: ExitStatus {
            switch self {
            case .header, .entries, .bothCopies: return .input
            case .io: return .environment
            }
        }

        public var description: String {
            switch self {
            case .header(let why): return "damaged GPT header: \(why)"
            case .entries(let why): return "damaged GPT entry array: \(why)"
            case .bothCopies(let primary, let lba, let backup):
                return "damaged GPT: the primary at LBA 1: \(primary); the backup at LBA \(lba): \(backup)"
            case .io(let why): return why
            }
        }
    }

    /// Most entries a header may declare: the UEFI minimum is 128; tools write at most a few hundred.
    static let maxEntries = 4096

    /// Reads the partition table of `file`: nil when neither sector size shows a GPT signature at LBA 1; throws
    /// when a signature is there but neither the primary nor the backup header and entries check out.
    ///
    /// Every field is checked before it is used: header size and CRC, MyLBA, entry size and count (bounded),
    /// the entry array's CRC and placement, and each entry's LBAs against the usable range.
    public static func read(_ file: ImageFile) throws(ReadError) -> Table? {
        for sector: UInt64 in [512, 4096] where file.size >= sector * 2 {
            let header = try bytes(file, at: sector, count: Int(sector))
            guard header[0..<8].elementsEqual("EFI PART".utf8) else { continue }
            let last = file.size / sector - 1
            do {
                var primary = try table(file, header: header, sector: sector, expectedLBA: 1, backup: false)
                // The backup is where the primary says; a damaged one is not fatal (the primary is what is
                // read), but it is reported: the disk would not survive a damaged primary.
                if primary.alternateLBA != last {
                    primary.otherCopyProblem = "the primary says the backup is at LBA \(primary.alternateLBA), not in the last sector (LBA \(last))"
                } else {
                    do { _ = try backupTable(file, sector: sector, at: last) } catch {
                        primary.otherCopyProblem = "the backup at LBA \(last): \(error)"
                    }
                }
                return primary
            } catch let primary {
                // The backup header sits in the disk's last sector; use it when the primary is damaged.
                do {
                    var backup = try backupTable(file, sector: sector, at: last)
                    backup.otherCopyProblem = "the primary at LBA 1: \(primary)"
                    return backup
                } catch let backup where backup.exitStatus == .input {
                    throw .bothCopies(primary: primary.description, backupLBA: last, backup: backup.description)
                }
            }
        }
        return nil
    }

    private static func backupTable(_ file: ImageFile, sector: UInt64, at lba: UInt64) throws(ReadError) -> Table {
        let header = try bytes(file, at: lba * sector, count: Int(sector))
        guard header[0..<8].elementsEqual("EFI PART".utf8) else { throw .header("no \"EFI PART\" signature") }
        return try table(file, header: header, sector: sector, expectedLBA: lba, backup: true)
    }

    private static func bytes(_ file: ImageFile, at offset: UInt64, count: Int) throws(ReadError) -> [UInt8] {
        do { return try file.bytes(at: offset, count: count) } catch { throw .io("\(error)") }
    }

    private static func table(_ file: ImageFile, header b: [UInt8], sector: UInt64, expectedLBA: UInt64,
                              backup: Bool) throws(ReadError) -> Table {
        let sectors = file.size / sector
        let headerSize = Int(b.le32(12))
        guard headerSize >= 92, headerSize <= Int(sector) else { throw .header("header size \(headerSize) is outside 92...\(sector)") }
        var zeroed = Array(b[0..<headerSize])
        zeroed.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        let stored = b.le32(16)
        let computed = CRC32.checksum(zeroed)
        guard stored == computed else {
            throw .header(String(format: "header CRC-32 is %08x, the header's bytes give %08x", stored, computed))
        }
        let current = b.le64(24)
        guard current == expectedLBA else { throw .header("the header at LBA \(expectedLBA) says it is at LBA \(current)") }
        let alternate = b.le64(32)
        let firstUsable = b.le64(40)
        let lastUsable = b.le64(48)
        guard firstUsable <= lastUsable, lastUsable < sectors else {
            throw .header("usable LBAs \(firstUsable)...\(lastUsable) do not fit a disk of \(sectors) sectors")
        }
        let entriesLBA = b.le64(72)
        let count = Int(b.le32(80))
        let size = Int(b.le32(84))
        guard size >= 128, size <= 4096, size & (size - 1) == 0 else { throw .entries("entry size \(size) is not a power of two from 128 to 4096") }
        guard count >= 1, count <= maxEntries else { throw .entries("\(count) entries (at most \(maxEntries) are read)") }
        let arrayBytes = UInt64(count) * UInt64(size)
        let (arrayOffset, overflow) = entriesLBA.multipliedReportingOverflow(by: sector)
        guard !overflow, entriesLBA >= 1, arrayOffset <= file.size, arrayBytes <= file.size - arrayOffset else {
            throw .entries("the array at LBA \(entriesLBA) (\(arrayBytes) bytes) lies beyond the end of the disk")
        }
        // The header and the entry array lie outside the usable LBAs, the array between the header and the
        // partitions (after the primary, before the backup), as every partitioning tool writes them: a table
        // whose partitions could sit on its own header or entries is not one to read partitions from.
        let arraySectors = (arrayBytes + sector - 1) / sector
        let arrayEnd = entriesLBA + arraySectors  // exclusive; entriesLBA * sector fit the disk, so no overflow
        guard firstUsable >= 2 + arraySectors else {
            throw .header("first usable LBA \(firstUsable) leaves no room for the primary header and its \(arraySectors)-sector entry array")
        }
        guard lastUsable + arraySectors < sectors - 1 else {
            throw .header("last usable LBA \(lastUsable) leaves no room for the backup entry array and header before the disk's end at LBA \(sectors - 1)")
        }
        if backup {
            guard arrayEnd <= current, entriesLBA > lastUsable else {
                throw .entries("the array at LBAs \(entriesLBA)..<\(arrayEnd) is not between the usable LBAs (up to \(lastUsable)) and this header at LBA \(current)")
            }
        } else {
            guard entriesLBA > current, arrayEnd <= firstUsable else {
                throw .entries("the array at LBAs \(entriesLBA)..<\(arrayEnd) is not between this header at LBA \(current) and the first usable LBA \(firstUsable)")
            }
        }
        let entries = try bytes(file, at: arrayOffset, count: Int(arrayBytes))
        let storedEntries = b.le32(88)
        let computedEntries = CRC32.checksum(entries)
        guard storedEntries == computedEntries else {
            throw .entries(String(format: "entry array CRC-32 is %08x, its bytes give %08x", storedEntries, computedEntries))
        }
        var partitions: [Partition] = []
        for i in 0..<count {
            let e = entries[(i * size)..<(i * size + 128)]
            let base = e.startIndex
            guard e[base..<(base + 16)].contains(where: { $0 != 0 }) else { continue }
            let first = e.le64(base + 32)
            let last = e.le64(base + 40)
            guard first <= last, first >= firstUsable, last <= lastUsable else {
                throw .entries("partition \(i + 1) spans LBAs \(first)...\(last), outside the usable \(firstUsable)...\(lastUsable)")
            }
            let units = stride(from: base + 56, to: base + 128, by: 2).map { UInt16(e[$0]) | UInt16(e[$0 + 1]) << 8 }
            partitions.append(Partition(
                number: i + 1, type: GUID(bytes: Array(e[base..<(base + 16)])), unique: GUID(bytes: Array(e[(base + 16)..<(base + 32)])),
                firstLBA: first, lastLBA: last, name: String(decoding: units.prefix { $0 != 0 }, as: UTF16.self)))
        }
        let sorted = partitions.sorted { $0.firstLBA < $1.firstLBA }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.firstLBA <= a.lastLBA {
            throw .entries("partitions \(a.number) and \(b.number) overlap")
        }
        return Table(sectorSize: sector, diskGUID: GUID(bytes: Array(b[56..<72])), currentLBA: current, alternateLBA: alternate,
                     firstUsableLBA: firstUsable, lastUsableLBA: lastUsable, entriesLBA: entriesLBA, entryCount: count,
                     entrySize: size, partitions: partitions, fromBackup: backup)
    }
}

extension Collection where Element == UInt8, Index == Int {
    func le32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[o + $1]) << (8 * $1) } }
    func le64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[o + $1]) << (8 * $1) } }
}
