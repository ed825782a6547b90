import Foundation
import KilnCore
import KilnTestSupport
import Testing

@testable import KilnDisk

/// The partition table kiln writes, checked by `sgdisk -v` (gdisk's own verifier) and read back by kiln's
/// reader, which must refuse damaged tables instead of trusting them.
@Suite("GPT: written, verified by sgdisk, read back", .requires(tools: "sgdisk"))
struct GPTTests {
    /// A Bottlerocket-style disk: one partition of `partitionMiB` at 1 MiB.
    func writeDisk(_ dir: TemporaryDirectory, partitionMiB: UInt64 = 62) throws -> (String, GPT) {
        let path = dir.path("disk.img")
        let table = GPT.disk(partitionSize: partitionMiB << 20, diskGUID: GUID(hashBytes: Array(repeating: 7, count: 16)))
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        try table.write(to: fd)
        return (path, table)
    }

    @Test func sgdiskFindsNoProblem() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, table) = try writeDisk(dir)
        let verify = try ProcessRunner().run("sgdisk", ["-v", path])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.stdout.contains("No problems found"), "\(verify.stdout)")
        let info = try ProcessRunner().run("sgdisk", ["-i", "1", path]).stdout
        #expect(info.contains("Partition GUID code: 626F7474-6C65-6474-6861-726D61726B73"), "\(info)")
        #expect(info.contains("Partition unique GUID: 5B94E8DF-28B8-485C-9D19-362263B5944C"), "\(info)")
        #expect(info.contains("First sector: 2048 "), "\(info)")
        #expect(info.contains("Partition name: 'BOTTLEROCKET-DATA'"), "\(info)")
        #expect(table.diskSize == 64 << 20)
    }

    @Test func readBackGivesWhatWasWritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, table) = try writeDisk(dir)
        let read = try #require(try GPT.read(ImageFile(path: path)))
        #expect(!read.fromBackup)
        #expect(read.sectorSize == 512)
        #expect(read.diskGUID == table.diskGUID)
        #expect(read.entryCount == 128 && read.entrySize == 128)
        let p = try #require(read.partitions.first)
        #expect(read.partitions.count == 1)
        #expect(p.number == 1)
        #expect(p.type == GPT.bottlerocketDataType)
        #expect(p.unique == GPT.bottlerocketDataPartition)
        #expect(p.firstLBA == 2048)
        #expect((p.lastLBA + 1) * 512 == (1 << 20) + (62 << 20))
        #expect(p.name == GPT.bottlerocketDataName)
    }

    @Test func aDamagedPrimaryFallsBackToTheBackup() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, _) = try writeDisk(dir)
        try patch(path, at: 512 + 40, [0xFF])  // first usable LBA, under the header CRC
        let read = try #require(try GPT.read(ImageFile(path: path)))
        #expect(read.fromBackup)
        #expect(read.partitions.first?.firstLBA == 2048)
        // Not silently: the probe says the primary is damaged, and why.
        let probe = try VolumeProbe(path: path)
        #expect(probe.partitionTableProblem?.hasPrefix("the primary at LBA 1: damaged GPT header: header CRC-32") == true,
                "\(String(describing: probe.partitionTableProblem))")
        #expect(probe.partitionTableRanges.allSatisfy { $0.offset + $0.length <= 2048 * 512 || $0.offset >= 2048 * 512 + (62 << 20) })
    }

    @Test func aDamagedBackupIsReportedWhileThePrimaryIsRead() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, table) = try writeDisk(dir)
        #expect(try VolumeProbe(path: path).partitionTableProblem == nil)
        try patch(path, at: table.diskSize - 512 + 40, [0xFF])
        let read = try #require(try GPT.read(ImageFile(path: path)))
        #expect(!read.fromBackup && read.partitions.first?.firstLBA == 2048)
        let last = table.diskSize / 512 - 1
        #expect(read.otherCopyProblem?.hasPrefix("the backup at LBA \(last): damaged GPT header: header CRC-32") == true,
                "\(String(describing: read.otherCopyProblem))")
    }

    /// A header resealed after `edit`: the CRC is right, so only the checks of the fields can refuse it.
    func resealed(_ path: String, at lba: UInt64, _ edit: (inout [UInt8]) -> Void) throws {
        var header = try ImageFile(path: path).bytes(at: lba * 512, count: 92)
        edit(&header)
        header.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        let crc = CRC32.checksum(header)
        header.replaceSubrange(16..<20, with: (0..<4).map { UInt8((crc >> (8 * UInt32($0))) & 0xFF) })
        try patch(path, at: lba * 512, header)
    }

    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }

    @Test(arguments: [
        // (field offset, value, what the refusal says): usable LBAs over the header, entries among the partitions.
        (40, UInt64(0), "first usable LBA 0 leaves no room for the primary header and its 32-sector entry array"),
        (40, UInt64(10), "first usable LBA 10 leaves no room"),
        (48, UInt64(131_070), "last usable LBA 131070 leaves no room for the backup entry array"),
        (72, UInt64(4096), "the array at LBAs 4096..<4128"),
    ])
    func tablesOverlappingTheirPartitionsAreRefused(field: Int, value: UInt64, message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, table) = try writeDisk(dir)
        try resealed(path, at: 1) { $0.replaceSubrange(field..<(field + 8), with: Self.le64(value)) }
        if field == 72 {
            // The array moved to where the partition is, with its bytes: only its placement is wrong.
            let array = try ImageFile(path: path).bytes(at: 2 * 512, count: 128 * 128)
            try patch(path, at: value * 512, array)
        }
        try resealed(path, at: table.diskSize / 512 - 1) { $0.replaceSubrange(field..<(field + 8), with: Self.le64(value)) }
        #expect {
            _ = try GPT.read(ImageFile(path: path))
        } throws: { error in
            guard let e = error as? GPT.ReadError, case .bothCopies(let primary, _, _) = e else { return false }
            return primary.contains(message)
        }
    }

    @Test(arguments: [
        // (offset, bytes, what the error must say)
        (UInt64(512 + 16), [UInt8](repeating: 0, count: 4), "CRC-32"),
        (UInt64(2 * 512 + 40), [UInt8](repeating: 0xFF, count: 8), "entry array CRC-32"),
    ])
    func bothCopiesDamagedIsRefused(offset: UInt64, bytes: [UInt8], message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, table) = try writeDisk(dir)
        try patch(path, at: offset, bytes)
        // The same damage in the backup copy: its header is the last sector, its entries the 32 before it.
        let last = table.diskSize - 512
        let backupOffset = offset < 1024 ? last + (offset - 512) : last - 32 * 512 + (offset - 1024)
        try patch(path, at: backupOffset, bytes)
        #expect {
            _ = try GPT.read(ImageFile(path: path))
        } throws: { error in
            guard let e = error as? GPT.ReadError else { return false }
            return e.exitStatus == .input && e.description.contains(message)
        }
        // The probe names the image.
        #expect {
            _ = try VolumeProbe(path: path)
        } throws: { error in
            "\(error)".hasPrefix(path) && ExitStatus.of(error) == .input
        }
    }

    @Test func hostileCountsAreRefusedWithoutTrapping() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, _) = try writeDisk(dir)
        // Entry count 2^32-1 with a recomputed header CRC: bounded, refused, no overflow.
        var header = try ImageFile(path: path).bytes(at: 512, count: 92)
        header.replaceSubrange(80..<84, with: [0xFF, 0xFF, 0xFF, 0xFF])
        header.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        let crc = CRC32.checksum(header)
        header.replaceSubrange(16..<20, with: (0..<4).map { UInt8((crc >> (8 * UInt32($0))) & 0xFF) })
        try patch(path, at: 512, header)
        try patch(path, at: 64 * 1024 * 1024 - 512, [UInt8](repeating: 0, count: 512))  // no backup to fall back to
        #expect(throws: GPT.ReadError.self) { _ = try GPT.read(ImageFile(path: path)) }
    }

    @Test func noSignatureIsNoTable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("blank.img")
        try makeSparseFile(path, size: 1 << 20, writes: [])
        #expect(try GPT.read(ImageFile(path: path)) == nil)
    }
}
