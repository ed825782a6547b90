extension EXT4 {
    /// Hands out blocks strictly in increasing order, skipping each group's superblock and descriptor copies and
    /// any reserved range (the blocks a base keeps for the files it will find again).
    ///
    /// Sequential allocation is what lets data stream straight into place. Blocks that are skipped (to keep an
    /// inode table contiguous) or given up (a removed file) are never handed out again, so nothing written
    /// earlier can be exposed inside a later file; the block bitmaps are built from the blocks that are
    /// referenced at close, so whatever is not referenced then is free.
    struct BlockAllocator {
        /// The first block never handed out.
        private(set) var next: UInt64
        /// Blocks available in total when the filesystem size is fixed.
        var limit: UInt64?
        /// Ranges the cursor jumps over, sorted and disjoint.
        private(set) var reserved: [Range<UInt64>] = []
        private var reservedIndex = 0

        struct Exhausted: Error {
            /// The block count that would have been needed at least.
            var needed: UInt64
        }

        init(limit: UInt64?) {
            next = groupBaseBlocks(0)
            self.limit = limit
        }

        /// Makes the cursor jump over `ranges` from now on.
        mutating func reserve(_ ranges: [Range<UInt64>]) {
            var merged: [Range<UInt64>] = []
            for r in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if let last = merged.last, r.lowerBound <= last.upperBound {
                    merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
                } else {
                    merged.append(r)
                }
            }
            reserved = merged
            reservedIndex = 0
        }

        /// Moves `next` past reserved group starts and reserved ranges; returns where the free stretch that
        /// starts at `next` ends (the next reserved range), not counting group boundaries.
        private mutating func skipReserved() -> UInt64 {
            while true {
                let g = next / blocksPerGroup
                let base = g * blocksPerGroup + groupBaseBlocks(g)
                if next < base { next = base }
                while reservedIndex < reserved.count && reserved[reservedIndex].upperBound <= next { reservedIndex += 1 }
                guard reservedIndex < reserved.count else { return .max }
                let r = reserved[reservedIndex]
                if r.lowerBound <= next {
                    next = r.upperBound
                    continue
                }
                return r.lowerBound
            }
        }

        /// Up to `count` contiguous blocks (at least one), never crossing into a group's reserved start or a
        /// reserved range.
        mutating func allocate(upTo count: UInt64) throws -> Range<UInt64> {
            let stop = skipReserved()
            let groupEnd = (next / blocksPerGroup + 1) * blocksPerGroup
            let n = max(1, min(count, groupEnd - next, stop - next))
            let run = next..<(next + n)
            if let limit, run.upperBound > limit { throw Exhausted(needed: run.upperBound) }
            next = run.upperBound
            return run
        }

        /// Exactly `count` contiguous blocks; blocks skipped to find them stay free.
        mutating func allocateContiguous(_ count: UInt64) throws -> Range<UInt64> {
            while true {
                let stop = skipReserved()
                let start = next
                let end = start + count
                // The run may cross group boundaries only where a group has no reserved start.
                var g = start / blocksPerGroup + 1
                var blocked = false
                while g * blocksPerGroup < end {
                    if groupBaseBlocks(g) > 0 {
                        blocked = true
                        break
                    }
                    g += 1
                }
                if blocked {
                    let usable = blocksPerGroup - groupBaseBlocks(g)
                    if count > usable {
                        // Longer than any gap-free stretch can be: give up contiguity.
                        return try allocate(upTo: count)
                    }
                    let skipTo = g * blocksPerGroup
                    if let limit, skipTo > limit { throw Exhausted(needed: skipTo + count) }
                    next = skipTo
                    continue
                }
                if end > stop {
                    next = stop
                    continue
                }
                if let limit, end > limit { throw Exhausted(needed: end) }
                next = end
                return start..<end
            }
        }

        /// Allocates `count` blocks as a list of runs.
        mutating func allocateRuns(_ count: UInt64) throws -> [Range<UInt64>] {
            var runs: [Range<UInt64>] = []
            var left = count
            while left > 0 {
                let r = try allocate(upTo: left)
                if let last = runs.last, last.upperBound == r.lowerBound {
                    runs[runs.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    runs.append(r)
                }
                left -= UInt64(r.count)
            }
            return runs
        }
    }
}
