import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// Big directories, big and fragmented files, deep trees and large attributes; sparse so they stay cheap.
@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"))
struct LargeCaseTests {
    /// 100k entries in one directory need a two-level htree.
    @Test(arguments: [EXT4.HashVersion.halfMD4, .tea])
    func hundredThousandEntries(hash: EXT4.HashVersion) throws {
        let s = try Scratch()
        let img = s.path("htree-\(hash).img")
        var o = options()
        o.hashVersion = hash
        let w = try EXT4Writer(path: img, options: o)
        let count = 100_000
        try w.makeDirectory("big")
        for i in 0..<count {
            let name = "big/entry-\(i)-" + String(repeating: "x", count: i % 40)
            if i % 1000 == 0 {
                try w.writeFile(BytePath(name), contents: [UInt8(i % 251)])
            } else {
                try w.makeSpecialFile(BytePath(name), kind: .fifo)
            }
        }
        // A mid-sized indexed directory (one index level) and names with non-ASCII bytes.
        for i in 0..<600 { try w.makeSpecialFile("mid/\(i)-é-名前-\(i * 7919)", kind: .socket) }
        _ = try w.close()
        try expectClean(img)

        let r = try EXT4Reader(path: img)
        let big = try r.stat("big")
        #expect(big.flags & 0x1000 != 0, "big is indexed")
        // Every name is found through the index alone.
        var missing = 0
        for i in stride(from: 0, to: count, by: 97) {
            let name = "entry-\(i)-" + String(repeating: "x", count: i % 40)
            if try r.htreeLookup(Array(name.utf8), in: big.inode) == nil { missing += 1 }
        }
        #expect(missing == 0)
        for i in stride(from: 0, to: 600, by: 13) {
            #expect(try r.htreeLookup(Array("\(i)-é-名前-\(i * 7919)".utf8), in: r.stat("mid").inode) != nil)
        }
        #expect(try r.htreeLookup(Array("not-there".utf8), in: big.inode) == nil)
        #expect(try r.list(inode: big.inode).count == count)
        #expect(try r.readFile("big/entry-5000-" + String(repeating: "x", count: 0)) == [UInt8(5000 % 251)])
        // debugfs's htree dump parses the index too.
        let dx = try debugfs(img, "htree_dump /big")
        #expect(dx.contains("Indirect levels: 1"))
    }

    /// A sparse file past 4 GiB, a file with over 1360 extents (a depth-2 tree) and one ending near 16 TiB.
    @Test func largeSparseAndFragmentedFiles() throws {
        let s = try Scratch()
        let img = s.path("files.img")
        let w = try EXT4Writer(path: img, options: options())
        // > 4 GiB with data at both ends.
        try w.beginFile("sparse")
        try w.appendFileData(Array(repeating: 0x11, count: 5000))
        try w.appendFileHole(5 << 30)
        try w.appendFileData(Array(repeating: 0x22, count: 5000))
        try w.finishFile()
        // 2000 one-block extents separated by holes.
        try w.beginFile("fragmented")
        for i in 0..<2000 {
            try w.appendFileData(Array(repeating: UInt8(i % 255 + 1), count: 4096))
            try w.appendFileHole(4096)
        }
        try w.finishFile()
        // The last block below the 16 TiB limit.
        try w.beginFile("huge")
        try w.appendFileHole(EXT4.maximumFileSize - 4096)
        try w.appendFileData(Array(repeating: 0x33, count: 4096))
        try w.finishFile()
        #expect(throws: EXT4Writer.Error.self) {
            try w.beginFile("too-big")
            try w.appendFileHole(EXT4.maximumFileSize + 1)
        }
        try w.finishFile()
        _ = try w.close()
        try expectClean(img)

        let r = try EXT4Reader(path: img)
        let sparse = try r.stat("sparse")
        #expect(sparse.size == 10000 + (5 << 30))
        #expect(sparse.sectors == 4 * 8)
        #expect(try r.readFile("sparse", offset: 0, length: 5000) == Array(repeating: 0x11, count: 5000))
        #expect(try r.readFile("sparse", offset: 5000, length: 10_000) == Array(repeating: 0, count: 10_000))
        #expect(try r.readFile("sparse", offset: 5000 + (5 << 30), length: 6000) == Array(repeating: 0x22, count: 5000))

