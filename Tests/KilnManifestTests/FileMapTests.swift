import KilnTestSupport
import Testing
@testable import KilnManifest

@Suite("File map")
struct FileMapTests {
    @Test("every block's owners match the byte ranges they were built from")
    func ownersMatchRanges() {
        let map = FileMap(TestImage.fileMapInput)
        let index = FileMapIndex(map)
        #expect(map.totalFiles == TestImage.files.count)
        #expect(map.entries.count == TestImage.files.count)
        for block in UInt64(0)..<10 {
            let owners = index.owners(of: block..<(block + 1))
            let expected = TestImage.expectedOwners(block: block)
            #expect(owners.files.map(\.path) == expected.files, "block \(block)")
            #expect(owners.layers == expected.layers, "block \(block)")
            #expect(owners.regions == expected.regions, "block \(block)")
            #expect(!owners.unlistedFiles)
        }
        let big = index.owners(of: 4..<5).files
        #expect(big == [BlockOwners.File(path: "usr/lib/libbig.so", layer: "layer 0 sha256:aaaa")])
        // A range query is the union of its blocks.
        #expect(index.owners(of: 5..<9).files.map(\.path) == ["etc/hosts", "opt/model.bin", "usr/lib/libbig.so", "var/lib/kiln/meta.db"])
    }

    @Test("only the largest files are listed; the others still count for their layers")
    func listingPolicy() {
        let map = FileMap(TestImage.fileMapInput, policy: FileMapPolicy(maximumListedFiles: 2))
        #expect(map.entries.map(\.path) == ["opt/model.bin", "usr/lib/libbig.so"])
        #expect(map.totalFiles == 4)
        let index = FileMapIndex(map)
        let block8 = index.owners(of: 8..<9)
        #expect(block8.files.map(\.path) == ["opt/model.bin"])
        #expect(block8.unlistedFiles)  // etc/hosts
        #expect(block8.layers == ["layer 1 sha256:bbbb"])
        #expect(index.owners(of: 6..<7).unlistedFiles)  // meta.db, no layer
        #expect(index.owners(of: 6..<7).layers.isEmpty)
        #expect(!index.owners(of: 1..<2).unlistedFiles)
        #expect(index.owners(of: 1..<2).isEmpty)
    }

    @Test("many overlapping files: the index agrees with a brute-force scan")
    func indexAgainstBruteForce() {
        var rng = SeededGenerator(seed: 11)
        var input = FileMapInput()
        for i in 0..<300 {
            let ranges = (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                (offset: UInt64.random(in: 0..<UInt64(400 * blockSize), using: &rng),
                 length: UInt64.random(in: 1...UInt64(20 * blockSize), using: &rng))
            }
            input.addFile(path: "f/\(i)", layer: "layer \(i % 7)", ranges: ranges)
        }
        let map = FileMap(input)
        let index = FileMapIndex(map)
        for _ in 0..<200 {
            let a = UInt64.random(in: 0..<430, using: &rng)
            let q = a..<(a + UInt64.random(in: 1...4, using: &rng))
            let lo = q.lowerBound * UInt64(blockSize), hi = q.upperBound * UInt64(blockSize)
            let expected = input.files.filter { f in f.ranges.contains { $0.offset < hi && $0.offset + $0.length > lo } }
            #expect(index.owners(of: q).files.map(\.path) == expected.map(\.path).sorted(), "\(q)")
            #expect(index.owners(of: q).layers == Set(expected.compactMap(\.layer)).sorted(), "\(q)")
        }
    }
}
