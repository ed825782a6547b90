import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// Files whose blocks are reserved first and written later from another thread, while the writer goes on with
/// other files; checked with e2fsck and read back with debugfs.
@Suite(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (e2fsck, debugfs, mke2fs) is not installed"))
struct ReservedFileTests {
    /// Deterministic bytes that differ at every offset.
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    @Test func writtenFromAnotherThreadWhileOtherFilesStream() throws {
        let s = try Scratch()
        let img = s.path("reserved.img")
        let w = try EXT4Writer(path: img, options: options())
        try w.writeFile("before", contents: Self.pattern(10_000, seed: 1))
        // 600 MiB: longer than one extent, crossing groups whose start holds superblock backups, so the
        // reservation has several runs and an extent tree.
        let size: UInt64 = 600 << 20 + 1234
        let reserved = try w.reserveFile("blobs/big", size: size, metadata: EXT4.Metadata(permissions: 0o444, time: testTime))
        let pastTheEnd = [UInt8](repeating: 1, count: 2)
        #expect(throws: EXT4ReservedFile.Error.self) { try pastTheEnd.withUnsafeBytes { try reserved.write($0, at: size - 1) } }

        // Pieces at the start, across every 128 MiB group boundary and at the very end; the rest stays zeros.
        var pieces: [(UInt64, [UInt8])] = [(0, Self.pattern(5000, seed: 2)), (size - 3000, Self.pattern(3000, seed: 3))]
        for g in 1...4 { pieces.append((UInt64(g) << 27 - 70_000, Self.pattern(150_000, seed: UInt64(10 + g)))) }
        let group = DispatchGroup()
        final class Failure: @unchecked Sendable { var error: Error? }
        let failure = Failure()
        let work = pieces
        DispatchQueue.global().async(group: group) {
            do {
                for (offset, bytes) in work {
                    // In uneven chunks, as a stream arrives.
                    var done = 0
                    while done < bytes.count {
                        let n = min(4093, bytes.count - done)
                        try bytes.withUnsafeBytes { try reserved.write(UnsafeRawBufferPointer(rebasing: $0[done..<(done + n)]), at: offset + UInt64(done)) }
                        done += n
                    }
                }
            } catch {
                failure.error = error
            }
        }
        for i in 0..<200 { try w.writeFile("other/f\(i)", contents: Self.pattern(i * 300, seed: UInt64(100 + i))) }
        group.wait()
        #expect(failure.error == nil)
        let empty = try w.reserveFile("blobs/empty", size: 0)
        #expect(empty.size == 0)
        let summary = try w.close()
        try expectClean(img)

        // The reservation's blocks are the file's, and nothing else's.
        let runs = summary.fileMap.blocks(of: "/blobs/big")
        #expect(runs.reduce(0) { $0 + $1.count } >= Int((size + 4095) / 4096))
        #expect(try debugfs(img, "stat /blobs/big").contains("Size: \(size)"))

        let out = s.path("big.out")
        _ = try Tools.run("debugfs", ["-R", "dump /blobs/big \(out)", img])
        let back = try FileHandle(forReadingFrom: URL(fileURLWithPath: out))
        defer { try? back.close() }
        #expect(try back.seekToEnd() == size)
        for (offset, bytes) in pieces {
            try back.seek(toOffset: offset)
            #expect(back.readData(ofLength: bytes.count) == Data(bytes), "piece at \(offset)")
        }
        // Between pieces: zeros.
        try back.seek(toOffset: 100 << 20)
        #expect(back.readData(ofLength: 1 << 20) == Data(count: 1 << 20))
        #expect(try EXT4Reader(path: img).readFile("other/f199") == Self.pattern(199 * 300, seed: 299))
        #expect(try EXT4Reader(path: img).readFile("before") == Self.pattern(10_000, seed: 1))
    }

    @Test func reservationsRespectAFixedSize() throws {
        let s = try Scratch()
        let w = try EXT4Writer(path: s.path("small.img"), options: options(size: .bytes(16 << 20)))
        #expect(throws: EXT4Writer.Error.self) { _ = try w.reserveFile("huge", size: 64 << 20) }
        try w.beginFile("open")
        #expect(throws: EXT4Writer.Error.fileStillOpen(path: "open")) { _ = try w.reserveFile("x", size: 10) }
        try w.finishFile()
    }
}
