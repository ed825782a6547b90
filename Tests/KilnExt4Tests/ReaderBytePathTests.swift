import Foundation
import KilnCore
import KilnExt4
import KilnTestSupport
import Testing

/// Names are bytes in the reader too: NFC and NFD twins and names that are not UTF-8 are distinct files, walked,
/// resolved and read by the bytes they hold.
@Suite("ext4 reader: byte paths", .enabled(if: Tools.haveE2fsprogs, "e2fsprogs (debugfs, e2fsck) is not installed"))
struct ReaderBytePathTests {
    static let nfc: [UInt8] = Array("caf\u{E9}".utf8)  // é as one code point
    static let nfd: [UInt8] = Array("cafe\u{301}".utf8)  // e + combining acute
    static let invalid: [UInt8] = [0x78, 0xFF, 0xFE, 0x2D, 0xC3]  // not UTF-8

    @Test func twinsAndInvalidNamesAreWalkedResolvedAndReadByTheirBytes() throws {
        let s = try Scratch()
        let img = s.path("names.img")
        let w = try EXT4Writer(path: img, options: options())
        _ = try w.makeDirectory(BytePath("d"))
        let names = [Self.nfc, Self.nfd, Self.invalid]
        for (i, name) in names.enumerated() {
            try w.writeFile(BytePath(Array("d/".utf8) + name), contents: Array(repeating: UInt8(i + 1), count: 10 + i))
        }
        _ = try w.makeSymlink(BytePath(Array("d/link-".utf8) + Self.invalid), target: BytePath(Self.invalid))
        _ = try w.close()
        try expectClean(img)

        // debugfs, on its own, sees the three files under their exact bytes (its -p listing prints names raw).
        // Read as hex: the output is not text.
        let listing = try Tools.run("/bin/sh", ["-c", "debugfs -R 'ls -p /d' '\(img)' 2>/dev/null | od -An -v -tx1 | tr -d ' \\n'"])
        try #require(listing.succeeded, "\(listing.stderr)")
        let hex = { (bytes: [UInt8]) in bytes.map { String(format: "%02x", $0) }.joined() }
        for name in names {
            #expect(listing.stdout.contains(hex([0x2F] + name + [0x2F])), "debugfs does not list \(BytePath(name)): \(listing.stdout)")
        }

        let r = try EXT4Reader(path: img)
        var walked: [BytePath: EXT4Reader.Stat] = [:]
        try r.walkPaths { path, stat in walked[path] = stat }
        for (i, name) in names.enumerated() {
            let path = BytePath(Array("/d/".utf8) + name)
            #expect(walked[path]?.size == UInt64(10 + i), "walkPaths did not give \(path)")
            #expect(try r.readFile(path) == Array(repeating: UInt8(i + 1), count: 10 + i), "\(path)")
            #expect(try r.stat(path).inode == walked[path]?.inode)
        }
        #expect(walked.count == 6, "\(walked.keys.sorted())")
        let link = BytePath(Array("/d/link-".utf8) + Self.invalid)
        #expect(try r.readSymlink(link) == Self.invalid)
        // Followed, the relative target finds the file of that name beside the link.
        #expect(try r.resolve(link, followFinal: true) == r.stat(BytePath(Array("/d/".utf8) + Self.invalid)).inode)
        // A miss names the path escaped.
        do {
            _ = try r.resolve(BytePath(Array("/d/".utf8) + Self.invalid + [0x21]))
            Issue.record("resolved a name that is not there")
        } catch let error as EXT4Reader.Error {
            #expect("\(error)".contains("\\xff"), "\(error)")
        }
        // The String walk still shows every entry, for display, but cannot tell what was not UTF-8.
        var shown: [String] = []
        try r.walk { path, _ in shown.append(path) }
        #expect(shown.count == walked.count)
    }
}
