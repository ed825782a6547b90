import Foundation
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
