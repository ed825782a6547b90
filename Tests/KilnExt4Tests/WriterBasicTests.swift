import Foundation
import Testing

import KilnCore
@testable import KilnExt4

@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"))
struct WriterBasicTests {
    @Test func emptyFilesystemIsClean() throws {
        let s = try Scratch()
        let img = s.path("empty.img")
        let w = try EXT4Writer(path: img, options: options())
        let summary = try w.close()
        #expect(summary.blockSize == 4096)
        #expect(summary.byteSize == summary.blockCount * 4096)
        try expectClean(img)
        let dump = try Tools.run("dumpe2fs", ["-h", img]).stdout
        for feature in ["has_journal", "ext_attr", "dir_index", "filetype", "extent", "64bit", "flex_bg", "sparse_super",
                        "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum"] {
            #expect(dump.contains(feature), "feature \(feature) missing:\n\(dump)")
        }
        #expect(dump.contains("Reserved block count:     0"))
        #expect(dump.contains("Filesystem UUID:          \(summary.uuid)"))
        let r = try EXT4Reader(path: img)
        #expect(r.info.blockCount == summary.blockCount)
        #expect(r.info.freeBlocks == summary.freeBlocks)
        #expect(r.info.freeInodes == summary.freeInodes)
        #expect(try r.list("/").map(\.name) == ["lost+found"])
        // Unwritten blocks stay holes: the file occupies far less than its size.
        var st = stat()
        #expect(lstat(img, &st) == 0)
        #expect(UInt64(st.st_blocks) * 512 < summary.byteSize / 4)
    }

