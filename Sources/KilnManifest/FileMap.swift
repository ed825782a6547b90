/// Which files, layers and metadata regions own which blocks of the image file, in block units.
///
/// The manifest stores it so that ``ManifestVerifier`` can say what a bad block damaged without the image's
/// filesystem being readable. Blocks are the manifest's block size (512 KiB); a block may belong to several
/// files, layers and regions at once.
public struct FileMap: Sendable, Hashable, Codable {
    /// The blocks holding data of a layer's files.
    public struct Layer: Sendable, Hashable, Codable {
        /// The layer label the bake gave.
        public var name: String
        public var blocks: BlockRuns

        public init(name: String, blocks: BlockRuns) {
            self.name = name
            self.blocks = blocks
        }
    }

    /// A file listed one by one.
    public struct Entry: Sendable, Hashable, Codable {
        public var path: String
        /// Index into ``FileMap/layers``; nil for files the bake made itself.
        public var layer: Int?
        /// Bytes of the image file the file occupies.
        public var bytes: UInt64
        public var blocks: BlockRuns

        enum CodingKeys: String, CodingKey { case path, layer, bytes, blocks }

        public init(path: String, layer: Int?, bytes: UInt64, blocks: BlockRuns) {
            self.path = path
            self.layer = layer
            self.bytes = bytes
            self.blocks = blocks
        }
    }

    /// A named metadata region.
    public struct Region: Sendable, Hashable, Codable {
        public var name: String
        public var blocks: BlockRuns

        public init(name: String, blocks: BlockRuns) {
            self.name = name
            self.blocks = blocks
        }
    }

    /// Layers, sorted by name.
    public var layers: [Layer]
    /// Listed files, sorted by path.
    public var entries: [Entry]
    /// Metadata regions, sorted by name.
    public var regions: [Region]
    /// Blocks holding data of files that are not listed one by one.
    public var unlistedBlocks: BlockRuns
    /// Regular files the bake reported, listed or not.
    public var totalFiles: Int

    public init(layers: [Layer] = [], entries: [Entry] = [], regions: [Region] = [], unlistedBlocks: BlockRuns = BlockRuns(),
                totalFiles: Int = 0) {
        self.layers = layers
        self.entries = entries
        self.regions = regions
        self.unlistedBlocks = unlistedBlocks
        self.totalFiles = totalFiles
    }

    private enum CodingKeys: String, CodingKey { case layers, entries, regions, unlistedBlocks, totalFiles }

