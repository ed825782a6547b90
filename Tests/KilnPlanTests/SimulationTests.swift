import Foundation
import KilnTestSupport
import Testing

@testable import KilnPlan

/// A deliberately naive reference: fixed time steps, per-stream bookkeeping, max-min fairness by sorting.
/// It shares no code with FleetSimulation.
func steppedSimulation(streamBytes: [Double], starts: [Double], client: Double, perStream: Double, fileSystem: Double, dt: Double) -> [Double] {
    var remaining = starts.map { _ in streamBytes }
    var ends = Array(repeating: Double.nan, count: starts.count)
    var t = 0.0
    while ends.contains(where: { $0.isNaN }) {
        let loading = starts.indices.filter { starts[$0] <= t + 1e-12 && ends[$0].isNaN }
        var demands: [Int: Double] = [:]
        for i in loading {
            let active = remaining[i].filter { $0 > 0 }.count
            demands[i] = min(client, Double(active) * perStream)
        }
        // Water-filling by brute force.
        var allocation: [Int: Double] = [:]
        var left = fileSystem
        var open = loading.sorted { demands[$0]! < demands[$1]! }
        while !open.isEmpty {
            let share = left / Double(open.count)
            let first = open[0]
            if demands[first]! <= share {
                allocation[first] = demands[first]!
                left -= demands[first]!
                open.removeFirst()
            } else {
                for i in open { allocation[i] = share }
                open.removeAll()
            }
        }
        for i in loading {
            let active = remaining[i].indices.filter { remaining[i][$0] > 0 }
            let rate = allocation[i]! / Double(active.count)
            for s in active { remaining[i][s] -= rate * dt }
            if remaining[i].allSatisfy({ $0 <= 0 }) { ends[i] = t + dt }
        }
        t += dt
    }
    return ends
}

@Suite("Fleet preload simulation")
struct SimulationTests {
    let mib = 1_048_576.0, gib = 1_073_741_824.0

