import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// True when this process may resize a mounted ext4 (the kernel requires CAP_SYS_RESOURCE).
let hasCapSysResource: Bool = {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
        let caps = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return caps & (1 << 24) != 0
}()

/// The kernel as an independent reader and writer: loop mounts need root and a free loop device.
@Suite(
    .serialized,
    .enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"),
    .enabled(if: Tools.canLoopMount, "loop mounts need root, losetup and a free loop device"))
struct MountTests {
    /// What the kernel shows matches what was written: types, modes, owners, sizes, nanosecond mtimes,
    /// link counts and hard-link groups, device numbers, symlink targets, contents and xattrs.
    @Test func kernelSeesWhatWasWritten() throws {
        let s = try Scratch()
        let img = s.path("spec.img")
        let spec = TreeSpec.standard
        let w = try EXT4Writer(path: img, offset: 1 << 20, options: options(size: .bytes(64 << 20)))
        try spec.write(to: w)
        // Times past 2038 and before 1970 use the epoch bits of the extra time fields.
        let future = EXT4.Timestamp(seconds: 5_000_000_000, nanoseconds: 42)
        let past = EXT4.Timestamp(seconds: -1_000_000, nanoseconds: 7)
        try w.writeFile("times", contents: [], metadata: EXT4.Metadata(
            permissions: 0o644, accessTime: past, modificationTime: future, changeTime: future, creationTime: past))
        try w.beginFile("chunks")
        try w.appendFileData([])
        try w.appendFileData([1, 2, 3])
        try w.appendFileHole(0)
        try w.appendFileData(Array(repeating: 4, count: 8190))
        try w.appendFileHole(5000)
        try w.appendFileData([5])
        try w.finishFile()
        _ = try w.close()
        try expectClean(img, offset: 1 << 20)

        let m = try Mount(img, at: s.path("mnt"), offset: 1 << 20, readOnly: true)
        defer { try? m.unmount() }
        var times = stat()
        #expect(lstat(m.dir + "/times", &times) == 0)
        #expect(times.st_mtim.tv_sec == 5_000_000_000 && times.st_mtim.tv_nsec == 42)
        #expect(times.st_atim.tv_sec == -1_000_000 && times.st_atim.tv_nsec == 7)
        let chunks = FileManager.default.contents(atPath: m.dir + "/chunks")
        #expect(chunks == Data([1, 2, 3] + Array(repeating: 4, count: 8190) + Array(repeating: 0, count: 5000) + [5]))
        let seen = try observe(m.dir, skipping: ["lost+found", "times", "chunks"])
        let byPath = Dictionary(uniqueKeysWithValues: seen.map { ($0.path, $0) })
        #expect(Set(seen.map(\.path)) == Set(spec.items.map(\.path)))
        var inodes: [String: UInt64] = [:]
        for it in spec.items {
            guard let o = byPath[it.path] else {
                Issue.record("missing \(it.path)")
                continue
            }
            var st = stat()
            _ = lstat(m.dir + "/" + it.path, &st)
            inodes[it.path] = UInt64(st.st_ino)
            #expect(o.mode & 0o7777 == UInt32(it.mode), "\(o)")
            #expect(o.uid == it.uid && o.gid == it.gid, "\(o)")
            #expect(o.mtime == "\(it.mtime.seconds).\(it.mtime.nanoseconds)", "\(o)")
            for (k, v) in it.xattrs { #expect(o.xattrs[k] == v, "\(k) of \(o)") }
            switch it.kind {
            case .directory: #expect(o.mode & S_IFMT == S_IFDIR)
            case .file(let bytes, let hole):
                #expect(o.mode & S_IFMT == S_IFREG)
                #expect(o.content == Data(bytes) + Data(count: Int(hole)))
            case .symlink(let t): #expect(o.target == t)
            case .hardLink(let to): #expect(inodes[it.path] == inodes[to])
            case .device(let kind, let dev):
                #expect(o.mode & S_IFMT == (kind == .characterDevice ? S_IFCHR : S_IFBLK))
                #expect(deviceMajor(o.rdev) == dev.major && deviceMinor(o.rdev) == dev.minor, "\(o)")
            case .fifo: #expect(o.mode & S_IFMT == S_IFIFO)
            case .socket: #expect(o.mode & S_IFMT == S_IFSOCK)
            }
        }
        #expect(byPath["usr/bin/sgid"]?.nlink == 2)
        #expect(byPath["lib/libc.so"]?.nlink == 2)
        #expect(byPath["usr"]?.nlink == 3)
        // The sparse file keeps its hole.
        var st = stat()
        _ = lstat(m.dir + "/home/user/sparse", &st)
        #expect(st.st_blocks == 24)
    }

    /// The kernel can change the filesystem (including the htree directories kiln built) and e2fsck stays happy.
    @Test func kernelWritesKeepItClean() throws {
        let s = try Scratch()
        let img = s.path("rw.img")
        let w = try EXT4Writer(path: img, options: options(size: .bytes(128 << 20)))
        try TreeSpec.standard.write(to: w)
        // Long names make 25k entries need a second index level.
        for i in 0..<25_000 {
            try w.makeSpecialFile(BytePath("index/\(i)-" + String(repeating: "y", count: 100)), kind: .fifo)
        }
        try w.writeFile("delete-me", contents: Array(repeating: 1, count: 1 << 20))
        _ = try w.close()
        try expectClean(img)
        #expect(try debugfs(img, "htree_dump /index").contains("Indirect levels: 1"))

        let m = try Mount(img, at: s.path("mnt"), readOnly: false)
        defer { try? m.unmount() }
        let fm = FileManager.default
        try fm.removeItem(atPath: m.dir + "/delete-me")
        try fm.removeItem(atPath: m.dir + "/home")
        for i in stride(from: 0, to: 25_000, by: 3) {
            try fm.removeItem(atPath: m.dir + "/index/\(i)-" + String(repeating: "y", count: 100))
        }
        for i in 0..<3000 {
            #expect(writeSmallFile(m.dir + "/index/new-\(i)", [UInt8(i & 0xff)]))
        }
        try fm.createDirectory(atPath: m.dir + "/etc/new/deeper", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: m.dir + "/etc/new/deeper/data", contents: Data(repeating: 7, count: 3 << 20)))
        #expect(lsetxattr(m.dir + "/etc/os-release", "user.added", "v", 1, 0) == 0, "errno \(errno)")
        #expect(try fm.contentsOfDirectory(atPath: m.dir + "/index").count == 25_000 - 8334 + 3000)
        try m.unmount()
        try expectClean(img)
        let r = try EXT4Reader(path: img)
        #expect(try r.readFile("etc/new/deeper/data") == Array(repeating: 7, count: 3 << 20))
        #expect(try r.xattrs("etc/os-release")["user.added"] == Array("v".utf8))
        #expect(try r.list("index").count == 25_000 - 8334 + 3000)
    }

