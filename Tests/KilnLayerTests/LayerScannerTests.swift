import Foundation
import KilnCore
import KilnDigest
import KilnOCI
import KilnTestSupport
import Testing
@testable import KilnLayer

/// Layer blobs made by independent tools (python tarfile, gzip, pigz, zstd); digests computed by sha256sum.
@Suite struct LayerScannerTests {
    let dir: String

    init() throws {
        // Each test removes it when done.
        dir = try TemporaryDirectory(prefix: "kiln-layer").path
        let script = """
            import tarfile, io, sys, os, random
            r = random.Random(7)
            with tarfile.open(sys.argv[1] + '/layer.tar', 'w', format=tarfile.PAX_FORMAT) as t:
                d = tarfile.TarInfo('etc'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
                for i in range(200):
                    data = bytes(r.getrandbits(8) for _ in range(r.randint(0, 3000)))
                    f = tarfile.TarInfo(f'etc/file{i}'); f.size = len(data); f.mode = 0o644; f.mtime = 1700000000 + i
                    t.addfile(f, io.BytesIO(data))
                s = tarfile.TarInfo('bin/sh'); s.type = tarfile.SYMTYPE; s.linkname = 'busybox'; t.addfile(s)
                h = tarfile.TarInfo('etc/link'); h.type = tarfile.LNKTYPE; h.linkname = 'etc/file1'; t.addfile(h)
                c = tarfile.TarInfo('dev/null'); c.type = tarfile.CHRTYPE; c.devmajor = 1; c.devminor = 3; t.addfile(c)
                x = tarfile.TarInfo('cap'); x.size = 1; x.mode = 0o4755
                x.pax_headers = {'SCHILY.xattr.security.capability': '\\x01\\x00\\x00\\x02', 'SCHILY.xattr.user.note': 'hi'}
                t.addfile(x, io.BytesIO(b'!'))
            """
        try LayerScannerTests.sh("/usr/bin/python3", ["-c", script, dir])
    }

    /// Runs a tool that must succeed; its standard output is returned and, when `stdout` names a file, written there.
    @discardableResult
    static func sh(_ exe: String, _ args: [String], stdout: String? = nil) throws -> ProcessResult {
        let r = try ProcessRunner().run(exe, args)
        guard r.status == 0 else { throw ToolFailed(command: ([exe] + args).joined(separator: " "), result: r) }
        if let stdout { try r.standardOutput.write(to: URL(fileURLWithPath: stdout)) }
        return r
    }

    struct ToolFailed: Error, CustomStringConvertible {
        var command: String
        var result: ProcessResult
        var description: String { "\(command): \(result)" }
    }

    /// sha256 computed by coreutils, not by kiln.
    static func sha256sum(_ path: String) throws -> String {
        "sha256:" + (try sh("/usr/bin/sha256sum", [path]).stdout.prefix(64))
    }

    func location(_ path: String) throws -> BlobLocation {
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        return BlobLocation(path: path, offset: 0, length: Int64(size), displayName: path)
    }

    func scan(_ path: String, _ c: Compression, consumer: ((TarEntry, EntryContent) throws -> Void)? = nil) throws -> LayerReport {
        try LayerScanner.scan(try location(path), compression: c, consumer: consumer)
    }

