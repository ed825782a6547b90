import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// Paths resolve inside a subtree root the way containerd extracts layers (securejoin semantics).
@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"))
struct PathSemanticsTests {
    /// Entries of one directory reuse the walk of their parent; a removal in between must send the next entry
    /// down the tree again, where the parent may now be a symlink, a file, or a new directory.
    @Test func aParentReplacedBetweenEntriesIsWalkedAgain() throws {
        let s = try Scratch()
        let w = try EXT4Writer(path: s.path("parents.img"), options: options())
        let layer = try w.makeDirectory("fs")
        try w.writeFile("a/x", contents: [1], under: layer)
        try w.writeFile("a/y", contents: [2], under: layer)
        // The parent becomes a symlink to another directory: the next entry lands there.
        #expect(try w.remove("a", under: layer))
        try w.makeDirectory("b", under: layer)
        try w.makeSymlink("a", target: "b", under: layer)
        try w.writeFile("a/z", contents: [3], under: layer)
        #expect(try w.lookup("b/z", under: layer)?.size == 1)
        #expect(try w.lookup("a", under: layer)?.kind == .symlink)
        // The parent becomes a file: the next entry beneath it is refused.
        try w.writeFile("c/x", contents: [4], under: layer)
        try w.writeFile("c", contents: [5, 5], under: layer)
        #expect(throws: EXT4Writer.Error.notADirectory(path: "c/y")) { try w.writeFile("c/y", contents: [], under: layer) }
        // The parent is replaced by a new directory of the same name: the old one's entries are gone.
        try w.writeFile("d/x", contents: [6], under: layer)
        #expect(try w.remove("d", under: layer))
        try w.writeFile("d/y", contents: [7], under: layer)
        #expect(try w.children(of: "d", under: layer) == ["y"])
        // The entry replaced lies on the parent's own way (the parent is a symlink through it): same parent
        // bytes as the entry before, but it no longer resolves.
        try w.makeDirectory("e/sub", under: layer)
        try w.makeSymlink("via", target: "e/sub/..", under: layer)
        try w.writeFile("via/f1", contents: [9], under: layer)
        try w.writeFile("via/sub", contents: [9], under: layer)
        #expect(throws: EXT4Writer.Error.notADirectory(path: "via/f2")) { try w.writeFile("via/f2", contents: [], under: layer) }
        #expect(try w.children(of: "e", under: layer) == ["f1", "sub"])
        // The same parent under another root is another directory.
        let other = try w.makeDirectory("other")
        try w.writeFile("d/z", contents: [8], under: other)
        #expect(try w.children(of: "d", under: layer) == ["y"])
        #expect(try w.children(of: "d", under: other) == ["z"])
        _ = try w.close()
        let checked = try fsck(s.path("parents.img"))
        #expect(checked.status == 0, "\(checked)")
    }

    @Test func pathsStayInsideTheSubtreeRoot() throws {
        let s = try Scratch()
        let img = s.path("paths.img")
        let w = try EXT4Writer(path: img, options: options())
        let layer = try w.makeDirectory("snapshots/3/fs")
        // `..` is clamped at the subtree root, absolute paths start there.
        try w.writeFile("../../../escape", contents: [1], under: layer)
        try w.writeFile("/abs/file", contents: [2], under: layer)
        // Intermediate symlinks are followed inside the subtree root, absolute targets included.
        try w.makeSymlink("etc", target: "/real/etc", under: layer)
        try w.makeSymlink("up", target: "../../..", under: layer)
        try w.writeFile("etc/passwd", contents: [3], under: layer)
        try w.writeFile("up/x", contents: [4], under: layer)
        try w.makeSymlink("hop1", target: "hop2", under: layer)
        try w.makeSymlink("hop2", target: "/abs", under: layer)
        try w.writeFile("hop1/via-chain", contents: [5], under: layer)
        // The final component is never followed when creating: the symlink itself is replaced.
        try w.makeSymlink("final", target: "/abs/file", under: layer)
        try w.writeFile("final", contents: [6], under: layer)
        // Loops end in an error.
        try w.makeSymlink("loop1", target: "loop2", under: layer)
        try w.makeSymlink("loop2", target: "loop1", under: layer)
        #expect(throws: EXT4Writer.Error.symlinkLoop(path: "loop1/x")) { try w.writeFile("loop1/x", contents: [], under: layer) }
        // A non-directory in the middle is an error.
        #expect(throws: EXT4Writer.Error.notADirectory(path: "abs/file/x")) {
            try w.writeFile("abs/file/x", contents: [], under: layer)
        }
        #expect(try w.children(of: "/", under: layer) == ["abs", "escape", "etc", "final", "hop1", "hop2", "loop1", "loop2", "real", "up", "x"])
        #expect(try w.lookup("/escape") == nil)
        #expect(try w.lookup("etc/passwd", under: layer)?.size == 1)
        #expect(try w.lookup("final", under: layer)?.kind == .regular)
        #expect(try w.lookup("etc", under: layer)?.symlinkTarget == "/real/etc")
        #expect(try w.lookup("etc", under: layer, followSymlinks: true)?.kind == .directory)
        _ = try w.close()
        try expectClean(img)