    /// Decodes a map and checks that every entry's layer is one the map lists: a manifest is input, and an
    /// index out of range must be a refusal naming it, not a read past the list.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        layers = try c.decode([Layer].self, forKey: .layers)
        entries = try c.decode([Entry].self, forKey: .entries)
        regions = try c.decode([Region].self, forKey: .regions)
        unlistedBlocks = try c.decode(BlockRuns.self, forKey: .unlistedBlocks)
        totalFiles = try c.decode(Int.self, forKey: .totalFiles)
        for (i, entry) in entries.enumerated() {
            if let layer = entry.layer, !layers.indices.contains(layer) {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath + [CodingKeys.entries, IndexKey(i), Entry.CodingKeys.layer],
                    debugDescription: "layer \(layer) of '\(entry.path)' is not one of the map's \(layers.count) layers"))
            }
        }
        guard totalFiles >= 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [CodingKeys.totalFiles],
                                                    debugDescription: "a count of files cannot be negative"))
        }
    }

    /// The compact map of `input` in blocks of `blockSize` bytes.
    public init(_ input: FileMapInput, blockSize: Int = BlockHasher.ebsBlockSize, policy: FileMapPolicy = FileMapPolicy()) {
        let bs = UInt64(max(1, blockSize))
        let layerNames = input.layerNames.sorted()
        var layerIndex: [String: Int] = [:]
        for (i, name) in layerNames.enumerated() { layerIndex[name] = i }
        // The input numbers layers in the order it met them; the map in name order.
        let sortedLayer = input.layerNames.map { layerIndex[$0] ?? 0 }
        let files = 0..<input.fileCount

        var layerRanges = Array(repeating: [Range<UInt64>](), count: layerNames.count)
        for i in files {
            guard let n = input.layerNumber(i) else { continue }
            layerRanges[sortedLayer[n]].append(contentsOf: input.ranges(i).map { $0.blocks(bs) })
        }
        layers = zip(layerNames, layerRanges).map { Layer(name: $0, blocks: BlockRuns($1)) }

        // The largest files are the ones worth naming, ties broken by path then layer so the selection is
        // reproducible.
        let sizes = files.map { input.ranges($0).reduce(0) { $0 &+ $1.length } }
        let listed = Self.largest(max(0, policy.maximumListedFiles), of: input, sizes: sizes, layerOrder: sortedLayer)
        entries = listed.map { i in
            Entry(path: input.path(i), layer: input.layerNumber(i).map { sortedLayer[$0] },
                  bytes: sizes[i], blocks: BlockRuns(input.ranges(i).map { $0.blocks(bs) }))
        }
        entries.sort { ($0.path, $0.layer ?? -1) < ($1.path, $1.layer ?? -1) }
        var isListed = [Bool](repeating: false, count: input.fileCount)
        for i in listed { isListed[i] = true }
        var unlisted: [Range<UInt64>] = []
        for i in files where !isListed[i] { for r in input.ranges(i) { unlisted.append(r.blocks(bs)) } }
        unlistedBlocks = BlockRuns(unlisted)

        var regionRanges: [String: [Range<UInt64>]] = [:]
        for r in input.regions { regionRanges[r.name, default: []].append(contentsOf: r.ranges.map { $0.blocks(bs) }) }
        regions = regionRanges.keys.sorted().map { Region(name: $0, blocks: BlockRuns(regionRanges[$0] ?? [])) }
        totalFiles = input.fileCount
    }

    /// The indexes of the `k` largest files (ties: path bytes, then layer name), without ordering every file:
    /// the k-th largest size is found on the sizes alone, and only the files of that size are compared by path.
    static func largest(_ k: Int, of input: FileMapInput, sizes: [UInt64], layerOrder: [Int]) -> [Int] {
        let files = 0..<input.fileCount
        guard k < files.count else { return Array(files) }
        guard k > 0 else { return [] }
        let threshold = sizes.sorted(by: >)[k - 1]
        var out = files.filter { sizes[$0] > threshold }
        let ties = files.filter { sizes[$0] == threshold }.sorted { a, b in
            let pa = input.pathUTF8(a), pb = input.pathUTF8(b)
            if !pa.elementsEqual(pb) { return pa.lexicographicallyPrecedes(pb) }
            return (input.layerNumber(a).map { layerOrder[$0] } ?? -1) < (input.layerNumber(b).map { layerOrder[$0] } ?? -1)
        }
        out.append(contentsOf: ties.prefix(k - out.count))
        return out
    }

    /// The highest block index the map mentions plus one (0 for an empty map).
    public var upperBound: UInt64 {
        var m = unlistedBlocks.upperBound
        for l in layers { m = max(m, l.blocks.upperBound) }
        for e in entries { m = max(m, e.blocks.upperBound) }
        for r in regions { m = max(m, r.blocks.upperBound) }
        return m
    }
}

/// What owns a range of blocks: the answer to "what did this bad block damage".
public struct BlockOwners: Sendable, Hashable, Codable {
    /// A listed file and its layer.
    public struct File: Sendable, Hashable, Codable {
        public var path: String
        public var layer: String?

        public init(path: String, layer: String?) {
            self.path = path
            self.layer = layer
        }
    }

    /// Listed files with data in the range, sorted by path.
    public var files: [File]
    /// Layers with file data in the range, sorted.
    public var layers: [String]
    /// Metadata regions in the range, sorted.
    public var regions: [String]
    /// Whether files too small to be listed have data in the range.
    public var unlistedFiles: Bool
    /// True when more listed files have data in the range than one answer names (``FileMapIndex/runLimit``
    /// runs); absent otherwise.
    public var moreFiles: Bool? = nil

    public init(files: [File] = [], layers: [String] = [], regions: [String] = [], unlistedFiles: Bool = false) {
        self.files = files
        self.layers = layers
        self.regions = regions
        self.unlistedFiles = unlistedFiles
    }

