import Foundation
import KilnTestSupport
import Testing

@testable import KilnPlan

/// The optimal makespan by trying every assignment of files to streams (symmetry: the first file goes to
/// stream 0). Independent of the code under test.
func optimalMakespan(_ sizes: [UInt64], streams: Int) -> UInt64 {
    var best = UInt64.max
    var loads = Array(repeating: UInt64(0), count: streams)
    func place(_ index: Int) {
        if index == sizes.count {
            best = min(best, loads.max() ?? 0)
            return
        }
        for s in 0..<(index == 0 ? 1 : streams) {
            loads[s] += sizes[index]
            if loads[s] < best { place(index + 1) }
            loads[s] -= sizes[index]
        }
    }
    place(0)
    return best
}

@Suite("Preload stream schedules")
struct ScheduleTests {
    func models(_ sizes: [UInt64]) -> ModelSet {
        ModelSet(files: sizes.enumerated().map { ModelSet.File(path: "f\($0.offset)", bytes: $0.element) })
    }

    @Test func lptWithinFourThirdsOfOptimal() {
        var rng = SeededGenerator(seed: 42)
        var worst = 0.0
        for _ in 0..<300 {
            let streams = Int.random(in: 2...4, using: &rng)
            let count = Int.random(in: streams...(streams == 4 ? 7 : 9), using: &rng)
            let sizes = (0..<count).map { _ in UInt64.random(in: 1...100, using: &rng) }
            let lpt = StreamSchedule(kind: .lpt, models: models(sizes), streams: streams).maxStreamBytes
            let optimal = optimalMakespan(sizes, streams: streams)
            let ratio = Double(lpt) / Double(optimal)
            worst = max(worst, ratio)
            // Graham: LPT <= (4/3 - 1/(3m)) OPT.
            #expect(ratio <= 4.0 / 3.0 - 1.0 / (3.0 * Double(streams)) + 1e-12, "sizes \(sizes) on \(streams) streams: LPT \(lpt), optimal \(optimal)")
        }
        #expect(worst >= 1)
    }

    @Test func lptTightCase() {
        // The textbook instance where LPT reaches 7/6 = 4/3 - 1/6 on two streams: {3,3,2,2,2}.
        let sizes: [UInt64] = [3, 3, 2, 2, 2]
        #expect(StreamSchedule(kind: .lpt, models: models(sizes), streams: 2).maxStreamBytes == 7)
        #expect(optimalMakespan(sizes, streams: 2) == 6)
    }

    @Test func lptPlacesEveryFileOnce() {
        let sizes: [UInt64] = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
        let schedule = StreamSchedule(kind: .lpt, models: models(sizes), streams: 3)
        let placed = schedule.streams.flatMap { $0.pieces.map(\.path) }.sorted()
        #expect(placed == (0..<10).map { "f\($0)" }.sorted())
        #expect(schedule.streams.map(\.bytes).reduce(0, +) == 55)
        #expect(schedule.streams.allSatisfy { $0.pieces.allSatisfy { $0.offset == 0 } })
    }

    @Test func rangesSplitEvenlyAndCoverEveryByte() {
        let sizes: [UInt64] = [1000, 7, 3333, 0, 12]
        let schedule = StreamSchedule(kind: .ranges, models: models(sizes), streams: 16)
        let loads = schedule.streams.map(\.bytes)
        #expect(loads.max()! - loads.min()! <= 1)
        #expect(loads.reduce(0, +) == 4352)
        // Reassemble each file from its pieces in stream order: contiguous, no gaps, no overlaps.
        var next: [String: UInt64] = [:]
        for piece in schedule.streams.flatMap(\.pieces) {
            #expect(piece.offset == next[piece.path, default: 0], "gap or overlap in \(piece.path)")
            next[piece.path] = piece.offset + piece.bytes
        }
        for (index, size) in sizes.enumerated() where size > 0 {
            #expect(next["f\(index)"] == size)
        }
    }

    @Test func listingParsing() throws {
        let text = """
            path,size
            # weights
            model-00001-of-00002.safetensors 4.9GB
            model-00002-of-00002.safetensors\t4900000000
            dir with spaces/tokenizer.json 17MiB
            config.json,1234

            """
        let set = try ModelSet.parseListing(text, source: "models.txt")
        #expect(set.files.map(\.path) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "dir with spaces/tokenizer.json", "config.json"])
        #expect(set.files.map(\.bytes) == [4_900_000_000, 4_900_000_000, 17 * 1_048_576, 1234])
        #expect(throws: ModelSet.Error.badLine(source: "m", line: 2, text: "b notasize")) {
            try ModelSet.parseListing("a 1\nb notasize\n", source: "m")
        }
    }

    @Test func directoryScan() throws {
        let scratch = try TemporaryDirectory(prefix: "kiln-plan-scan")
        defer { scratch.remove() }
        let root = scratch.url
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data(count: 1000).write(to: root.appendingPathComponent("a.bin"))
        try Data(count: 4096).write(to: root.appendingPathComponent("sub/b.safetensors"))
        let set = try ModelSet.load(from: root.path)
        #expect(set.files == [ModelSet.File(path: "a.bin", bytes: 1000), ModelSet.File(path: "sub/b.safetensors", bytes: 4096)])
        #expect(throws: ModelSet.Error.missing(root.path + "/nope")) { try ModelSet.load(from: root.path + "/nope") }
    }

    @Test func arrivalsCSV() throws {
        let times = try Arrivals.parseCSV("time,count\n0,2\n90s\n1m30s,1\n# done\n", source: "a.csv")
        #expect(times == [0, 0, 90, 90])
        #expect(throws: Arrivals.Error.self) { try Arrivals.parseCSV("0\nsoon\n", source: "a.csv") }
        #expect(throws: Arrivals.Error.empty("e.csv")) { try Arrivals.parseCSV("time\n", source: "e.csv") }
        #expect(Arrivals.count(perMinute: 200, burstSeconds: 150) == 500)
        #expect(Arrivals.uniform(perMinute: 120, count: 3) == [0, 0.5, 1])
    }
}