        let r = try EXT4Reader(path: img)
        #expect(try r.readFile("snapshots/3/fs/escape") == [1])
        #expect(try r.readFile("snapshots/3/fs/abs/file") == [2])
        #expect(try r.readFile("snapshots/3/fs/real/etc/passwd") == [3])
        #expect(try r.readFile("snapshots/3/fs/x") == [4])
        #expect(try r.readFile("snapshots/3/fs/abs/via-chain") == [5])
        #expect(try r.readFile("snapshots/3/fs/final") == [6])
        #expect(try r.list("/").map(\.name) == ["lost+found", "snapshots"])
    }

    @Test func replacingAndMerging() throws {
        let s = try Scratch()
        let img = s.path("replace.img")
        let w = try EXT4Writer(path: img, options: options())
        let old = EXT4.Metadata(permissions: 0o700, uid: 1, gid: 1, time: EXT4.Timestamp(seconds: 1))
        let new = EXT4.Metadata(permissions: 0o750, uid: 2, gid: 3, time: EXT4.Timestamp(seconds: 2, nanoseconds: 3))
        try w.makeDirectory("d", metadata: old)
        try w.writeFile("d/keep", contents: [1])
        // Directory over directory merges and takes the newer metadata.
        try w.makeDirectory("d", metadata: new)
        #expect(try w.children(of: "d") == ["keep"])
        // A directory replaced by a file goes with everything in it.
        try w.makeDirectory("tree/a/b/c")
        try w.writeFile("tree/a/b/c/f", contents: Array(repeating: 9, count: 50_000))
        try w.writeFile("tree", contents: [7])
        // A file replaced by a directory.
        try w.writeFile("x", contents: [1])
        try w.makeDirectory("x")
        // Metadata of an existing directory can be updated later (the topmost layer wins).
        try w.setMetadata(EXT4.Metadata(permissions: 0o711, uid: 5, gid: 6, time: testTime), at: "x")
        // The root's metadata too.
        try w.setMetadata(EXT4.Metadata(permissions: 0o755, uid: 0, gid: 0, time: EXT4.Timestamp(seconds: 42)), at: "/")
        _ = try w.close()
        try expectClean(img)
        let r = try EXT4Reader(path: img)
        let d = try r.stat("d")
        #expect(d.permissions == 0o750 && d.uid == 2 && d.gid == 3 && d.modificationTime == new.modificationTime)
        #expect(try r.stat("tree").kind == .regular)
        #expect(try r.stat("x").kind == .directory)
        #expect(try r.stat("x").permissions == 0o711 && r.stat("x").uid == 5)
        #expect(try r.stat("/").modificationTime == EXT4.Timestamp(seconds: 42))
    }

    @Test func hardLinksAcrossSubtreesAndToSymlinks() throws {
        let s = try Scratch()
        let img = s.path("links.img")
        let w = try EXT4Writer(path: img, options: options())
        let one = try w.makeDirectory("snapshots/1/fs")
        let two = try w.makeDirectory("snapshots/2/fs")
        try w.writeFile("bin/busybox", contents: Array(repeating: 0x42, count: 10_000), under: one)
        try w.makeHardLink("bin/sh", to: "bin/busybox", under: one)
        try w.makeHardLink("bin/ls", to: "/bin/busybox", targetRoot: one, under: two)
        try w.makeSymlink("sym", target: "bin/busybox", under: one)
        try w.makeHardLink("sym-link", to: "sym", under: one)
        try w.makeHardLink("sym-link2", to: "sym", under: one)
        // Removing one name keeps the others.
        try w.remove("bin/sh", under: one)
        try w.makeHardLink("bin/sh2", to: "bin/busybox", under: one)
        #expect(try w.lookup("bin/busybox", under: one)?.linkCount == 3)
        _ = try w.close()
        try expectClean(img)
        let r = try EXT4Reader(path: img)
        let busybox = try r.stat("snapshots/1/fs/bin/busybox")
        #expect(busybox.linkCount == 3)
        #expect(try r.stat("snapshots/2/fs/bin/ls").inode == busybox.inode)
        #expect(try r.stat("snapshots/1/fs/bin/sh2").inode == busybox.inode)
        let sym = try r.stat("snapshots/1/fs/sym")
        #expect(sym.kind == .symlink && sym.linkCount == 3)
        #expect(try r.stat("snapshots/1/fs/sym-link2").inode == sym.inode)
        #expect(try r.readSymlink("snapshots/1/fs/sym-link") == "bin/busybox")
    }

    @Test func removedDataLeavesNoTrace() throws {
        let s = try Scratch()
        let img = s.path("remove.img")
        let w = try EXT4Writer(path: img, options: options())
        let secret = Array("TOP-SECRET-".utf8)
        var blob: [UInt8] = []
        while blob.count < 300_000 { blob += secret }
        try w.writeFile("tree/a/secret", contents: blob)
        try w.makeSymlink("tree/a/long", target: BytePath("TOP-SECRET-" + String(repeating: "s", count: 200)))
        for i in 0..<40 { try w.writeFile("tree/b/\(i)/f", contents: blob.prefix(5000 + i).map { $0 }) }
        try w.setXattr("user.x", value: [1], at: "tree/a/secret")
        let before = try #require(try w.lookup("tree/a/secret"))
        try w.writeFile("keep", contents: Array("kept".utf8))
        #expect(try w.remove("tree"))
        #expect(try w.remove("tree") == false)
        #expect(try w.children(of: "/") == ["keep", "lost+found"])
        let summary = try w.close()
        try expectClean(img)
        // Nothing of the removed files is left anywhere in the image.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: img))
        #expect(bytes.range(of: Data(secret)) == nil)
        #expect(summary.fileMap.paths == ["/keep"])
        #expect(before.size == UInt64(blob.count))
        let r = try EXT4Reader(path: img)
        #expect(try r.readFile("keep") == Array("kept".utf8))
    }
}