        let frag = try r.stat("fragmented")
        let extents = try r.extents(inode: frag.inode)
        #expect(extents.count == 2000)
        let ex = try debugfs(img, "ex /fragmented")
        #expect(ex.contains(" 2/ 2 "), "depth-2 tree:\n\(ex.prefix(800))")
        for i in stride(from: 0, to: 2000, by: 111) {
            let data = try r.readFile("fragmented", offset: UInt64(i) * 8192, length: 8192)
            #expect(data == Array(repeating: UInt8(i % 255 + 1), count: 4096) + Array(repeating: 0, count: 4096))
        }
        let huge = try r.stat("huge")
        #expect(huge.size == EXT4.maximumFileSize)
        #expect(try r.readFile("huge", offset: EXT4.maximumFileSize - 4096) == Array(repeating: 0x33, count: 4096))
        #expect(try debugfs(img, "stat /huge").contains("Size: \(EXT4.maximumFileSize)"))
    }

    @Test func deepTreesLongNamesAndBigAttributes() throws {
        let s = try Scratch()
        let img = s.path("deep.img")
        let w = try EXT4Writer(path: img, options: options())
        var path = ""
        for i in 0..<300 { path += (i == 0 ? "" : "/") + "d\(i)" }
        try w.writeFile(BytePath(path + "/leaf"), contents: Array("deep".utf8))
        let name255 = String(repeating: "N", count: 250) + "12345"
        try w.writeFile(BytePath("names/" + name255), contents: [1])
        try w.makeDirectory(BytePath("names/" + String(repeating: "D", count: 255)))
        try w.makeSymlink(BytePath("names/" + String(repeating: "S", count: 255)), target: BytePath(String(repeating: "t", count: 4095)))
        // Attributes that overflow the inode into a block, in every namespace, sorted on disk.
        try w.writeFile("attrs", contents: [])
        let big = [UInt8]((0..<1500).map { UInt8(truncatingIfNeeded: $0) })
        try w.setXattr("user.big", value: big, at: "attrs")
        try w.setXattr("user.a", value: [1], at: "attrs")
        try w.setXattr("user.zz", value: [], at: "attrs")
        try w.setXattr("trusted.overlay.opaque", value: Array("y".utf8), at: "attrs")
        try w.setXattr("security.selinux", value: Array("system_u:object_r:container_file_t:s0\0".utf8), at: "attrs")
        try w.setXattr("user.ünïcode", value: [9, 9], at: "attrs")
        // POSIX ACL in the xattr interface format: user::rwx, user:1000:r-x, group::r--, mask::r-x, other::---.
        var acl: [UInt8] = [2, 0, 0, 0]
        for (tag, perm, id) in [(1, 7, UInt32.max), (2, 5, 1000), (4, 4, UInt32.max), (0x10, 5, UInt32.max), (0x20, 0, UInt32.max)] {
            acl += [UInt8(tag), 0, UInt8(perm), 0]
            acl += withUnsafeBytes(of: UInt32(id).littleEndian, Array.init)
        }
        try w.setXattr("system.posix_acl_access", value: acl, at: "attrs")
        try w.setXattr("user.a", value: [2], at: "attrs")  // replaces
        _ = try w.close()
        try expectClean(img)

        let r = try EXT4Reader(path: img)
        #expect(try r.readFile(path + "/leaf") == Array("deep".utf8))
        #expect(try r.readFile("names/" + name255) == [1])
        #expect(try r.readSymlink("names/" + String(repeating: "S", count: 255)) == String(repeating: "t", count: 4095))
        let x = try r.xattrs("attrs")
        #expect(x["user.big"] == big)
        #expect(x["user.a"] == [2])
        #expect(x["user.zz"] == [])
        #expect(x["trusted.overlay.opaque"] == Array("y".utf8))
        #expect(x["user.ünïcode"] == [9, 9])
        #expect(x["system.posix_acl_access"] == acl)
        #expect(try r.stat("attrs").sectors == 8, "one xattr block")
        let ea = try debugfs(img, "ea_list /attrs")
        #expect(ea.contains("user.big (1500)"))
        #expect(ea.contains("system.posix_acl_access"))
    }

    /// Beyond 65000 subdirectories a directory's link count is 1 (dir_nlink), as the kernel does.
    @Test func moreSubdirectoriesThanLinks() throws {
        let s = try Scratch()
        let img = s.path("nlink.img")
        let w = try EXT4Writer(path: img, options: options())
        for i in 0..<65_010 { try w.makeDirectory("wide/\(i)") }
        try w.makeDirectory("narrow/a")
        _ = try w.close()
        try expectClean(img)
        let r = try EXT4Reader(path: img)
        #expect(try r.stat("wide").linkCount == 1)
        #expect(try r.stat("narrow").linkCount == 3)
        #expect(try r.list("wide").count == 65_010)
    }

    /// More than 64 groups (two descriptor blocks), data across groups with superblock backups.
    @Test func manyGroups() throws {
        let s = try Scratch()
        let img = s.path("groups.img")
        let w = try EXT4Writer(path: img, options: options(size: .bytes(10 << 30)))
        // 200 MiB crosses groups 0 and 1 (whose start holds a superblock backup).
        let chunk = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) })
        try w.beginFile("data")
        for _ in 0..<200 { try w.appendFileData(chunk) }
        try w.finishFile()
        for i in 0..<2000 { try w.writeFile("many/\(i)", contents: Array(repeating: UInt8(i & 0xff), count: 5000)) }
        let summary = try w.close()
        #expect(summary.groupCount == 80)
        try expectClean(img)
        // Every backup superblock, with the descriptor copies meta_bg keeps in groups 1, 63, 64 and 65, works
        // for recovery on its own.
        for group in [1, 3, 25, 49] {
            let r = try Tools.run("e2fsck", ["-fn", "-b", "\(group * 32768)", "-B", "4096", img])
            let complaints = r.stdout.split(separator: "\n").filter { !$0.hasPrefix("Pass ") && !$0.contains(" files (") }
            #expect(r.status == 0 && complaints.isEmpty, "backup in group \(group):\n\(r.output)")
        }
        let r = try EXT4Reader(path: img)
        let st = try r.stat("data")
        let extents = try r.extents(inode: st.inode)
        #expect(extents.count >= 2)
        for e in extents {
            // No extent covers the backup superblock and descriptor at the start of group 1.
            #expect(!(e.physical...(e.physical + UInt64(e.length) - 1)).contains(32768))
        }
        #expect(try r.readFile("data", offset: 150 << 20, length: 1 << 20) == chunk)
        #expect(try r.readFile("many/1999") == Array(repeating: UInt8(1999 & 0xff), count: 5000))
        // The file map agrees with the extents.
        #expect(summary.fileMap.paths(overlappingBytes: (extents[1].physical * 4096)..<(extents[1].physical * 4096 + 1)) == ["/data"])
    }
}