    /// A tree with every kind of node, checked with e2fsck, debugfs and the reader.
    @Test func everyKindOfNode() throws {
        let s = try Scratch()
        let img = s.path("small.img")
        let w = try EXT4Writer(path: img, options: options())
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let meta = EXT4.Metadata(
            permissions: 0o4755, uid: 100_000, gid: 70_000,
            accessTime: EXT4.Timestamp(seconds: 1_600_000_000, nanoseconds: 1),
            modificationTime: EXT4.Timestamp(seconds: 1_650_000_000, nanoseconds: 999_999_999),
            changeTime: EXT4.Timestamp(seconds: 1_660_000_000, nanoseconds: 5),
            creationTime: EXT4.Timestamp(seconds: 1_500_000_000, nanoseconds: 7))
        try w.makeDirectory("etc", metadata: EXT4.Metadata(permissions: 0o1777, time: testTime))
        try w.writeFile("etc/hostname", contents: Array("kiln\n".utf8))
        try w.writeFile("bin/tool", contents: big, metadata: meta)
        try w.makeSymlink("link", target: "etc/hostname")
        let longTarget = String(repeating: "abcdefgh/", count: 455)  // 4095 bytes
        try w.makeSymlink("longlink", target: BytePath(longTarget))
        try w.makeHardLink("hard", to: "etc/hostname")
        try w.makeSpecialFile("dev/null", kind: .characterDevice, device: EXT4.DeviceNumber(major: 1, minor: 3))
        try w.makeSpecialFile("dev/big", kind: .blockDevice, device: EXT4.DeviceNumber(major: 259, minor: 70_000))
        try w.makeSpecialFile("dev/fifo", kind: .fifo)
        try w.makeSpecialFile("dev/sock", kind: .socket)
        try w.setXattr("user.test", value: Array("hello".utf8), at: "bin/tool")
        try w.setXattr("security.capability", value: [1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: "bin/tool")
        try w.writeFile("empty", contents: [])
        let summary = try w.close()
        try expectClean(img)

        // debugfs, an independent reader.
        let stat = try debugfs(img, "stat /bin/tool")
        #expect(stat.contains("Size: 100000"))
        #expect(stat.contains("User: 100000   Group: 70000"))
        #expect(stat.contains("Mode:  04755"))
        #expect(stat.contains("mtime: 0x62590080:ee6b27fc"), "\(stat)")
        #expect(try debugfs(img, "cat /etc/hostname") == "kiln\n")
        #expect(try debugfs(img, "stat /etc/hostname").contains("Links: 2"))
        #expect(try debugfs(img, "stat /dev/big").contains("Device major/minor number: 259:70000"))
        let out = s.path("rdump")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try Tools.run("debugfs", ["-R", "rdump / \(out)", img])
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/bin/tool")) == Data(big))
        #expect(readLink(out + "/longlink") == longTarget)

        // The reader.
        let r = try EXT4Reader(path: img)
        #expect(try r.readFile("bin/tool") == big)
        #expect(try r.readFile("empty") == [])
        #expect(try r.readSymlink("link") == "etc/hostname")
        #expect(try r.readSymlink("longlink") == longTarget)
        #expect(try r.readFile("link") == Array("kiln\n".utf8))
        let st = try r.stat("bin/tool")
        #expect(st.permissions == 0o4755 && st.uid == 100_000 && st.gid == 70_000)
        #expect(st.modificationTime == meta.modificationTime && st.accessTime == meta.accessTime)
        #expect(st.changeTime == meta.changeTime && st.creationTime == meta.creationTime)
        #expect(try r.stat("etc").permissions == 0o1777)
        #expect(try r.stat("hard").inode == r.stat("etc/hostname").inode)
        #expect(try r.stat("hard").linkCount == 2)
        #expect(try r.stat("dev/null").device == EXT4.DeviceNumber(major: 1, minor: 3))
        #expect(try r.stat("dev/big").device == EXT4.DeviceNumber(major: 259, minor: 70_000))
        #expect(try r.stat("dev/sock").kind == .socket)
        #expect(try r.stat("dev/fifo").kind == .fifo)
        let x = try r.xattrs("bin/tool")
        #expect(x["user.test"] == Array("hello".utf8))
        #expect(x["security.capability"]?.count == 20)
        // Missing parents were created 0755, root-owned, at the default time.
        let bin = try r.stat("bin")
        #expect(bin.permissions == 0o755 && bin.uid == 0 && bin.modificationTime == testTime)
        // The file map names the file that owns a data block.
        let blocks = summary.fileMap.blocks(of: "/bin/tool")
        #expect(!blocks.isEmpty)
        let first = try #require(blocks.first)
        #expect(summary.fileMap.paths(overlappingBlocks: first.lowerBound..<(first.lowerBound + 1)) == ["/bin/tool"])
        let extents = try r.extents(inode: st.inode)
        #expect(extents.map { $0.physical..<($0.physical + UInt64($0.length)) } == blocks)
        for ino in [st.inode, try r.stat("etc").inode, 2, 8, 11] {
            #expect(try r.inodeChecksumIsValid(ino))
        }
    }

    @Test func sameCallsGiveIdenticalBytes() throws {
        let s = try Scratch()
        func build(_ name: String) throws -> Data {
            let img = s.path(name)
            let w = try EXT4Writer(path: img, options: options(seed: "sha256:abc"))
            for i in 0..<300 {
                try w.writeFile("d\(i % 7)/f\(i)", contents: Array(repeating: UInt8(i & 0xff), count: i * 37))
            }
            try w.makeSymlink("d1/l", target: "../d2")
            try w.setXattr("user.k", value: [1, 2, 3], at: "d3")
            try w.remove("d4")
            _ = try w.close()
            return try Data(contentsOf: URL(fileURLWithPath: img))
        }
        let a = try build("a.img")
        let b = try build("b.img")
        #expect(a == b)
        try expectClean(s.path("a.img"))
        // A different seed gives a different UUID.
        let w = try EXT4Writer(path: s.path("c.img"), options: options(seed: "other"))
        let other = try w.close()
        let r = try EXT4Reader(path: s.path("a.img"))
        #expect(r.info.uuid != other.uuid)
    }

    @Test func writesAtAnOffset() throws {
        let s = try Scratch()
        let img = s.path("gpt.img")
        let offset: UInt64 = 1 << 20
        // Something the caller put before the filesystem (e.g. a GPT) survives.
        try Data(repeating: 0xAB, count: 512).write(to: URL(fileURLWithPath: img))
        let w = try EXT4Writer(path: img, offset: offset, options: options(size: .bytes(64 << 20)))
        try w.writeFile("hello", contents: Array("world".utf8))
        let summary = try w.close()
        #expect(summary.byteOffset == offset)
        #expect(summary.byteSize == 64 << 20)
        try expectClean(img, offset: offset)
        let head = try Data(contentsOf: URL(fileURLWithPath: img)).prefix(512)
        #expect(head == Data(repeating: 0xAB, count: 512))
        let r = try EXT4Reader(path: img, offset: offset)
        #expect(try r.readFile("hello") == Array("world".utf8))
        let attrs = try FileManager.default.attributesOfItem(atPath: img)
        #expect((attrs[.size] as? UInt64) == offset + (64 << 20))
    }

    @Test func badInputIsRejected() throws {
        let s = try Scratch()
        let w = try EXT4Writer(path: s.path("bad.img"), options: options(size: .bytes(16 << 20)))
        let long = BytePath(String(repeating: "n", count: 256))
        #expect(throws: EXT4Writer.Error.nameTooLong(path: long, length: 256)) { try w.writeFile(long, contents: []) }
        #expect(throws: EXT4Writer.Error.nameTooLong(path: "a/\(long)/b", length: 256)) {
            try w.makeDirectory("a/\(long)/b")
        }
        let ok = BytePath(String(repeating: "n", count: 255))
        try w.writeFile(ok, contents: [1])
        #expect(throws: EXT4Writer.Error.invalidSymlinkTarget(path: "l", length: 4096)) {
            try w.makeSymlink("l", target: BytePath(String(repeating: "t", count: 4096)))
        }
        #expect(throws: EXT4Writer.Error.unsupportedXattr(name: "bogus.name")) {
            try w.setXattr("bogus.name", value: [], at: ok)
        }
        #expect(throws: EXT4Writer.Error.self) { try w.setXattr("user.big", value: Array(repeating: 1, count: 5000), at: ok) }
        #expect(throws: EXT4Writer.Error.notFound(path: "missing")) { try w.setXattr("user.a", value: [], at: "missing") }
        #expect(throws: EXT4Writer.Error.cannotReplaceRoot(path: "/")) { try w.writeFile("/", contents: []) }
        #expect(throws: EXT4Writer.Error.protectedPath(path: "lost+found")) { try w.remove("lost+found") }
        #expect(throws: EXT4Writer.Error.noOpenFile) { try w.appendFileData([1]) }
        try w.beginFile("open", metadata: nil)
        #expect(throws: EXT4Writer.Error.fileStillOpen(path: "open")) { try w.makeDirectory("x") }
        try w.finishFile()
        #expect(throws: EXT4Writer.Error.isADirectory(path: "hl")) { try w.makeHardLink("hl", to: "/") }

        // Content larger than an explicit size: the error says how much is needed.
        let small = try EXT4Writer(path: s.path("small.img"), options: options(size: .bytes(12 << 20)))
        try small.writeFile("a", contents: Array(repeating: 7, count: 10 << 20))
        do {
            _ = try small.close()
            Issue.record("close should fail")
        } catch EXT4Writer.Error.doesNotFit(let needed, let available) {
            #expect(available == 12 << 20)
            #expect(needed > available)
            // The figure is real: that size works.
            let again = try EXT4Writer(path: s.path("fit.img"), options: options(size: .bytes(needed)))
            try again.writeFile("a", contents: Array(repeating: 7, count: 10 << 20))
            _ = try again.close()
            try expectClean(s.path("fit.img"))
        }
        // Streaming past an explicit size fails early too.
        let tiny = try EXT4Writer(path: s.path("tiny.img"), options: options(size: .bytes(8 << 20)))
        try tiny.beginFile("big")
        #expect(throws: EXT4Writer.Error.self) { try tiny.appendFileData(Array(repeating: 1, count: 9 << 20)) }
    }
}
