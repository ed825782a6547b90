import KilnTestSupport
import Testing
@testable import KilnManifest

@Suite("Block run lists")
struct BlockRunsTests {
    @Test("text form round trips and merges overlapping and adjacent ranges")
    func textForm() throws {
        let runs = BlockRuns([9..<13, 0..<2, 2..<4, 7..<8, 10..<11, 5..<5])
        #expect(runs.description == "0-3,7,9-12")
        #expect(try BlockRuns(parsing: "0-3,7,9-12") == runs)
        #expect(runs.count == 9)
        #expect(try BlockRuns(parsing: "") == BlockRuns())
    }

    @Test("malformed text is rejected", arguments: ["3-1", "1,1", "0-3,4", "a", "1,", ",1", "1--2", "5,2", "18446744073709551615", "99999999999999999999999"])
    func malformed(_ text: String) {
        #expect(throws: BlockRuns.Error.self) { try BlockRuns(parsing: text) }
    }

    @Test("membership and intersection agree with a set of blocks")
    func intersection() {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<50 {
            var set = Set<UInt64>()
            var ranges: [Range<UInt64>] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                let a = UInt64.random(in: 0..<200, using: &rng)
                let r = a..<(a + UInt64.random(in: 0...15, using: &rng))
                ranges.append(r)
                set.formUnion(r)
            }
            let runs = BlockRuns(ranges)
            #expect(runs.count == UInt64(set.count))
            for _ in 0..<40 {
                let a = UInt64.random(in: 0..<220, using: &rng)
                let q = a..<(a + UInt64.random(in: 0...10, using: &rng))
                #expect(runs.intersects(q) == q.contains { set.contains($0) }, "\(runs) vs \(q)")
            }
        }
    }
}