    @Test(arguments: ["gzip", "pigz", "zstd", "plain", "gzip-multimember", "zstd-skippable"])
    func digestsMatchCoreutils(tool: String) throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tar = dir + "/layer.tar"
        let out = dir + "/layer.out"
        var c = Compression.none
        switch tool {
        case "gzip": try Self.sh("/usr/bin/gzip", ["-nc", tar], stdout: out); c = .gzip
        case "pigz": try Self.sh("/usr/bin/pigz", ["-c", "-b", "32", tar], stdout: out); c = .gzip
        case "zstd": try Self.sh("/usr/bin/zstd", ["-q", "-c", tar], stdout: out); c = .zstd
        case "plain": try FileManager.default.copyItem(atPath: tar, toPath: out)
        case "gzip-multimember":
            // Two gzip members, as `cat a.gz b.gz` makes: the tar is split in the middle.
            let data = try Data(contentsOf: URL(fileURLWithPath: tar))
            let half = data.count / 2
            try data.prefix(half).write(to: URL(fileURLWithPath: dir + "/a"))
            try data.suffix(from: half).write(to: URL(fileURLWithPath: dir + "/b"))
            try Self.sh("/usr/bin/gzip", ["-n", dir + "/a", dir + "/b"])
            let joined = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.gz")) + Data(contentsOf: URL(fileURLWithPath: dir + "/b.gz"))
            try joined.write(to: URL(fileURLWithPath: out))
            c = .gzip
        case "zstd-skippable":
            // A skippable frame before and after the data frame, as zstd:chunked writes.
            try Self.sh("/usr/bin/zstd", ["-q", "-c", tar], stdout: dir + "/z")
            let frame = Data([0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5])
            try (frame + Data(contentsOf: URL(fileURLWithPath: dir + "/z")) + frame).write(to: URL(fileURLWithPath: out))
            c = .zstd
        default: Issue.record("unknown tool")
        }
        let report = try scan(out, c)
        #expect(report.digest.description == (try Self.sha256sum(out)))
        #expect(report.diffID.description == (try Self.sha256sum(tar)))
        #expect(report.uncompressedSize == (try FileManager.default.attributesOfItem(atPath: tar)[.size] as? Int64))
        // Entry count from GNU tar's own listing.
        let listing = try Self.sh("/usr/bin/tar", ["-tf", tar]).stdout
        #expect(report.entryCount == listing.split(separator: "\n").count)
        #expect(report.streamIsSound, "\(report)")
    }

    @Test func entriesCarryMetadataXattrsAndData() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var seen: [BytePath: TarEntry] = [:]
        var dataHash: [BytePath: Digest] = [:]
        _ = try scan(dir + "/layer.tar", .none) { entry, content in
            seen[entry.normalizedPath] = entry
            let h = SHA256Hasher()
            try content.forEachBlock { buf, _ in h.update(buf) }
            dataHash[entry.normalizedPath] = h.finalize()
        }
        #expect(seen["bin/sh"]?.kind == .symlink)
        #expect(seen["bin/sh"]?.linkTarget == "busybox")
        #expect(seen["etc/link"]?.kind == .hardlink)
        #expect(seen["etc/link"]?.linkTarget == "etc/file1")
        #expect(seen["dev/null"]?.kind == .characterDevice)
        #expect(seen["dev/null"]?.deviceMajor == 1 && seen["dev/null"]?.deviceMinor == 3)
        #expect(seen["cap"]?.permissions == 0o4755)
        let xattrs = Dictionary(uniqueKeysWithValues: (seen["cap"]?.xattrs ?? []).map { ($0.name, $0.value) })
        #expect(xattrs["security.capability"] == [1, 0, 0, 2])
        #expect(xattrs["user.note"] == Array("hi".utf8))
        #expect(seen["etc/file5"]?.modificationTime.seconds == 1_700_000_005)
        #expect(dataHash["cap"] == SHA256Hasher.hash(Array("!".utf8)))
    }

    @Test func corruptAndTruncatedStreamsAreReported() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.sh("/usr/bin/gzip", ["-nc", dir + "/layer.tar"], stdout: dir + "/l.gz")
        var data = try Data(contentsOf: URL(fileURLWithPath: dir + "/l.gz"))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: dir + "/short.gz"))
        data[data.count / 2] ^= 0xff
        try data.write(to: URL(fileURLWithPath: dir + "/flip.gz"))
        let short = try scan(dir + "/short.gz", .gzip)
        #expect(short.undersized)
        let flip = try scan(dir + "/flip.gz", .gzip)
        #expect(flip.decompressionError != nil || flip.tarError != nil || flip.undersized)

        // A gzip layer labelled as plain tar: libarchive (no filters) refuses it.
        let mislabelled = try scan(dir + "/l.gz", .none)
        #expect(!mislabelled.streamIsSound)
        // A decompression bomb stops at the limit.
        let bomb = try LayerScanner.scan(try location(dir + "/l.gz"), compression: .gzip, uncompressedLimit: 4096)
        #expect(bomb.decompressionError?.contains("limit") == true)
        #expect(bomb.exceededLimit)
        #expect(!flip.exceededLimit && !short.exceededLimit)
    }

    /// The sink gets the stored bytes exactly once and in order, on the reading thread, for sound blobs and for
    /// blobs whose decompression fails part way (the stored digest still covers every byte).
    @Test(arguments: ["sound", "corrupt", "bomb"])
    func storedSinkReceivesEveryStoredByte(kind: String) throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A layer of several MiB so that the blob spans many read-ahead chunks.
        try Self.sh("/usr/bin/python3", ["-c", """
            import tarfile, io, sys, random
            r = random.Random(11)
            with tarfile.open(sys.argv[1], 'w') as t:
                for i in range(40):
                    data = r.randbytes(r.randint(100_000, 400_000))
                    f = tarfile.TarInfo(f'f{i}'); f.size = len(data); t.addfile(f, io.BytesIO(data))
            """, dir + "/big.tar"])
        try Self.sh("/usr/bin/gzip", ["-nc", dir + "/big.tar"], stdout: dir + "/big.gz")
        var data = try Data(contentsOf: URL(fileURLWithPath: dir + "/big.gz"))
        if kind == "corrupt" {
            data[data.count / 3] ^= 0x55
            try data.write(to: URL(fileURLWithPath: dir + "/big.gz"))
        }
        final class Collected: @unchecked Sendable {
            var bytes = Data()
            var calls = 0
        }
        let collected = Collected()
        let sink = StoredBytesSink { chunk in
            collected.bytes.append(contentsOf: chunk)
            collected.calls += 1
        }
        let report = try LayerScanner.scan(try location(dir + "/big.gz"), compression: .gzip,
                                           uncompressedLimit: kind == "bomb" ? 1 << 20 : .max, storedSink: sink)
        #expect(collected.bytes == data)
        #expect(collected.calls > 1)
        #expect(report.digest.description == (try Self.sha256sum(dir + "/big.gz")))
        #expect(report.size == Int64(data.count))
        if kind == "sound" { #expect(report.streamIsSound) } else { #expect(!report.streamIsSound) }
    }

    @Test func consumerErrorsAbortTheScan() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            _ = try scan(dir + "/layer.tar", .none) { _, _ in throw Stop() }
        }
    }

    /// Some producers stop right after the last entry's data (no padding, no end-of-archive blocks); Go's
    /// archive/tar, and so containerd and umoci, accept that. A stop inside an entry's data is truncation.
    @Test func missingEndOfArchiveIsAcceptedButTruncatedDataIsNot() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar"))
        // `cap` (1 byte of data) is the last entry: its data starts 512 bytes before the padded end blocks.
        let endOfData = try #require(try Self.lastDataEnd(data))
        try data.prefix(endOfData).write(to: URL(fileURLWithPath: dir + "/noend.tar"))
        let noEnd = try scan(dir + "/noend.tar", .none)
        #expect(noEnd.missingEndOfArchive)
        #expect(noEnd.streamIsSound, "\(noEnd)")
        #expect(noEnd.diffID.description == (try Self.sha256sum(dir + "/noend.tar")))

        try data.prefix(endOfData - 600).write(to: URL(fileURLWithPath: dir + "/cut.tar"))
        let cut = try scan(dir + "/cut.tar", .none)
        #expect(cut.tarTruncated && !cut.undersized, "\(cut)")
        #expect(!cut.streamIsSound)
    }

    /// The offset just past the last entry's data, found with Python's tarfile (an independent reader).
    static func lastDataEnd(_ data: Data) throws -> Int? {
        let scratch = try TemporaryDirectory(prefix: "kiln-layer-end")
        defer { scratch.remove() }
        let input = scratch.path("layer.tar")
        try data.write(to: URL(fileURLWithPath: input))
        let out = try sh("/usr/bin/python3", ["-c", "import tarfile,sys; m=tarfile.open(sys.argv[1]).getmembers()[-1]; print(m.offset_data + m.size)", input])
        return Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