    /// True when nothing the bake reported lies in the range (free space, or a map that was not given).
    public var isEmpty: Bool { files.isEmpty && layers.isEmpty && regions.isEmpty && !unlistedFiles }
}

/// Answers ``BlockOwners`` queries on a ``FileMap`` in logarithmic time, for verifying images with many bad blocks.
public struct FileMapIndex: Sendable {
    private let map: FileMap
    private let files: RunTree
    // Layers and regions get trees of their own: a manifest is input, and one listing a million layers must not
    // make every bad range a scan of all of them.
    private let layers: RunTree
    private let regions: RunTree

    /// The most runs one query collects; past it the answer says there are more (``BlockOwners/moreFiles``).
    public static let runLimit = 4096

    public init(_ map: FileMap) {
        self.map = map
        files = RunTree(map.entries.map(\.blocks))
        layers = RunTree(map.layers.map(\.blocks))
        regions = RunTree(map.regions.map(\.blocks))
    }

    /// What owns any block of `blocks`.
    public func owners(of blocks: Range<UInt64>) -> BlockOwners {
        guard !blocks.isEmpty else { return BlockOwners() }
        let (hits, more) = files.owners(of: blocks, limit: Self.runLimit)
        let listed = hits.map { e in
            let entry = map.entries[e]
            return BlockOwners.File(path: entry.path, layer: entry.layer.flatMap { map.layers.indices.contains($0) ? map.layers[$0].name : nil })
        }
        // Layers and regions are few in any real map; their names are all collected, in the map's (name) order.
        var owners = BlockOwners(
            files: listed,
            layers: layers.owners(of: blocks, limit: .max).owners.map { map.layers[$0].name },
            regions: regions.owners(of: blocks, limit: .max).owners.map { map.regions[$0].name },
            unlistedFiles: map.unlistedBlocks.intersects(blocks))
        owners.moreFiles = more ? true : nil
        return owners
    }
}

/// Every run of a list of block sets, sorted by start, under a tree of the largest end in each span: the runs that
/// reach a query are found without walking past the ones that do not, so a map whose runs all overlap (hostile,
/// or one huge file early on) costs each query a logarithm, not a scan.
struct RunTree: Sendable {
    private let starts: [UInt64]
    private let owner: [Int]
    private let leaves: Int
    private let maxEnd: [UInt64]

    init(_ sets: [BlockRuns]) {
        var runs: [(start: UInt64, end: UInt64, owner: Int)] = []
        for (i, set) in sets.enumerated() {
            for r in set.runs { runs.append((r.lowerBound, r.upperBound, i)) }
        }
        runs.sort { ($0.start, $0.owner) < ($1.start, $1.owner) }
        starts = runs.map(\.start)
        owner = runs.map(\.owner)
        var size = 1
        while size < runs.count { size *= 2 }
        leaves = size
        var tree = [UInt64](repeating: 0, count: 2 * size)
        for (k, r) in runs.enumerated() { tree[size + k] = r.end }
        for node in stride(from: size - 1, through: 1, by: -1) { tree[node] = max(tree[2 * node], tree[2 * node + 1]) }
        maxEnd = tree
    }

    /// The sets with a run reaching into `blocks`, ascending, from at most `limit` runs; `more` when runs past
    /// the limit reach it too.
    func owners(of blocks: Range<UInt64>, limit: Int) -> (owners: [Int], more: Bool) {
        // Runs starting before the range's end: the first `count` in start order.
        var lo = 0
        var hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] < blocks.upperBound { lo = mid + 1 } else { hi = mid }
        }
        let count = lo
        // Of those, the ones ending after the range's start: down the tree, into spans that hold one.
        var hits = Set<Int>()
        var found = 0
        var more = false
        var stack: [(node: Int, first: Int, width: Int)] = count > 0 ? [(1, 0, leaves)] : []
        while let (node, first, width) = stack.popLast() {
            guard first < count, maxEnd[node] > blocks.lowerBound else { continue }
            if width == 1 {
                guard found < limit else {
                    more = true
                    break
                }
                hits.insert(owner[first])
                found += 1
                continue
            }
            let half = width / 2
            stack.append((2 * node + 1, first + half, half))
            stack.append((2 * node, first, half))
        }
        return (hits.sorted(), more)
    }
}

/// An array position in a decoding error's coding path.
struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}
