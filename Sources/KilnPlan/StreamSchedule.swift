import Foundation

/// How one node's preloader splits the model files over N parallel streams.
public struct StreamSchedule: Sendable, Hashable, Codable {
    /// The two ways loaders split work.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Longest Processing Time first: whole files, largest first, each onto the least-loaded stream.
        /// Graham's bound: the busiest stream carries at most (4/3 - 1/(3N)) x the optimal maximum.
        case lpt
        /// All files as one byte range, split into N equal contiguous shares (Run:ai Model Streamer).
        case ranges
    }

    /// A contiguous part of one file carried by a stream.
    public struct Piece: Sendable, Hashable, Codable {
        public var path: String
        public var offset: UInt64
        public var bytes: UInt64
    }

    public struct Stream: Sendable, Hashable, Codable {
        public var pieces: [Piece]
        public var bytes: UInt64 { pieces.reduce(0) { $0 + $1.bytes } }
    }

    public var kind: Kind
    public var streams: [Stream]

    /// The busiest stream's bytes: what bounds the makespan when every stream runs at the same speed.
    public var maxStreamBytes: UInt64 { streams.map(\.bytes).max() ?? 0 }

    public init(kind: Kind, models: ModelSet, streams count: Int) {
        self.kind = kind
        let n = max(1, count)
        switch kind {
        case .lpt: streams = StreamSchedule.lpt(models.files, streams: n)
        case .ranges: streams = StreamSchedule.ranges(models.files, streams: n)
        }
    }

    static func lpt(_ files: [ModelSet.File], streams n: Int) -> [Stream] {
        var result = Array(repeating: Stream(pieces: []), count: n)
        var loads = Array(repeating: UInt64(0), count: n)
        // Ties broken by path so the same listing always gives the same schedule.
        let ordered = files.filter { $0.bytes > 0 }.sorted { ($0.bytes, $1.path) > ($1.bytes, $0.path) }
        for file in ordered {
            var target = 0
            for i in 1..<n where loads[i] < loads[target] { target = i }
            loads[target] += file.bytes
            result[target].pieces.append(Piece(path: file.path, offset: 0, bytes: file.bytes))
        }
        return result
    }

    static func ranges(_ files: [ModelSet.File], streams n: Int) -> [Stream] {
        let total = files.reduce(UInt64(0)) { $0 + $1.bytes }
        var result = Array(repeating: Stream(pieces: []), count: n)
        // Shares differ by at most one byte: the first `total % n` streams carry the extra byte.
        let base = total / UInt64(n), extra = total % UInt64(n)
        var fileIndex = 0
        var offsetInFile: UInt64 = 0
        for s in 0..<n {
            var remaining = base + (UInt64(s) < extra ? 1 : 0)
            while remaining > 0, fileIndex < files.count {
                let file = files[fileIndex]
                let available = file.bytes - offsetInFile
                if available == 0 {
                    fileIndex += 1
                    offsetInFile = 0
                    continue
                }
                let take = min(available, remaining)
                result[s].pieces.append(Piece(path: file.path, offset: offsetInFile, bytes: take))
                remaining -= take
                offsetInFile += take
                if offsetInFile == file.bytes {
                    fileIndex += 1
                    offsetInFile = 0
                }
            }
        }
        return result
    }
}