    @Test func oneNodeRunsAtTheClientLimit() {
        // 50 GB over 16 byte ranges at 100 MiB/s each, capped at 1500 MiB/s: 50e9 / (1500 * 2^20) s.
        let schedule = StreamSchedule(kind: .ranges, models: .single(bytes: 50_000_000_000), streams: 16)
        let sim = FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: .init(clientLimit: 1500 * mib, streamLimit: 100 * mib, fileSystemLimit: 60 * gib))
        #expect(abs(sim.singleNodeSeconds() - 50e9 / (1500 * mib)) < 1e-6)
        #expect(abs(sim.singleNodeSeconds() - 31.79) < 0.01)
    }

    @Test func oneNodeWithTooFewStreams() {
        // 8 streams at 100 MiB/s cannot fill 1500 MiB/s: 800 MiB/s.
        let schedule = StreamSchedule(kind: .ranges, models: .single(bytes: 8 * 1024 * 1_048_576), streams: 8)
        let sim = FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: .init(clientLimit: 1500 * mib, streamLimit: 100 * mib, fileSystemLimit: 60 * gib))
        #expect(abs(sim.singleNodeSeconds() - 8 * 1024 / 800.0) < 1e-6)
    }

    @Test func oneLargeFileOnOneStream() {
        // LPT cannot split a single file: it runs on one stream at the per-stream limit.
        let schedule = StreamSchedule(kind: .lpt, models: .single(bytes: 10 * 1024 * 1_048_576), streams: 16)
        let sim = FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: .init(clientLimit: 1500 * mib, streamLimit: 100 * mib, fileSystemLimit: 60 * gib))
        #expect(abs(sim.singleNodeSeconds() - 102.4) < 1e-6)
    }

    @Test func manyNodesAllCappedPerClient() {
        // 50 nodes with staggered starts, a file system far above 50 x 1500 MiB/s: each takes bytes / cap.
        let starts = (0..<50).map { Double($0) * 0.7 }
        let sim = FleetSimulation(streamBytes: Array(repeating: 1_000_000_000, count: 10), limits: .init(clientLimit: 1500 * mib, streamLimit: .infinity, fileSystemLimit: 1000 * gib))
        let result = sim.run(starts: starts)
        for (i, node) in result.nodes.enumerated() {
            #expect(abs((node.loadEnd - node.loadStart) - 10e9 / (1500 * mib)) < 1e-6, "node \(i)")
            #expect(node.fileSystemBoundSeconds == 0)
        }
    }

    @Test func manyNodesBoundByTheFileSystem() {
        // 200 nodes at once, 50 GB each, 60 GiB/s: all finish at 10 TB / 60 GiB/s (~2.6 minutes).
        let schedule = StreamSchedule(kind: .ranges, models: .single(bytes: 50_000_000_000), streams: 16)
        let sim = FleetSimulation(streamBytes: schedule.streams.map(\.bytes), limits: .init(clientLimit: 1500 * mib, streamLimit: 100 * mib, fileSystemLimit: 60 * gib))
        let result = sim.run(starts: Array(repeating: 0, count: 200))
        let expected = 200 * 50e9 / (60 * gib)
        #expect(abs(expected - 155.2) < 0.1)
        for node in result.nodes {
            #expect(abs(node.loadEnd - expected) < 1e-6)
        }
        #expect(result.throughput.allSatisfy { $0.bytesPerSecond <= 60 * gib * (1 + 1e-9) })
    }

    @Test func staggeredArrivalsByHand() {
        // F = C = 100 B/s, 1000 B each, B starts at 5 s. A alone to 5 s (500 B), then 50 B/s each: A ends at
        // 15 s; B has 500 B left at 15 s and runs alone: 20 s.
        let sim = FleetSimulation(streamBytes: [1000], limits: .init(clientLimit: 100, streamLimit: .infinity, fileSystemLimit: 100))
        let result = sim.run(starts: [0, 5])
        #expect(abs(result.nodes[0].loadEnd - 15) < 1e-9)
        #expect(abs(result.nodes[1].loadEnd - 20) < 1e-9)

        // C = 60, F = 100: A at 60 to 5 s (300 B); then 50 each: A ends at 19 s; B (700 B done) alone at
        // 60 B/s: 24 s.
        let capped = FleetSimulation(streamBytes: [1000], limits: .init(clientLimit: 60, streamLimit: .infinity, fileSystemLimit: 100))
        let r2 = capped.run(starts: [0, 5])
        #expect(abs(r2.nodes[0].loadEnd - 19) < 1e-9)
        #expect(abs(r2.nodes[1].loadEnd - 24) < 1e-9)
    }

    @Test func bytesAreConserved() {
        let sizes: [UInt64] = [700, 300, 1200, 50]
        let sim = FleetSimulation(streamBytes: sizes, limits: .init(clientLimit: 400, streamLimit: 150, fileSystemLimit: 900))
        let starts = [0.0, 0.5, 0.5, 2, 3.3, 9]
        let result = sim.run(starts: starts)
        let delivered = result.throughput.reduce(0.0) { $0 + $1.bytesPerSecond * ($1.end - $1.start) }
        #expect(abs(delivered - Double(sizes.reduce(0, +)) * Double(starts.count)) < 1e-6 * delivered)
        #expect(result.throughput.allSatisfy { $0.bytesPerSecond <= 900 * (1 + 1e-9) })
    }

    @Test func matchesATimeSteppedReference() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<12 {
            let streams = Int.random(in: 1...3, using: &rng)
            let sizes = (0..<streams).map { _ in UInt64.random(in: 50...400, using: &rng) }
            let nodes = Int.random(in: 1...5, using: &rng)
            let starts = (0..<nodes).map { _ in Double(Int.random(in: 0...6, using: &rng)) }
            let client = Double(Int.random(in: 40...120, using: &rng))
            let perStream = Double(Int.random(in: 20...80, using: &rng))
            let fileSystem = Double(Int.random(in: 60...300, using: &rng))
            let exact = FleetSimulation(streamBytes: sizes, limits: .init(clientLimit: client, streamLimit: perStream, fileSystemLimit: fileSystem))
                .run(starts: starts).nodes.map(\.loadEnd)
            let stepped = steppedSimulation(streamBytes: sizes.map { Double($0) }, starts: starts, client: client, perStream: perStream, fileSystem: fileSystem, dt: 0.001)
            for i in 0..<nodes {
                #expect(abs(exact[i] - stepped[i]) < 0.05, "sizes \(sizes) starts \(starts) C \(client) s \(perStream) F \(fileSystem): \(exact) vs \(stepped)")
            }
        }
    }

    @Test func lptStreamsFinishInSizeOrder() {
        let sim = FleetSimulation(streamBytes: [300, 100, 200], limits: .init(clientLimit: 1000, streamLimit: 10, fileSystemLimit: 1000))
        let node = sim.run(starts: [0]).nodes[0]
        #expect(node.streamEnds == [30, 10, 20])
        #expect(node.streamBoundSeconds == 30)
    }
}
