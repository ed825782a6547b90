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

@Suite("Owners of bad blocks")
struct FileMapIndexTests {
    @Test("the index names exactly the files, layers and regions a scan of every run names", arguments: [1, 2, 3] as [UInt64])
    func agreesWithAScan(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var entries: [FileMap.Entry] = []
        for i in 0..<300 {
            var ranges: [Range<UInt64>] = []
            var at = UInt64.random(in: 0..<5000, using: &rng)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let length = UInt64.random(in: 1...(i % 7 == 0 ? 3000 : 20), using: &rng)
                ranges.append(at..<(at + length))
                at += length + UInt64.random(in: 1...200, using: &rng)
            }
            entries.append(FileMap.Entry(path: String(format: "f%04d", i), layer: nil, bytes: 0, blocks: BlockRuns(ranges)))
        }
        // Layers and regions have trees of their own; they are checked against a scan the same way.
        func runs(_ count: Int) -> BlockRuns {
            BlockRuns((0..<count).map { _ in
                let at = UInt64.random(in: 0..<9000, using: &rng)
                return at..<(at + UInt64.random(in: 1...400, using: &rng))
            })
        }
        let layers = (0..<60).map { FileMap.Layer(name: String(format: "layer%02d", $0), blocks: runs(Int.random(in: 0...6, using: &rng))) }
        let regions = (0..<25).map { FileMap.Region(name: String(format: "region%02d", $0), blocks: runs(Int.random(in: 0...3, using: &rng))) }
        let map = FileMap(layers: layers, entries: entries, regions: regions, totalFiles: entries.count)
        let index = FileMapIndex(map)
        for _ in 0..<500 {
            let start = UInt64.random(in: 0..<9000, using: &rng)
            let query = start..<(start + UInt64.random(in: 1...50, using: &rng))
            let scanned = entries.filter { $0.blocks.intersects(query) }.map(\.path).sorted()
            let owners = index.owners(of: query)
            #expect(owners.files.map(\.path) == scanned, "\(query)")
            #expect(owners.layers == layers.filter { $0.blocks.intersects(query) }.map(\.name), "\(query)")
            #expect(owners.regions == regions.filter { $0.blocks.intersects(query) }.map(\.name), "\(query)")
            #expect(owners.moreFiles == nil)
        }
    }

    @Test("a map whose runs all overlap costs each query a bounded answer, and says there are more")
    func overlappingRunsAreBounded() {
        let count = 20_000
        let entries = (0..<count).map { FileMap.Entry(path: "f\($0)", layer: nil, bytes: 0, blocks: BlockRuns([0..<1_000_000])) }
        let index = FileMapIndex(FileMap(entries: entries, totalFiles: count))
        for block in stride(from: UInt64(0), to: 1_000_000, by: 10_000) {
            let owners = index.owners(of: block..<(block + 1))
            #expect(owners.files.count == FileMapIndex.runLimit && owners.moreFiles == true)
        }
        let few = FileMapIndex(FileMap(entries: Array(entries.prefix(10)), totalFiles: 10)).owners(of: 5..<6)
        #expect(few.files.count == 10 && few.moreFiles == nil)
    }
}