    /// The same tree written by `mke2fs -d` (from a directory built as root) and by kiln reads back the same.
    @Test func matchesMke2fsFromADirectory() throws {
        let s = try Scratch()
        let source = s.path("source")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        // mke2fs 1.47.0 -d neither keeps hard links between symlinks nor nanosecond times: leave those out of
        // the comparison (kernelSeesWhatWasWritten covers them for kiln).
        var spec = TreeSpec.standard
        spec.items.removeAll { $0.path == "lib/hardsym" }
        try spec.materialize(at: source)
        let theirs = s.path("mke2fs.img")
        let mk = try Tools.run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-d", source, theirs, "64M"])
        #expect(mk.status == 0, "\(mk.output)")
        try expectClean(theirs)
        let ours = s.path("kiln.img")
        let w = try EXT4Writer(path: ours, options: options())
        try spec.write(to: w)
        _ = try w.close()
        try expectClean(ours)

        let a = try Mount(theirs, at: s.path("a"), readOnly: true)
        defer { try? a.unmount() }
        let b = try Mount(ours, at: s.path("b"), readOnly: true)
        defer { try? b.unmount() }
        func seconds(_ o: [Observed]) -> [Observed] {
            o.map { var x = $0; x.mtime = String(x.mtime.prefix { $0 != "." }); return x }
        }
        let left = seconds(try observe(a.dir))
        let right = seconds(try observe(b.dir))
        #expect(left.map(\.path) == right.map(\.path))
        for (l, r) in zip(left, right) {
            #expect(l == r, "mke2fs: \(l)\nkiln:   \(r)")
        }
        // Our reader agrees with the kernel on mke2fs's image as well.
        let reader = try EXT4Reader(path: theirs)
        #expect(try reader.readFile("lib/libc.so.6") == Array((0..<12_345).map { UInt8(truncatingIfNeeded: $0 * 13) }))
        #expect(try reader.xattrs("usr/bin/sudo")["security.capability"]?.count == 20)
    }

