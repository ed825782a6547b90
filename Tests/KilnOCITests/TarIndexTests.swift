import Foundation
import KilnCore
import KilnTestSupport
import Testing
@testable import KilnOCI

/// The archive index reads members in place; names come from ustar, GNU long names and pax records.
@Test func indexesMembersWrittenByPythonTarfile() throws {
    let scratch = try TemporaryDirectory(prefix: "kiln-tarindex")
    defer { scratch.remove() }
    let dir = scratch.path
    let longName = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 120)
    let script = """
        import tarfile, io, sys
        for fmt, name in ((tarfile.GNU_FORMAT, 'gnu.tar'), (tarfile.PAX_FORMAT, 'pax.tar'), (tarfile.USTAR_FORMAT, 'ustar.tar')):
            with tarfile.open(sys.argv[1] + '/' + name, 'w', format=fmt) as t:
                for n, data in (('./blobs/sha256/aa', b'hello'), ('manifest.json', b'[]'), ('empty', b'')):
                    i = tarfile.TarInfo(n); i.size = len(data); t.addfile(i, io.BytesIO(data))
                if fmt != tarfile.USTAR_FORMAT:
                    i = tarfile.TarInfo('\(longName)'); i.size = 3; t.addfile(i, io.BytesIO(b'abc'))
        """
    let made = try ProcessRunner().run("/usr/bin/python3", ["-c", script, dir])
    try #require(made.status == 0, "\(made)")
    for name in ["gnu.tar", "pax.tar", "ustar.tar"] {
        let index = try TarIndex(path: "\(dir)/\(name)")
        let blob = try #require(index.location(of: "blobs/sha256/aa"))
        #expect(try RangeReader(blob).readAll(limit: 100) == Array("hello".utf8))
        #expect(index.location(of: "manifest.json")?.length == 2)
        #expect(index.location(of: "empty")?.length == 0)
        if name != "ustar.tar" {
            let long = try #require(index.location(of: longName), "\(name)")
            #expect(try RangeReader(long).readAll(limit: 100) == Array("abc".utf8))
        }
    }
}

@Test func compressedAndBogusArchivesAreNamed() throws {
    let scratch = try TemporaryDirectory(prefix: "kiln-tarindex")
    defer { scratch.remove() }
    let dir = scratch.path
    try Data([0x1f, 0x8b, 8, 0] + [UInt8](repeating: 0, count: 1020)).write(to: URL(fileURLWithPath: dir + "/a.tar.gz"))
    try Data((0..<2048).map { UInt8(truncatingIfNeeded: $0 * 13 + 1) }).write(to: URL(fileURLWithPath: dir + "/junk"))
    #expect { try TarIndex(path: dir + "/a.tar.gz") } throws: { "\($0)".contains("gzip-compressed") }
    #expect { try TarIndex(path: dir + "/junk") } throws: { "\($0)".contains("not a tar archive") }
}

/// Sizes from an archive are refused before any arithmetic on them: a pax size of Int64.max, a negative one and
/// a base-256 size beyond 63 bits are input errors naming the archive and the member, never a trap.
@Test func hostileSizesAreRefusedWithoutOverflow() throws {
    let scratch = try TemporaryDirectory(prefix: "kiln-tarindex")
    defer { scratch.remove() }
    let dir = scratch.path
    let script = """
        import tarfile, io, sys
        d = sys.argv[1]
        for name, size in (('max.tar', '9223372036854775807'), ('neg.tar', '-5'), ('big.tar', '99999999999999999999999')):
            with tarfile.open(d + '/' + name, 'w', format=tarfile.PAX_FORMAT) as t:
                i = tarfile.TarInfo('index.json'); i.size = 2; i.pax_headers = {'size': size}
                t.addfile(i, io.BytesIO(b'{}'))
        # A GNU base-256 size field with every bit set.
        i = tarfile.TarInfo('blob'); i.size = 0
        h = bytearray(i.tobuf(tarfile.GNU_FORMAT))
        h[124:136] = b'\\xff' * 12
        h[148:156] = b'        '
        h[148:156] = ('%06o\\0 ' % sum(h)).encode()
        open(d + '/b256.tar', 'wb').write(bytes(h) + b'\\0' * 1024)
        """
    let made = try ProcessRunner().run("/usr/bin/python3", ["-c", script, dir])
    try #require(made.status == 0, "\(made)")
    for name in ["max.tar", "neg.tar", "big.tar", "b256.tar"] {
        #expect(throws: TarIndex.Error.self, "\(name)") { try TarIndex(path: "\(dir)/\(name)") }
        do { _ = try TarIndex(path: "\(dir)/\(name)") } catch {
            #expect("\(error)".contains(name), "\(error)")
        }
    }
    #expect(TarIndex.paxRecords(Array("9223372036854775807 path=x\n".utf8)).isEmpty)
    #expect(TarIndex.paxRecords(Array("3 path=x\n".utf8)).isEmpty)
}

/// Names are bytes: members that differ only in bytes that are not UTF-8 (which a lossy decoding would turn into
/// the same U+FFFD) stay apart, and a UTF-8 name finds only the member spelled with exactly its bytes.
@Test func membersAreKeyedByTheirBytes() throws {
    let scratch = try TemporaryDirectory(prefix: "kiln-tarindex")
    defer { scratch.remove() }
    let dir = scratch.path
    let script = """
        import tarfile, io, sys
        for fmt, name in ((tarfile.GNU_FORMAT, 'gnu.tar'), (tarfile.PAX_FORMAT, 'pax.tar')):
            with tarfile.open(sys.argv[1] + '/' + name, 'w', format=fmt, encoding='utf-8', errors='surrogateescape') as t:
                for n, data in (('\\udcff/layer.tar', b'ff'), ('\\udcfe/layer.tar', b'fe'), ('\\ufffd/layer.tar', b'replacement')):
                    i = tarfile.TarInfo(n); i.size = len(data); t.addfile(i, io.BytesIO(data))
        """
    let made = try ProcessRunner().run("/usr/bin/python3", ["-c", script, dir])
    try #require(made.status == 0, "\(made)")
    for name in ["gnu.tar", "pax.tar"] {
        let index = try TarIndex(path: "\(dir)/\(name)")
        #expect(index.members.count == 3, "\(name): \(index.members.keys.map(\.description))")
        for (bytes, content) in [([UInt8(0xFF)], "ff"), ([0xFE], "fe"), ([0xEF, 0xBF, 0xBD], "replacement")] {
            let member = try #require(index.location(of: BytePath(bytes + Array("/layer.tar".utf8))), "\(name): \(bytes)")
            #expect(try RangeReader(member).readAll(limit: 100) == Array(content.utf8), "\(name): \(bytes)")
        }
        let named = try #require(index.location(of: "\u{FFFD}/layer.tar"))
        #expect(try RangeReader(named).readAll(limit: 100) == Array("replacement".utf8))
        #expect(index.location(of: "\u{FFFD}/layer.tar")?.displayName.contains("\u{FFFD}") == true)
    }
}
