import Foundation
import KilnCore
import KilnExt4
import KilnTestSupport
import Testing

/// The reader on filesystems damaged by e2fsprogs' own debugfs: refused with what is wrong and where, in
/// bounded work.
@Suite("damaged ext4 images", .enabled(if: Tools.haveE2fsprogs, "e2fsprogs (mke2fs, debugfs) is not installed"))
struct DamagedImageTests {
    func image(_ scratch: Scratch) throws -> String {
        let tree = scratch.path("tree")
        try FileManager.default.createDirectory(atPath: tree + "/dir/sub", withIntermediateDirectories: true)
        try Data("contents\n".utf8).write(to: URL(fileURLWithPath: tree + "/dir/file"))
        let image = scratch.path("fs.img")
        let made = try Tools.run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^has_journal", "-d", tree, image, "1M"])
        try #require(made.succeeded, "\(made.stderr)")
        return image
    }

    @Test("a directory linked into its own subtree: walk stops with the cycle named, instead of never ending")
    func directoryCycle() throws {
        let scratch = try Scratch()
        let image = try image(scratch)
        var paths: [String] = []
        try EXT4Reader(path: image).walk { path, _ in paths.append(path) }
        #expect(paths == ["/dir", "/lost+found", "/dir/file", "/dir/sub"], "\(paths)")

        let linked = try Tools.run("debugfs", ["-w", "-R", "ln /dir /dir/sub/loop", image])
        try #require(linked.succeeded, "\(linked.stderr)")
        #expect(try debugfs(image, "ls -p /dir/sub").contains("loop"))
        do {
            try EXT4Reader(path: image).walk { _, _ in }
            Issue.record("walk finished on a tree with a cycle")
        } catch let error as EXT4Reader.Error {
            #expect("\(error)".contains("/dir/sub/loop") && "\(error)".contains("cycle"), "\(error)")
            #expect(error.exitStatus == .input)
        }
    }

    @Test("128-byte inodes (mke2fs -I 128): no extra fields to read, and every file still reads back")
    func smallInodes() throws {
        let scratch = try Scratch()
        let tree = scratch.path("tree")
        try FileManager.default.createDirectory(atPath: tree + "/dir", withIntermediateDirectories: true)
        try Data("contents\n".utf8).write(to: URL(fileURLWithPath: tree + "/dir/file"))
        let image = scratch.path("small-inodes.img")
        let made = try Tools.run("mke2fs", ["-q", "-F", "-t", "ext4", "-I", "128", "-b", "1024", "-d", tree, image, "2M"])
        try #require(made.succeeded, "\(made.stderr)")
        #expect(try debugfs(image, "stats").contains("Inode size:\t          128"))
        let reader = try EXT4Reader(path: image)
        var paths: [String] = []
        try reader.walk { path, _ in paths.append(path) }
        #expect(paths == ["/dir", "/lost+found", "/dir/file"], "\(paths)")
        #expect(try reader.readFile("dir/file") == Array("contents\n".utf8))
        #expect(try reader.inodeChecksumIsValid(reader.stat("dir/file").inode))
    }
}
