import Foundation
import Testing

import KilnCore
@testable import KilnExt4

/// The extent tree builder at depths a test image could not afford (a depth-3 tree needs over 462k extents).
struct ExtentTreeTests {
    @Test(arguments: [0, 4, 5, 340 * 4, 340 * 4 + 1, 500_000])
    func treeRoundTrips(count: Int) throws {
        var extents: [EXT4.Extent] = []
        for i in 0..<count {
            let logical = UInt32(i * 3)
            let physical = UInt64(1_000_000 + i * 2)
            extents.append(EXT4.Extent(logical: logical, physical: physical, length: UInt32(i % 3 + 1)))
        }
        var next: UInt64 = 10
        var blocks: [UInt64: [UInt8]] = [:]
        let tree = EXT4.buildExtentTree(extents, inode: 12, generation: 0, checksumSeed: 0x1234, allocate: { n in
            defer { next += UInt64(n) }
            return (0..<UInt64(n)).map { next + $0 }
        })
        for b in tree.blocks { blocks[b.block] = b.bytes }
        #expect(tree.blocks.count == EXT4.extentTreeBlockCount(count))
        let root = try #require(EXT4.parseExtentNode(tree.root))
        let expectedDepth = count <= 4 ? 0 : count <= 4 * 340 ? 1 : count <= 4 * 340 * 340 ? 2 : 3
        #expect(root.depth == expectedDepth)
        // Walk it back and check every block's checksum tail.
        let seed = EXT4.crc32c(EXT4.crc32c(0x1234, le32: 12), le32: 0)
        var out: [EXT4.Extent] = []
        var pending = [root]
        while !pending.isEmpty {
            let node = pending.removeFirst()
            if node.depth == 0 {
                out += node.leaves
                continue
            }
            for c in node.children {
                let bytes = try #require(blocks[c.block])
                #expect(bytes.le32(at: 4092) == EXT4.crc32c(seed, bytes[0..<4092]))
                let child = try #require(EXT4.parseExtentNode(bytes))
                #expect(child.depth == node.depth - 1)
                // An index entry starts where its child's first extent starts.
                let first = child.depth == 0 ? child.leaves.first?.logical : child.children.first?.logical
                #expect(first == c.logical)
                pending.append(child)
            }
        }
        #expect(out == extents)
    }

    /// Every hash variant agrees with e2fsprogs' own implementation (`debugfs dx_hash`).
    @Test(.enabled(if: Tools.haveE2fsprogs, "e2fsprogs (debugfs) is not installed"))
    func directoryHashesMatchE2fsprogs() throws {
        let seeds = ["00000000-0000-0000-0000-000000000000", "00112233-4455-6677-8899-aabbccddeeff"]
        let names = ["a", "hello", "héllo-ünïcode-名前", "averyveryveryveryveryveryveryveryverylongname-over-32-bytes",
                     String(repeating: "z", count: 255)]
        for seed in seeds {
            let hex = seed.filter { $0 != "-" }
            let bytes = stride(from: 0, to: 32, by: 2).map {
                UInt8(hex[hex.index(hex.startIndex, offsetBy: $0)..<hex.index(hex.startIndex, offsetBy: $0 + 2)], radix: 16) ?? 0
            }
            for (version, unsigned, code) in [(EXT4.HashVersion.legacy, false, 0), (.halfMD4, false, 1), (.tea, false, 2),
                                              (.legacy, true, 3), (.halfMD4, true, 4), (.tea, true, 5)] {
                let h = EXT4.DirectoryHash(
                    version: version, unsigned: unsigned,
                    seed: (bytes.le32(at: 0), bytes.le32(at: 4), bytes.le32(at: 8), bytes.le32(at: 12)))
                for name in names {
                    let out = try Tools.run("debugfs", ["-R", "dx_hash -h \(code) -s \(seed) \(name)", "/dev/null"]).stdout
                    let ours = h.hash(Array(name.utf8))
                    let expected = "is 0x" + String(ours.major, radix: 16) + " "
                    #expect(out.contains(expected), "hash \(code) seed \(seed) of \(name): debugfs says \(out)")
                }
            }
        }
    }
}
