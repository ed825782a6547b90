import Foundation

/// A discrete-event simulation of EFS preloads across a fleet.
///
/// Every node reads the same stream plan (the byte count of each of its parallel streams). At any moment:
/// - a stream reads at most `streamLimit`,
/// - a node reads at most `clientLimit` (its active streams share it equally),
/// - all loading nodes share `fileSystemLimit` max-min fairly (water-filling: nodes that want less than an
///   equal share get what they want, the rest split what remains).
/// Rates stay constant between events (a node starts loading, a stream finishes), so the simulation jumps
/// from event to event and is exact for this model.
public struct FleetSimulation: Sendable {
    public struct Limits: Sendable, Hashable {
        public var clientLimit: Double
        /// `.infinity` when a single stream can use the whole client limit.
        public var streamLimit: Double
        public var fileSystemLimit: Double

        public init(clientLimit: Double, streamLimit: Double, fileSystemLimit: Double) {
            self.clientLimit = clientLimit
            self.streamLimit = streamLimit
            self.fileSystemLimit = fileSystemLimit
        }
    }

    /// A stretch of time during which a tracked node's every active stream read at `perStreamRate`.
    public struct RateSegment: Sendable, Hashable, Codable {
        public var start: Double
        public var end: Double
        public var perStreamRate: Double
        public var activeStreams: Int
    }

    /// The file system's total read rate over a stretch of time.
    public struct ThroughputSegment: Sendable, Hashable, Codable {
        public var start: Double
        public var end: Double
        public var bytesPerSecond: Double
    }

    public struct NodeResult: Sendable, Hashable {
        public var loadStart: Double
        public var loadEnd: Double
        /// End time of each stream, in the stream plan's order.
        public var streamEnds: [Double]
        /// Seconds during which the node got less than it could take because the file system was full.
        public var fileSystemBoundSeconds: Double = 0
        /// Seconds during which the per-client limit was what held the node back.
        public var clientBoundSeconds: Double = 0
        /// Seconds during which too few active streams (times the per-stream limit) held the node back.
        public var streamBoundSeconds: Double = 0
        /// Only for tracked nodes.
        public var segments: [RateSegment] = []
    }

    public struct Result: Sendable {
        public var nodes: [NodeResult]
        public var throughput: [ThroughputSegment]
        public var events: Int
    }

    public let streamBytes: [UInt64]
    public let limits: Limits

    public init(streamBytes: [UInt64], limits: Limits) {
        self.streamBytes = streamBytes
        self.limits = limits
    }

