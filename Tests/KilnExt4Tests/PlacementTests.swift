import Foundation
import KilnTestSupport
import Testing

import KilnCore
@testable import KilnExt4

/// The placement record (`manifest.layout`) and writing onto a base: checked with debugfs's view of where files
/// are, e2fsck, and byte comparisons of whole images.
@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"))
struct PlacementTests {
    struct Variant {
        var changeF2 = false
        var dropF1 = false
        var extraBytes = 0
    }

    /// One tree of every kind of node, with a variant's changes; returns the writer's placement file.
    static func write(_ path: String, base: EXT4.Base? = nil, _ v: Variant = Variant()) throws -> [UInt8] {
        var o = options(seed: "placement")
        o.base = base
        let w = try EXT4Writer(path: path, options: o)
        var g = SeededGenerator(seed: 7)
        let f1 = g.bytes(100 << 10)
        var f2 = g.bytes(300 << 10)
        if v.changeF2 {
            var h = SeededGenerator(seed: 99)
            f2 = h.bytes(f2.count)
        }
        try w.makeDirectory("a/b")
        if !v.dropF1 {
            try w.writeFile("a/f1", contents: f1)
            try w.makeHardLink("a/hard", to: "a/f1")
        }
        try w.writeFile("a/b/f2", contents: f2)
        try w.makeSymlink("a/link", target: BytePath(String(repeating: "t", count: 100)))
        try w.makeSpecialFile("a/null", kind: .characterDevice, device: EXT4.DeviceNumber(major: 1, minor: 3))
        for i in 0..<300 { try w.writeFile(BytePath("d/entry-\(i)"), contents: Array("\(i)".utf8)) }
        try w.setXattr("user.big", value: [UInt8](repeating: 0x41, count: 1500), at: "a/b/f2")
        if v.extraBytes > 0 { try w.writeFile("a/extra", contents: g.bytes(v.extraBytes)) }
        _ = try w.close()
        return w.placementFile
    }

    /// debugfs's list of the data blocks of `file`.
    static func blocks(_ image: String, _ file: String) throws -> [UInt64] {
        let r = try Tools.run("debugfs", ["-R", "blocks \(file)", image])
        return r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
    }

    /// 4 KiB blocks that differ between two images.
    static func differing(_ a: String, _ b: String) throws -> Set<UInt64> {
        let x = try Data(contentsOf: URL(fileURLWithPath: a)), y = try Data(contentsOf: URL(fileURLWithPath: b))
        var out = Set<UInt64>()
        let n = max(x.count, y.count)
        var at = 0
        while at < n {
            let p = at < x.count ? x[at..<min(at + 4096, x.count)] : Data()
            let q = at < y.count ? y[at..<min(at + 4096, y.count)] : Data()
            if Data(p) + Data(count: 4096 - p.count) != Data(q) + Data(count: 4096 - q.count) { out.insert(UInt64(at / 4096)) }
            at += 4096
        }
        return out
    }

    static func base(_ file: [UInt8]) throws -> EXT4.Base {
        let p = try EXT4.Placement(decoding: file)
        return EXT4.Base(placement: p, keep: Set(p.inodes.map(\.number)))
    }

