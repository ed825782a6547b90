import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// A tree described once, written through the writer (or onto a real directory for mke2fs -d), and compared
/// against what a mounted filesystem shows.
struct TreeSpec {
    enum Kind {
        case directory
        case file([UInt8], holeAfter: UInt64)
        case symlink(String)
        case hardLink(to: String)
        case device(EXT4.FileKind, EXT4.DeviceNumber)
        case fifo
        case socket
    }

    struct Item {
        var path: String
        var kind: Kind
        var mode: UInt16
        var uid: UInt32
        var gid: UInt32
        var mtime: EXT4.Timestamp
        var xattrs: [String: [UInt8]] = [:]
    }

    var items: [Item] = []

    /// The tree every mount test uses: each node kind, odd modes and owners, nanosecond times, xattrs, holes.
    static var standard: TreeSpec {
        var t = TreeSpec()
        func time(_ s: Int64, _ n: UInt32) -> EXT4.Timestamp { EXT4.Timestamp(seconds: s, nanoseconds: n) }
        t.items = [
            Item(path: "etc", kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: time(1_600_000_000, 1)),
            Item(path: "etc/os-release", kind: .file(Array("NAME=kiln\n".utf8), holeAfter: 0), mode: 0o644, uid: 0, gid: 0,
                 mtime: time(1_600_000_001, 999_999_999)),
            Item(path: "tmp", kind: .directory, mode: 0o1777, uid: 0, gid: 0, mtime: time(1_600_000_002, 2)),
            Item(path: "usr/bin/sudo", kind: .file(Array(repeating: 0xC3, count: 70_000), holeAfter: 0), mode: 0o4755,
                 uid: 0, gid: 0, mtime: time(1_600_000_003, 3), xattrs: ["security.capability": [1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]),
            Item(path: "usr/bin/sgid", kind: .file([1, 2, 3], holeAfter: 0), mode: 0o2711, uid: 1000, gid: 50,
                 mtime: time(1_600_000_004, 4)),
            Item(path: "usr/bin/link", kind: .hardLink(to: "usr/bin/sgid"), mode: 0o2711, uid: 1000, gid: 50,
                 mtime: time(1_600_000_004, 4)),
            Item(path: "home/user", kind: .directory, mode: 0o700, uid: 100_000, gid: 100_000, mtime: time(1_600_000_005, 5),
                 xattrs: ["user.note": Array("hi".utf8), "trusted.overlay.opaque": Array("y".utf8)]),
            Item(path: "home/user/sparse", kind: .file(Array(repeating: 9, count: 10_000), holeAfter: 3 << 20), mode: 0o600,
                 uid: 100_000, gid: 100_000, mtime: time(1_600_000_006, 6)),
            Item(path: "home/user/big-xattrs", kind: .file([], holeAfter: 0), mode: 0o640, uid: 1, gid: 2,
                 mtime: time(1_600_000_007, 7),
                 xattrs: ["user.large": Array(repeating: 0x5A, count: 2000), "user.small": [1]]),
            Item(path: "lib/libc.so", kind: .symlink("libc.so.6"), mode: 0o777, uid: 0, gid: 0, mtime: time(1_600_000_008, 8)),
            Item(path: "lib/long", kind: .symlink("/" + String(repeating: "very-long-component/", count: 20) + "end"),
                 mode: 0o777, uid: 0, gid: 0, mtime: time(1_600_000_009, 9)),
            Item(path: "lib/libc.so.6", kind: .file(Array((0..<12_345).map { UInt8(truncatingIfNeeded: $0 * 13) }), holeAfter: 0),
                 mode: 0o755, uid: 0, gid: 0, mtime: time(1_600_000_010, 10)),
            Item(path: "lib/hardsym", kind: .hardLink(to: "lib/libc.so"), mode: 0o777, uid: 0, gid: 0, mtime: time(1_600_000_008, 8)),
            Item(path: "dev/null", kind: .device(.characterDevice, EXT4.DeviceNumber(major: 1, minor: 3)), mode: 0o666,
                 uid: 0, gid: 0, mtime: time(1_600_000_011, 11)),
            Item(path: "dev/nvme", kind: .device(.blockDevice, EXT4.DeviceNumber(major: 259, minor: 300_000)), mode: 0o660,
                 uid: 0, gid: 6, mtime: time(1_600_000_012, 12)),
            Item(path: "run/fifo", kind: .fifo, mode: 0o620, uid: 5, gid: 5, mtime: time(1_600_000_013, 13)),
            Item(path: "run/socket", kind: .socket, mode: 0o755, uid: 5, gid: 5, mtime: time(1_600_000_014, 14)),
            Item(path: "opaque", kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: time(1_600_000_015, 15),
                 xattrs: ["trusted.overlay.opaque": Array("y".utf8)]),
        ]
        // Parents that are only implied take explicit metadata too, so both writers agree on them.
        for d in ["usr", "usr/bin", "home", "lib", "dev", "run"] {
            t.items.insert(Item(path: d, kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: time(1_500_000_000, 0)), at: 0)
        }
        t.items.sort { $0.path.split(separator: "/").count < $1.path.split(separator: "/").count }
        return t
    }

    func write(to w: EXT4Writer, under root: EXT4.NodeID? = nil) throws {
        for it in items {
            let meta = EXT4.Metadata(permissions: it.mode, uid: it.uid, gid: it.gid, time: it.mtime)
            switch it.kind {
            case .directory:
                try w.makeDirectory(BytePath(it.path), metadata: meta, under: root)
            case .file(let bytes, let hole):
                try w.beginFile(BytePath(it.path), metadata: meta, under: root)
                try w.appendFileData(bytes)
                try w.appendFileHole(hole)
                try w.finishFile()
            case .symlink(let target):
                try w.makeSymlink(BytePath(it.path), target: BytePath(target), metadata: meta, under: root)
            case .hardLink(let to):
                try w.makeHardLink(BytePath(it.path), to: BytePath(to), under: root)
                continue
            case .device(let kind, let dev):
                try w.makeSpecialFile(BytePath(it.path), kind: kind, device: dev, metadata: meta, under: root)
            case .fifo:
                try w.makeSpecialFile(BytePath(it.path), kind: .fifo, metadata: meta, under: root)
            case .socket:
                try w.makeSpecialFile(BytePath(it.path), kind: .socket, metadata: meta, under: root)
            }
            for (k, v) in it.xattrs.sorted(by: { $0.key < $1.key }) { try w.setXattr(k, value: v, at: BytePath(it.path), under: root) }
        }
    }

    /// Builds the tree on the host (needs root for owners, devices and trusted xattrs).
    func materialize(at dir: String) throws {
        for it in items {
            let p = dir + "/" + it.path
            switch it.kind {
            case .directory:
                try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
            case .file(let bytes, let hole):
                #expect(FileManager.default.createFile(atPath: p, contents: Data(bytes)))
                if hole > 0 { #expect(truncate(p, off_t(bytes.count) + off_t(hole)) == 0) }
            case .symlink(let target):
                try FileManager.default.createSymbolicLink(atPath: p, withDestinationPath: target)
            case .hardLink(let to):
                #expect(link(dir + "/" + to, p) == 0)
                continue
            case .device(let kind, let dev):
                let type: mode_t = kind == .characterDevice ? S_IFCHR : S_IFBLK
                let rdev = dev_t((dev.minor & 0xff) | (dev.major << 8) | ((dev.minor & ~0xff) << 12))
                #expect(mknod(p, type | 0o600, rdev) == 0, "mknod \(p): \(errno)")
            case .fifo:
                #expect(mkfifo(p, 0o600) == 0)
            case .socket:
                #expect(mknod(p, S_IFSOCK | 0o600, 0) == 0, "mknod socket \(p): \(errno)")
            }
            // Owner first, then mode (chown clears setuid), then xattrs (chown drops file capabilities).
            #expect(lchown(p, it.uid, it.gid) == 0)
            if case .symlink = it.kind {} else { #expect(chmod(p, mode_t(it.mode)) == 0) }
            for (k, v) in it.xattrs {
                let r = v.withUnsafeBytes { lsetxattr(p, k, $0.baseAddress, v.count, 0) }
                #expect(r == 0, "setxattr \(k) on \(p): \(errno)")
            }
        }
        // Times last, deepest first, so that creating children does not move a directory's mtime.
        for it in items.reversed() {
            var ts = [timespec(tv_sec: Int(it.mtime.seconds), tv_nsec: Int(it.mtime.nanoseconds)),
                      timespec(tv_sec: Int(it.mtime.seconds), tv_nsec: Int(it.mtime.nanoseconds))]
            #expect(utimensat(AT_FDCWD, dir + "/" + it.path, &ts, AT_SYMLINK_NOFOLLOW) == 0)
        }
    }
}

/// What lstat and the xattr calls show for one path of a mounted tree.
struct Observed: Equatable, CustomStringConvertible {
    var path: String
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var nlink: UInt
    var mtime: String
    var rdev: UInt
    var target: String?
    var content: Data?
    var xattrs: [String: [UInt8]]

    var description: String {
        "\(path) mode=\(String(mode, radix: 8)) \(uid):\(gid) size=\(size) nlink=\(nlink) mtime=\(mtime) rdev=\(rdev) target=\(target ?? "-") xattrs=\(xattrs.keys.sorted())"
    }
}

/// Every path under `root` (except lost+found), sorted, with what it looks like.
func observe(_ root: String, skipping: Set<String> = ["lost+found"]) throws -> [Observed] {
    var out: [Observed] = []
    var queue = [""]
    while let rel = queue.popLast() {
        let names = try FileManager.default.contentsOfDirectory(atPath: root + "/" + rel).sorted()
        for n in names {
            let r = rel.isEmpty ? n : rel + "/" + n
            if skipping.contains(r) { continue }
            let p = root + "/" + r
            var st = stat()
            guard lstat(p, &st) == 0 else { throw MountFailed(message: "lstat \(p): \(String(cString: strerror(errno)))") }
            var o = Observed(
                path: r, mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, size: Int64(st.st_size),
                nlink: UInt(st.st_nlink), mtime: "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)", rdev: UInt(st.st_rdev),
                target: nil, content: nil, xattrs: [:])
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                o.size = 0
                queue.append(r)
            case S_IFLNK: o.target = readLink(p)
            case S_IFREG: o.content = FileManager.default.contents(atPath: p)
            default: break
            }
            var names = [CChar](repeating: 0, count: 65536)
            let n = llistxattr(p, &names, names.count)
            if n > 0 {
                for name in names[0..<n].split(separator: 0).map({ String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }) {
                    var value = [UInt8](repeating: 0, count: 65536)
                    let vn = lgetxattr(p, name, &value, value.count)
                    if vn >= 0 { o.xattrs[name] = Array(value[0..<vn]) }
                }
            }
            out.append(o)
        }
    }
    return out.sorted { $0.path < $1.path }
}

/// A mounted filesystem image, unmounted (and its loop device freed) on `unmount()` or deinit.
final class Mount {
    let dir: String
    let device: String
    private var mounted = true

    /// Attaches `image` (at `offset`) to a loop device and mounts it.
    init(_ image: String, at dir: String, offset: UInt64 = 0, readOnly: Bool) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var args = ["-f", "--show"]
        if offset > 0 { args += ["-o", "\(offset)"] }
        let l = try Tools.run("losetup", args + [image])
        guard l.status == 0 else { throw MountFailed(message: "losetup: \(l.output)") }
        device = l.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        self.dir = dir
        let m = try Tools.run("mount", ["-t", "ext4", "-o", readOnly ? "ro,noatime" : "rw", device, dir])
        guard m.status == 0 else {
            _ = try? Tools.run("losetup", ["-d", device])
            throw MountFailed(message: "mount: \(m.output)")
        }
    }

    func unmount() throws {
        guard mounted else { return }
        mounted = false
        let u = try Tools.run("umount", [dir])
        _ = try? Tools.run("losetup", ["-d", device])
        guard u.status == 0 else { throw MountFailed(message: "umount: \(u.output)") }
        // A mount namespace made while the filesystem was mounted (runc's, when containerd tests run alongside)
        // keeps its own reference: the filesystem is only shut down, and its journal clean, once that is gone
        // too. The loop device detaches at that moment, so wait for it before anyone reads the image.
        let backing = "/sys/block/\(URL(fileURLWithPath: device).lastPathComponent)/loop/backing_file"
        let deadline = Date().addingTimeInterval(60)
        while FileManager.default.fileExists(atPath: backing), Date() < deadline { usleep(100_000) }
    }

    deinit { try? unmount() }
}

struct MountFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
