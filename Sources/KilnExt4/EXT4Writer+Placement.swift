import KilnCore

/// Recording where everything went, for a later filesystem to keep (``EXT4/Placement``).
extension EXT4Writer {
    func encodePlacement(geometry g: Geometry, layout p: Plan) -> [UInt8] {
        var groups: [EXT4.Placement.Group] = []
        for i in 0..<Int(g.groups) {
            groups.append(EXT4.Placement.Group(blockBitmap: p.blockBitmaps[i], inodeBitmap: p.inodeBitmaps[i], inodeTable: p.inodeTables[i]))
        }
        var live = 0
        for ino in 2..<nodes.count where nodes[ino].live { live += 1 }
        var e = EXT4.Placement.Encoder(
            blockCount: g.blocks, inodesPerGroup: g.inodesPerGroup, uuid: uuid, hashSeed: hashSeed, groups: groups,
            journalRuns: p.journalRuns, journalTreeBlocks: p.journalTreeBlocks, inodeCount: live)
        var entryCount = 0
        for ino in 2..<nodes.count where nodes[ino].live {
            let n = nodes[ino]
            var runs: [Range<UInt64>]
            if n.kind == .directory {
                runs = p.directoryRuns[UInt32(ino)] ?? []
                runs += (p.directoryTreeBlocks[UInt32(ino)] ?? []).map { $0..<($0 + 1) }
                entryCount += n.children?.count ?? 0
            } else {
                runs = n.extents.map { $0.physical..<($0.physical + UInt64($0.length)) }
                runs += n.treeBlocks.map { $0..<($0 + 1) }
            }
            e.inode(UInt32(ino), kind: n.kind, xattrBlock: p.xattrBlocks[UInt32(ino)], runs: Self.coalesced(runs))
        }
        e.startEntries(entryCount)
        for ino in 2..<nodes.count where nodes[ino].live && nodes[ino].kind == .directory {
            let children = (nodes[ino].children ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }
            for (name, child) in children { e.entry(directory: UInt32(ino), name: name, inode: child) }
        }
        return e.bytes
    }

    /// Joins runs that continue each other (as long as the joined run stays within one extent's length).
    static func coalesced(_ runs: [Range<UInt64>]) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        out.reserveCapacity(runs.count)
        for r in runs where !r.isEmpty {
            if let last = out.last, last.upperBound == r.lowerBound, last.count + r.count <= EXT4.maximumExtentLength {
                out[out.count - 1] = last.lowerBound..<r.upperBound
            } else {
                out.append(r)
            }
        }
        return out
    }
}