    /// Bottlerocket grows the data volume while it is mounted: 16 MiB grows to 16 GiB online.
    @Test(.enabled(if: hasCapSysResource, "online resize needs CAP_SYS_RESOURCE, which this environment withholds"))
    func growsOnlineWhileMounted() throws {
        let s = try Scratch()
        let img = s.path("grow.img")
        let w = try EXT4Writer(path: img, options: options(size: .bytes(16 << 20)))
        try TreeSpec.standard.write(to: w)
        _ = try w.close()
        try expectClean(img)
        let m = try Mount(img, at: s.path("mnt"), readOnly: false)
        defer { try? m.unmount() }
        #expect(truncate(img, 16 << 30) == 0)
        let c = try Tools.run("losetup", ["-c", m.device])
        #expect(c.status == 0, "\(c.output)")
        let r = try Tools.run("resize2fs", [m.device])
        #expect(r.status == 0, "\(r.output)")
        #expect(FileManager.default.createFile(atPath: m.dir + "/after-growth", contents: Data(repeating: 1, count: 100 << 20)))
        var fs = statvfs()
        #expect(statvfs(m.dir, &fs) == 0)
        #expect(UInt64(fs.f_blocks) * UInt64(fs.f_frsize) > 15 << 30)
        try m.unmount()
        try expectClean(img)
    }
}

/// Growth without a mount: resize2fs itself must accept the layout (offline growth by 1000x and more).
@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, resize2fs) is not installed"))
struct OfflineGrowthTests {
    /// Writes the standard tree into 16 MiB, grows the file to 16 GiB and runs resize2fs on it; returns the image.
    static func grownImage(in s: Scratch) throws -> String {
        let img = s.path("grow.img")
        let w = try EXT4Writer(path: img, options: options(size: .bytes(16 << 20)))
        try TreeSpec.standard.write(to: w)
        _ = try w.close()
        try expectClean(img)
        #expect(truncate(img, 16 << 30) == 0)
        let r = try Tools.run("resize2fs", [img])
        try #require(r.status == 0, "\(r.output)")
        return img
    }

    @Test func resize2fsGrowsItAThousandfold() throws {
        let s = try Scratch()
        let img = try Self.grownImage(in: s)
        try expectClean(img)
        let reader = try EXT4Reader(path: img)
        #expect(reader.info.blockCount == (16 << 30) / 4096)
        #expect(try reader.readFile("usr/bin/sudo") == Array(repeating: 0xC3, count: 70_000))
    }

    /// The kernel mounts the grown filesystem and writes to it, and e2fsck still finds nothing to fix.
    @Test(.enabled(if: Tools.canLoopMount, "loop mounts need root, losetup and a free loop device"))
    func grownFilesystemMountsAndTakesWrites() throws {
        let s = try Scratch()
        let img = try Self.grownImage(in: s)
        let m = try Mount(img, at: s.path("mnt"), readOnly: false)
        defer { try? m.unmount() }
        #expect(FileManager.default.createFile(atPath: m.dir + "/after", contents: Data(repeating: 2, count: 1 << 20)))
        try m.unmount()
        try expectClean(img)
    }
}
