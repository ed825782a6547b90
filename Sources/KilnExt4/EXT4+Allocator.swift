extension EXT4 {
    /// Hands out blocks strictly in increasing order, skipping each group's superblock and descriptor copies.
    ///
    /// Sequential allocation is what lets data stream straight into place. Blocks that are skipped (to keep an
    /// inode table contiguous) or given back (a removed file) are recorded as gaps: they stay free and are
    /// never reused, so nothing written earlier can be exposed inside a later file.
    struct BlockAllocator {
        /// The first block never handed out.
        private(set) var next: UInt64
        /// Blocks available in total when the filesystem size is fixed.
        var limit: UInt64?
        /// Free ranges below `next` (unsorted, possibly adjacent).
        private(set) var gaps: [Range<UInt64>] = []

        struct Exhausted: Error {
            /// The block count that would have been needed at least.
            var needed: UInt64
        }

        init(limit: UInt64?) {
            next = groupBaseBlocks(0)
            self.limit = limit
        }

        private mutating func skipBase() {
            let g = next / blocksPerGroup
            let base = g * blocksPerGroup + groupBaseBlocks(g)
            if next < base { next = base }
        }

        /// Up to `count` contiguous blocks (at least one), never crossing into a group's reserved start.
        mutating func allocate(upTo count: UInt64) throws -> Range<UInt64> {
            skipBase()
            let groupEnd = (next / blocksPerGroup + 1) * blocksPerGroup
            let n = max(1, min(count, groupEnd - next))
            let run = next..<(next + n)
            if let limit, run.upperBound > limit { throw Exhausted(needed: run.upperBound) }
            next = run.upperBound
            return run
        }

        /// Exactly `count` contiguous blocks; blocks skipped to find them become gaps.
        mutating func allocateContiguous(_ count: UInt64) throws -> Range<UInt64> {
            while true {
                skipBase()
                var start = next
                var end = start + count
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
                    gaps.append(next..<skipTo)
                    next = skipTo
                    continue
                }
                if let limit, end > limit { throw Exhausted(needed: end) }
                start = next
                end = start + count
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

        /// Gives blocks back: they become free for good.
        mutating func release(_ range: Range<UInt64>) {
            if !range.isEmpty { gaps.append(range) }
        }
    }
}
