import Foundation
import KilnCore

/// A GUID partition table with one partition, as Bottlerocket's data disk carries it.
///
/// Writes the protective MBR (LBA 0), the primary header (LBA 1) and entry array (LBA 2-33), and the backup
/// entry array and header at the end of the disk, with valid CRC-32s. 512-byte logical sectors.
public struct GPT: Sendable, Hashable {
    public static let sectorSize = 512
    public static let entryCount = 128
    public static let entrySize = 128

    /// Bottlerocket's data partition type GUID.
    public static let bottlerocketDataType = GUID("626f7474-6c65-6474-6861-726d61726b73")!
    /// The unique GUID of the data partition on Bottlerocket's data disk ("preferred").
    public static let bottlerocketDataPartition = GUID("5b94e8df-28b8-485c-9d19-362263b5944c")!
    public static let bottlerocketDataName = "BOTTLEROCKET-DATA"

    public var diskSize: UInt64
    public var diskGUID: GUID
    public var partitionStart: UInt64
    public var partitionSize: UInt64
    public var partitionType: GUID
    public var partitionGUID: GUID
    public var partitionName: String

    /// A disk with one partition of `partitionSize` bytes at `partitionStart` (1 MiB for Bottlerocket) and
    /// 1 MiB left free at the end for the backup table, rounded up to whole MiB.
    public static func disk(partitionStart: UInt64 = 1 << 20, partitionSize: UInt64, diskGUID: GUID,
                            type: GUID = bottlerocketDataType, partitionGUID: GUID = bottlerocketDataPartition,
                            name: String = bottlerocketDataName) -> GPT {
        let mib: UInt64 = 1 << 20
        let end = partitionStart + partitionSize + mib
        let size = (end + mib - 1) / mib * mib
        return GPT(diskSize: size, diskGUID: diskGUID, partitionStart: partitionStart, partitionSize: partitionSize,
                   partitionType: type, partitionGUID: partitionGUID, partitionName: name)
    }

    var lastLBA: UInt64 { diskSize / UInt64(Self.sectorSize) - 1 }
    var entrySectors: UInt64 { UInt64(Self.entryCount * Self.entrySize / Self.sectorSize) }

    /// The regions to write: (byte offset, bytes).
    public func regions() -> [(offset: UInt64, bytes: [UInt8])] {
        let entries = entryArray()
        let entriesCRC = CRC32.checksum(entries)
        let primary = header(current: 1, backup: lastLBA, entriesLBA: 2, entriesCRC: entriesCRC)
        let backupEntriesLBA = lastLBA - entrySectors
        let backup = header(current: lastLBA, backup: 1, entriesLBA: backupEntriesLBA, entriesCRC: entriesCRC)
        let ss = UInt64(Self.sectorSize)
        return [
            (0, protectiveMBR()),
            (ss, primary),
            (2 * ss, entries),
            (backupEntriesLBA * ss, entries),
            (lastLBA * ss, backup),
        ]
    }

    func protectiveMBR() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.sectorSize)
        let p = 446
        b[p + 1] = 0x00; b[p + 2] = 0x02; b[p + 3] = 0x00  // CHS of LBA 1
        b[p + 4] = 0xEE
        b[p + 5] = 0xFF; b[p + 6] = 0xFF; b[p + 7] = 0xFF
        put32(&b, p + 8, 1)
        put32(&b, p + 12, UInt32(min(lastLBA, 0xFFFF_FFFF)))
        b[510] = 0x55
        b[511] = 0xAA
        return b
    }

    func entryArray() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.entryCount * Self.entrySize)
        b.replaceSubrange(0..<16, with: partitionType.bytes)
        b.replaceSubrange(16..<32, with: partitionGUID.bytes)
        let ss = UInt64(Self.sectorSize)
        put64(&b, 32, partitionStart / ss)
        put64(&b, 40, (partitionStart + partitionSize) / ss - 1)
        put64(&b, 48, 0)
        for (i, unit) in partitionName.utf16.prefix(36).enumerated() {
            b[56 + 2 * i] = UInt8(unit & 0xff)
            b[57 + 2 * i] = UInt8(unit >> 8)
        }
        return b
    }

    func header(current: UInt64, backup: UInt64, entriesLBA: UInt64, entriesCRC: UInt32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.sectorSize)
        b.replaceSubrange(0..<8, with: Array("EFI PART".utf8))
        put32(&b, 8, 0x0001_0000)
        put32(&b, 12, 92)
        put64(&b, 24, current)
        put64(&b, 32, backup)
        put64(&b, 40, 2 + entrySectors)
        put64(&b, 48, lastLBA - entrySectors - 1)
        b.replaceSubrange(56..<72, with: diskGUID.bytes)
        put64(&b, 72, entriesLBA)
        put32(&b, 80, UInt32(Self.entryCount))
        put32(&b, 84, UInt32(Self.entrySize))
        put32(&b, 88, entriesCRC)
        put32(&b, 16, CRC32.checksum(Array(b[0..<92])))
        return b
    }

    /// Writes the table into `fd` (the disk image) and sets the file's length to the disk size.
    public func write(to fd: Int32) throws {
        guard ftruncate(fd, off_t(diskSize)) == 0 else { throw Error.io(errno) }
        for region in regions() {
            if let e = region.bytes.withUnsafeBytes({ PositionalIO.write(fd, $0, at: region.offset) }) { throw Error.io(e) }
        }
    }

    public enum Error: KilnError {
        case io(Int32)

        public var exitStatus: ExitStatus { .environment }

        public var description: String {
            switch self {
            case .io(let e): return "cannot write the partition table: \(String(cString: strerror(e)))"
            }
        }
    }
}

/// A GUID in its canonical text form; stored on disk with the first three fields little-endian.
public struct GUID: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes in on-disk (mixed-endian) order.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        let hex = text.replacingOccurrences(of: "-", with: "")
        guard hex.count == 32 else { return nil }
        var raw: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let v = UInt8(hex[i..<j], radix: 16) else { return nil }
            raw.append(v)
            i = j
        }
        bytes = [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + raw[8...]
    }

    /// A GUID from its 16 on-disk bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a GUID has 16 bytes")
        self.bytes = bytes
    }

    /// A GUID from 16 bytes of a hash (RFC 4122 version 4 / variant bits set), for deterministic disk GUIDs.
    public init(hashBytes: [UInt8]) {
        var raw = Array(hashBytes.prefix(16))
        while raw.count < 16 { raw.append(0) }
        raw[6] = (raw[6] & 0x0f) | 0x40
        raw[8] = (raw[8] & 0x3f) | 0x80
        bytes = [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + raw[8...]
    }

    public var description: String {
        let raw = [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8...]
        let h = raw.map { String(format: "%02x", $0) }.joined()
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}

/// CRC-32 (IEEE 802.3, as zlib and the UEFI specification use it).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

private func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8((v >> (8 * UInt32(i))) & 0xff) }
}

private func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
    for i in 0..<8 { b[at + i] = UInt8((v >> (8 * UInt64(i))) & 0xff) }
}