    /// A chain of deep directories (a record is input: it could be one): with a limit, every path stops
    /// growing past it, and the shallow ones are whole.
    @Test func pathsWithALimitStayBounded() throws {
        let s = try Scratch()
        let w = try EXT4Writer(path: s.path("deep.img"), options: options(seed: "deep"))
        let name = String(repeating: "n", count: 200)
        let chain = BytePath((0..<60).map { _ in name }.joined(separator: "/"))
        try w.makeDirectory(chain)
        try w.writeFile("top/file", contents: [1])
        _ = try w.close()
        let p = try EXT4.Placement(decoding: w.placementFile)
        let full = p.pathsByInode()
        let limited = p.pathsByInode(limit: 512)
        #expect(Set(full.keys) == Set(limited.keys))
        let longest = full.values.map { $0.bytes.count }.max() ?? 0
        #expect(longest > 12_000)
        #expect(limited.values.allSatisfy { $0.bytes.count < 512 + 256 })
        #expect(limited.values.contains("/top/file"))
        for (ino, path) in limited { #expect(full[ino]?.hasPrefix(path) == true) }
    }

    @Test func recordsWhatDebugfsSees() throws {
        let s = try Scratch()
        let img = s.path("v1.img")
        let file = try Self.write(img)
        let p = try EXT4.Placement(decoding: file)
        let reencoded = p.encoded() == file
        #expect(reencoded, "decoding and encoding again changes the record")
        let paths = p.pathsByInode()
        let byNumber = p.inodesByNumber()
        for path in ["/a/f1", "/a/b/f2", "/a/link", "/d/entry-7"] {
            let ino = try #require(paths.first { $0.value == BytePath(path) }?.key, "\(path) not recorded")
            let recorded = (byNumber[ino]?.runs ?? []).flatMap { Array($0) }
            #expect(recorded == (try Self.blocks(img, path)), "\(path)")
            let stat = try Tools.run("debugfs", ["-R", "stat \(path)", img]).stdout
            #expect(stat.contains("Inode: \(ino) "), "\(path) is not inode \(ino):\n\(stat)")
        }
        // The hard link is one inode reached by two entries.
        let f1 = p.entries.filter { $0.name == Array("f1".utf8) || $0.name == Array("hard".utf8) }.map(\.inode)
        #expect(f1.count == 2 && f1[0] == f1[1])
        #expect(byNumber.values.contains { $0.xattrBlock != nil })
    }

    @Test func theSameTreeOnItsOwnBaseIsByteIdentical() throws {
        let s = try Scratch()
        let v1 = s.path("v1.img"), v2 = s.path("v2.img")
        let file = try Self.write(v1)
        let again = try Self.write(v2, base: try Self.base(file))
        let sameRecord = again == file
        #expect(sameRecord, "the placement records differ")
        #expect(try Self.differing(v1, v2).isEmpty)
    }

    @Test func aChangedFileChangesOnlyItsBlocks() throws {
        let s = try Scratch()
        let v1 = s.path("v1.img"), v2 = s.path("v2.img")
        let file = try Self.write(v1)
        _ = try Self.write(v2, base: try Self.base(file), Variant(changeF2: true))
        try expectClean(v2)
        let f2 = Set(try Self.blocks(v2, "/a/b/f2"))
        #expect(f2 == Set(try Self.blocks(v1, "/a/b/f2")))
        #expect(try Self.differing(v1, v2) == f2)
    }

    @Test func newContentFillsWhatWentAway() throws {
        let s = try Scratch()
        let v1 = s.path("v1.img"), v2 = s.path("v2.img")
        let file = try Self.write(v1)
        let p = try EXT4.Placement(decoding: file)
        let f1 = try Self.blocks(v1, "/a/f1")
        // f1 is gone; a new file of the same size takes its blocks and its inode number.
        var keep = Set(p.inodes.map(\.number))
        let f1Inode = try #require(p.pathsByInode().first { $0.value == "/a/f1" }?.key)
        keep.remove(f1Inode)
        _ = try Self.write(v2, base: EXT4.Base(placement: p, keep: keep), Variant(dropF1: true, extraBytes: 100 << 10))
        try expectClean(v2)
        #expect(try Self.blocks(v2, "/a/extra") == f1)
        #expect(try Tools.run("debugfs", ["-R", "stat /a/extra", v2]).stdout.contains("Inode: \(f1Inode) "))
        #expect(try Self.blocks(v2, "/a/b/f2") == (try Self.blocks(v1, "/a/b/f2")))
    }

    @Test func growsWhenTheContentNoLongerFits() throws {
        let s = try Scratch()
        let v1 = s.path("v1.img"), v2 = s.path("v2.img")
        let file = try Self.write(v1)
        let before = try EXT4.Placement(decoding: file)
        let after = try EXT4.Placement(decoding: try Self.write(v2, base: try Self.base(file), Variant(extraBytes: 200 << 20)))
        try expectClean(v2)
        #expect(after.blockCount > before.blockCount)
        #expect(after.inodesPerGroup == before.inodesPerGroup && after.uuid == before.uuid && after.journalRuns == before.journalRuns)
        #expect(Array(after.groups.prefix(before.groups.count)) == before.groups)
        #expect(try Self.blocks(v2, "/a/b/f2") == (try Self.blocks(v1, "/a/b/f2")))
    }

    @Test func damagedRecordsAreRefused() throws {
        let s = try Scratch()
        let file = try Self.write(s.path("v1.img"))
        // Every truncation is an error, never a crash or a partial record.
        for n in stride(from: 0, to: file.count, by: 97) {
            #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: Array(file.prefix(n))) }
        }
        var bad = file
        bad[0] ^= 1
        #expect(throws: EXT4.Placement.Error.badMagic) { try EXT4.Placement(decoding: bad) }
        // A huge group count in the header.
        bad = file
        for i in 0..<8 { bad[64 + i] = 0xFF }
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: bad) }
        // Trailing bytes.
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: file + [0]) }
        // Consistent in form but not in meaning: two files owning one block, a file over an inode table, a
        // reserved inode, an entry naming an inode that is not recorded.
        let p = try EXT4.Placement(decoding: file)
        let files = p.inodes.indices.filter { p.inodes[$0].kind == .regular && !p.inodes[$0].runs.isEmpty }
        try #require(files.count >= 2)
        var shared = p
        shared.inodes[files[1]].runs = p.inodes[files[0]].runs
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: shared.encoded()) }
        var overTable = p
        overTable.inodes[files[0]].runs = [p.groups[0].inodeTable..<(p.groups[0].inodeTable + 1)]
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: overTable.encoded()) }
        var reserved = p
        reserved.inodes.insert(EXT4.Placement.Inode(number: 8, kind: .regular, xattrBlock: nil, runs: []), at: 1)
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: reserved.encoded()) }
        var dangling = p
        dangling.entries.append(EXT4.Placement.Entry(directory: p.entries[p.entries.count - 1].directory, name: Array("zzzz".utf8), inode: 4_000))
        #expect(throws: EXT4.Placement.Error.self) { try EXT4.Placement(decoding: dangling.encoded()) }
        #expect(try EXT4.Placement(decoding: p.encoded()) == p)
    }
}