    /// Runs the burst: node `i` starts loading at `starts[i]`. Rate segments are kept for `tracked` nodes.
    ///
    /// Nodes with the same number of active streams get the same allocation, so the simulation keeps one
    /// "virtual progress" clock per group (bytes each active stream of a group's node has read so far) and
    /// stores each node as an offset against its group's clock. An event then costs O(streams + log nodes)
    /// instead of O(nodes), which keeps bursts of thousands of nodes in milliseconds.
    public func run(starts: [Double], tracked: Set<Int> = []) -> Result {
        let n = starts.count
        // Streams ordered by size: with equal per-stream rates inside a node, the smallest finishes first.
        let order = streamBytes.indices.filter { streamBytes[$0] > 0 }.sorted {
            (streamBytes[$0], $0) < (streamBytes[$1], $1)
        }
        let sizes = order.map { Double(streamBytes[$0]) }
        let k = sizes.count
        var nodes = starts.map {
            NodeResult(loadStart: $0, loadEnd: $0, streamEnds: Array(repeating: $0, count: streamBytes.count))
        }
        guard k > 0, n > 0 else { return Result(nodes: nodes, throughput: [], events: 0) }

        let client = limits.clientLimit, perStream = limits.streamLimit, capacity = limits.fileSystemLimit
        // Demand of a node with `a` active streams.
        let demand: [Double] = (0...k).map { a in a == 0 ? 0 : min(client, perStream.isFinite ? Double(a) * perStream : client) }

        // Per group (index = active streams): virtual progress per stream, cumulative bound seconds by kind,
        // and a min-heap of (target virtual progress of the node's next stream end, node).
        var virtual = Array(repeating: 0.0, count: k + 1)
        var fsClock = Array(repeating: 0.0, count: k + 1)
        var clientClock = Array(repeating: 0.0, count: k + 1)
        var streamClock = Array(repeating: 0.0, count: k + 1)
        var heaps = Array(repeating: MinHeap(), count: k + 1)
        // Per node: finished streams and offsets against its group's clocks.
        var done = Array(repeating: 0, count: n)
        var offset = Array(repeating: 0.0, count: n)
        var fsOffset = Array(repeating: 0.0, count: n)
        var clientOffset = Array(repeating: 0.0, count: n)
        var streamOffset = Array(repeating: 0.0, count: n)
        let trackedNodes = tracked.filter { $0 >= 0 && $0 < n }.sorted()

        func enter(_ i: Int, progress: Double) {
            let a = k - done[i]
            offset[i] = progress - virtual[a]
            fsOffset[i] = -fsClock[a]
            clientOffset[i] = -clientClock[a]
            streamOffset[i] = -streamClock[a]
            heaps[a].push(sizes[done[i]] - offset[i], i)
        }
        func leave(_ i: Int) {
            let a = k - done[i]
            nodes[i].fileSystemBoundSeconds += fsClock[a] + fsOffset[i]
            nodes[i].clientBoundSeconds += clientClock[a] + clientOffset[i]
            nodes[i].streamBoundSeconds += streamClock[a] + streamOffset[i]
        }

        let pending = starts.indices.sorted { (starts[$0], $0) < (starts[$1], $1) }
        var nextPending = 0
        var activeCount = 0
        var throughput: [ThroughputSegment] = []
        var events = 0
        var now = starts[pending[0]]
        var rates = Array(repeating: 0.0, count: k + 1)

        while nextPending < n || activeCount > 0 {
            while nextPending < n, starts[pending[nextPending]] <= now {
                let i = pending[nextPending]
                enter(i, progress: 0)
                activeCount += 1
                nextPending += 1
            }
            if activeCount == 0 {
                now = starts[pending[nextPending]]
                continue
            }
            events += 1

            // Water-filling over groups: nodes wanting less than an equal share get their demand.
            var level = Double.infinity
            var remaining = capacity
            var remainingNodes = activeCount
            for a in 1...k where !heaps[a].isEmpty {
                let share = remaining / Double(remainingNodes)
                if demand[a] <= share {
                    remaining -= demand[a] * Double(heaps[a].count)
                    remainingNodes -= heaps[a].count
                } else {
                    level = share
                    break
                }
            }

            // Time to the next event.
            var step = nextPending < n ? starts[pending[nextPending]] - now : Double.infinity
            var total = 0.0
            for a in 1...k where !heaps[a].isEmpty {
                let nodeRate = min(demand[a], level)
                rates[a] = nodeRate / Double(a)
                total += nodeRate * Double(heaps[a].count)
                if let top = heaps[a].minKey {
                    step = min(step, max(0, top - virtual[a]) / rates[a])
                }
            }
            let end = now + step

            // Advance the group clocks.
            for a in 1...k where !heaps[a].isEmpty {
                virtual[a] += rates[a] * step
                if min(demand[a], level) < demand[a] * (1 - 1e-12) {
                    fsClock[a] += step
                } else if demand[a] >= client {
                    clientClock[a] += step
                } else {
                    streamClock[a] += step
                }
            }
            if step > 0 {
                for i in trackedNodes where done[i] < k && starts[i] <= now {
                    let a = k - done[i]
                    nodes[i].segments.append(RateSegment(start: now, end: end, perStreamRate: rates[a], activeStreams: a))
                }
                if let last = throughput.last, last.end == now, abs(last.bytesPerSecond - total) <= 1e-9 * total {
                    throughput[throughput.count - 1].end = end
                } else {
                    throughput.append(ThroughputSegment(start: now, end: end, bytesPerSecond: total))
                }
            }
            now = end

            // Finish streams (and nodes) whose group clock reached their next stream's size.
            var finished: [Int] = []
            for a in 1...k {
                while let top = heaps[a].minKey, top - virtual[a] <= top * 1e-9 + 1e-6 {
                    finished.append(heaps[a].pop())
                }
            }
            for i in finished {
                leave(i)
                let progress = sizes[done[i]]
                nodes[i].streamEnds[order[done[i]]] = now
                done[i] += 1
                // Streams of equal size end together.
                while done[i] < k, sizes[done[i]] - progress <= sizes[done[i]] * 1e-9 + 1e-6 {
                    nodes[i].streamEnds[order[done[i]]] = now
                    done[i] += 1
                }
                if done[i] == k {
                    nodes[i].loadEnd = now
                    activeCount -= 1
                } else {
                    enter(i, progress: progress)
                }
            }
        }
        return Result(nodes: nodes, throughput: throughput, events: events)
    }

    /// Seconds one node needs alone: the makespan of a stream plan under the client and per-stream limits.
    public func singleNodeSeconds() -> Double {
        let result = run(starts: [0])
        return result.nodes.first?.loadEnd ?? 0
    }
}

/// A binary min-heap of (key, node) pairs; ties pop the lower node first so runs are deterministic.
struct MinHeap: Sendable {
    private var keys: [Double] = []
    private var values: [Int] = []

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var minKey: Double? { keys.first }

    private func less(_ i: Int, _ j: Int) -> Bool {
        keys[i] < keys[j] || (keys[i] == keys[j] && values[i] < values[j])
    }

    private mutating func swap(_ i: Int, _ j: Int) {
        keys.swapAt(i, j)
        values.swapAt(i, j)
    }

    mutating func push(_ key: Double, _ value: Int) {
        keys.append(key)
        values.append(value)
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            swap(child, parent)
            child = parent
        }
    }

    /// Removes and returns the value with the smallest key. Only called when not empty.
    mutating func pop() -> Int {
        let top = values[0]
        let last = keys.count - 1
        swap(0, last)
        keys.removeLast()
        values.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < keys.count, less(left, smallest) { smallest = left }
            if right < keys.count, less(right, smallest) { smallest = right }
            if smallest == parent { break }
            swap(parent, smallest)
            parent = smallest
        }
        return top
    }
}
