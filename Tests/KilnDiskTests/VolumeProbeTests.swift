import Foundation
import KilnDisk
import KilnTestSupport
import Testing

let haveDiskTools = ["/usr/sbin/sgdisk", "/usr/sbin/mke2fs", "/usr/sbin/dumpe2fs"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("Probing partition tables and superblocks", .enabled(if: haveDiskTools, "needs sgdisk and e2fsprogs (apt-get install gdisk e2fsprogs)"))
struct VolumeProbeTests {
    /// `key: value` lines of a tool's output.
    func fields(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[line[..<colon].trimmingCharacters(in: .whitespaces)] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    func makeFilesystem(_ path: String, size: String) throws -> [String: String] {
        let made = try ProcessRunner().run("/usr/sbin/mke2fs", ["-q", "-F", "-t", "ext4", "-L", "kiln-data", path, size])
        try #require(made.status == 0, "mke2fs: \(made.stderr)")
        let dump = try ProcessRunner().run("/usr/sbin/dumpe2fs", ["-h", path])
        try #require(dump.status == 0, "dumpe2fs: \(dump.stderr)")
        return fields(dump.stdout)
    }

    func expectFilesystem(_ fs: VolumeProbe.Filesystem?, _ dump: [String: String], offset: UInt64) throws {
        let fs = try #require(fs)
        #expect(fs.type == "ext4")
        #expect(fs.offset == offset)
        #expect(fs.uuid == dump["Filesystem UUID"])
        #expect(fs.label == dump["Filesystem volume name"])
        #expect(String(fs.blockSize) == dump["Block size"])
        #expect(String(fs.blockCount) == dump["Block count"])
        #expect(String(fs.inodeCount) == dump["Inode count"])
        let free = try #require(dump["Free blocks"].flatMap { UInt64($0) })
        #expect(fs.usedBlocks == fs.blockCount - free)
    }

    @Test("a bare ext4 filesystem")
    func bareFilesystem() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("fs.img")
        let dump = try makeFilesystem(path, size: "32M")
        let probe = try VolumeProbe(path: path)
        #expect(probe.partitionTable == nil)
        #expect(probe.partition == nil)
        #expect(probe.layout == "ext4")
        try expectFilesystem(probe.filesystem, dump, offset: 0)
    }

    @Test("a GPT disk with Bottlerocket's data partition at 1 MiB holding ext4")
    func gptDisk() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let disk = dir.path("disk.img")
        try makeSparseFile(disk, size: 64 << 20, writes: [])
        let made = try ProcessRunner().run("/usr/sbin/sgdisk", ["-n", "1:2048:0", "-t", "1:\(GPT.bottlerocketDataType.description)",
                                                       "-u", "1:5b94e8df-28b8-485c-9d19-362263b5944c", "-c", "1:BOTTLEROCKET-DATA", disk])
        try #require(made.status == 0, "sgdisk: \(made.stderr)")
        let info = fields(try ProcessRunner().run("/usr/sbin/sgdisk", ["-i", "1", disk]).stdout)
        let firstSector = try #require(info["First sector"].flatMap { UInt64($0.split(separator: " ")[0]) })
        let lastSector = try #require(info["Last sector"].flatMap { UInt64($0.split(separator: " ")[0]) })

        // The filesystem is made apart and copied into the partition, as a bake would write it.
        let fsPath = dir.path("fs.img")
        let dump = try makeFilesystem(fsPath, size: "\((lastSector - firstSector + 1) / 2)k")
        let fsBytes = try Data(contentsOf: URL(fileURLWithPath: fsPath))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: disk))
        try handle.seek(toOffset: firstSector * 512)
        try handle.write(contentsOf: fsBytes)
        try handle.close()

        let probe = try VolumeProbe(path: disk)
        let p = try #require(probe.partition)
        #expect(probe.partitionTable == "gpt")
        #expect(probe.partitionCount == 1)
        #expect(probe.layout == "bottlerocket")
        #expect(p.number == 1)
        #expect(p.start == firstSector * 512)
        #expect(p.size == (lastSector - firstSector + 1) * 512)
        #expect(p.typeGUID.uppercased() == info["Partition GUID code"]?.split(separator: " ").first.map(String.init))
        #expect(p.uniqueGUID.uppercased() == info["Partition unique GUID"])
        #expect("'\(p.name)'" == info["Partition name"])
        let disk2 = fields(try ProcessRunner().run("/usr/sbin/sgdisk", ["-p", disk]).stdout)
        #expect(p.diskGUID?.uppercased() == disk2["Disk identifier (GUID)"])
        try expectFilesystem(probe.filesystem, dump, offset: firstSector * 512)
        // The primary table sits in the first MiB and the backup at the end of the disk.
        #expect(probe.partitionTableRanges.first?.offset == 0)
        #expect(probe.partitionTableRanges.last.map { $0.offset + $0.length } == 64 << 20)
    }

    @Test("random bytes are neither")
    func unknown() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("noise.img")
        var rng = SeededGenerator(seed: 9)
        try makeSparseFile(path, size: 1 << 20, writes: [(0, rng.bytes(1 << 20))])
        let probe = try VolumeProbe(path: path)
        #expect(probe.partition == nil && probe.filesystem == nil)
        #expect(probe.layout == "unknown")
    }
}
