import Foundation
import KilnTestSupport
import Testing
@testable import KilnManifest

#if canImport(Glibc)
import Glibc
#endif

/// Blocks hashed while an image is written must give exactly what hashing the finished image gives, however
/// the writes fall: rewrites after a block was hashed, partial blocks, written zeros, punched holes.
@Suite struct LiveBlockHasherTests {
    static let block = 65_536

    /// Writes `bytes` at `offset` and tells the hasher, as the ext4 writer does: with the bytes written (whole
    /// blocks are hashed from them at once), or only the range (the worker reads the blocks back).
    func write(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, _ live: LiveBlockHasher, withBytes: Bool) throws {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        try #require(n == bytes.count)
        if withBytes {
            bytes.withUnsafeBytes { live.imageDidWrite(offset: offset, bytes: $0) }
        } else {
            live.imageDidChange(offset: offset, count: UInt64(bytes.count))
        }
    }

    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (fallocate is a GNU extension the Glibc module does not export).
    func punchHole(_ fd: Int32, offset: Int, count: Int) -> Bool {
        typealias Fallocate = @convention(c) (Int32, Int32, Int64, Int64) -> Int32
        guard let sym = dlsym(nil, "fallocate") else { return false }
        return unsafeBitCast(sym, to: Fallocate.self)(fd, 0x02 | 0x01, Int64(offset), Int64(count)) == 0
    }

    func waitUntil(_ live: LiveBlockHasher, hashed: Int) {
        let deadline = Date().addingTimeInterval(20)
        while live.blocksHashed < hashed, Date() < deadline { usleep(2000) }
    }

    @Test(arguments: [false, true])
    func earlyDigestsMatchAFreshPassOverTheFinishedImage(withBytes: Bool) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("data.img")
        let urandom = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? urandom.close() }
        func random(_ n: Int) -> [UInt8] { [UInt8](urandom.readData(ofLength: n)) }
        let bs = Self.block
        for round in 0..<3 {
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0)
            defer { close(fd) }
            let live = LiveBlockHasher(path: path, blockSize: bs)
            live.start()
            // 1. Data streamed forward in uneven chunks (whole blocks complete as it goes), a block of written
            //    zeros, then a gap that stays a hole.
            var offset: UInt64 = 0
            while offset < UInt64(12 * bs) {
                let n = [4096, 12_288, 65_536, 131_072, 1000][Int(offset / 4096) % 5]
                try write(fd, random(n), at: offset, live, withBytes: withBytes)
                offset += UInt64(n)
            }
            try write(fd, [UInt8](repeating: 0, count: bs), at: UInt64(14 * bs), live, withBytes: withBytes)
            try write(fd, random(3 * bs), at: UInt64(20 * bs), live, withBytes: withBytes)
            waitUntil(live, hashed: 8)
            #expect(live.blocksHashed >= 8, "round \(round): the worker hashed \(live.blocksHashed) blocks")
            // Round 0 changes blocks that nothing hashes again before the end; the others let the worker go on.
            if round == 0 { live.pause() }

            // 2. Changes after the fact: a rewrite inside a hashed block, a whole hashed block rewritten, a byte
            //    in a block never completed, a block punched back into a hole, a block made of two halves.
            try write(fd, random(300), at: UInt64(2 * bs + 777), live, withBytes: withBytes)
            try write(fd, random(bs), at: UInt64(5 * bs), live, withBytes: withBytes)
            try write(fd, [7], at: UInt64(30 * bs + 5), live, withBytes: withBytes)
            #expect(punchHole(fd, offset: 21 * bs, count: bs))
            live.imageDidChange(offset: UInt64(21 * bs), count: UInt64(bs))
            try write(fd, random(bs / 2), at: UInt64(24 * bs), live, withBytes: withBytes)
            if round == 1 {
                // The worker catches up with everything queued before the block's second half arrives.
                let deadline = Date().addingTimeInterval(20)
                while live.queuedBlocks > 0, Date() < deadline { usleep(2000) }
            }
            try write(fd, random(bs / 2), at: UInt64(24 * bs + bs / 2), live, withBytes: withBytes)
            // A partial last block past every other write.
            try write(fd, random(bs + 999), at: UInt64(31 * bs), live, withBytes: withBytes)

            let known = live.stop()
            #expect(known.count > 0)
            var reusing = BlockHasher(blockSize: bs, threads: 2, fileDigest: false)
            reusing.known = known
            let reused = try reusing.hash(path: path)
            let fresh = try BlockHasher(blockSize: bs, threads: 2, fileDigest: false).hash(path: path)
            #expect(reused.written == fresh.written, "round \(round)")
            #expect(reused.linearChecksum == fresh.linearChecksum)
            #expect(reused.blocksKnown > 0 && reused.blocksKnown <= UInt64(known.count))
            // Rewritten after they were hashed: never taken from the early digests unless hashed again.
            #expect(known[2] == nil || known[2] == fresh.written.first { $0.index == 2 }.map { .digest($0.sha256) })
            if round == 0 {
                #expect(known[2] == nil && known[21] == nil)
                // A whole block rewritten is hashed from the bytes written even while the worker is held.
                let five = fresh.written.first { $0.index == 5 }.map { HashedBlock.digest($0.sha256) }
                #expect(withBytes ? known[5] == five && five != nil : known[5] == nil)
            }
            // Punched after it was hashed: unknown, or hashed again as the zeros it now is.
            #expect(known[21] == nil || known[21] == .zeros)
            #expect(known[30] == nil)
        }
    }

    /// A hasher that was never started knows nothing, and stopping it twice is harmless.
    @Test func unstartedHasherKnowsNothing() throws {
        let live = LiveBlockHasher(path: "/nonexistent", blockSize: Self.block)
        live.imageDidChange(offset: 0, count: UInt64(4 * Self.block))
        #expect(live.stop().count == 0)
        #expect(live.stop().count == 0)
    }
}
