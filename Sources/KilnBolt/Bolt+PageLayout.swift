import Foundation

extension Bolt {
    /// One key of a node about to be written: a leaf element (flags, key, value) or a branch
    /// element (key, child page).
    struct Inode {
        var flags: UInt32 = 0
        var key: [UInt8]
        var value: [UInt8] = []
        var child: UInt64 = 0
    }

    /// Allocates pages in order and writes nodes into them, following bbolt's `node.spill`:
    /// child buckets first, then a bucket's leaves, then its branch levels bottom up.
    struct PageLayout {
        let pageSize: Int
        let fillPercent: Double
        /// The file so far; pages 0 and 1 (meta) and 2 (freelist) are reserved and filled last.
        private(set) var bytes: [UInt8]

        init(pageSize: Int, fillPercent: Double) {
            self.pageSize = pageSize
            self.fillPercent = fillPercent
            self.bytes = [UInt8](repeating: 0, count: 3 * pageSize)
        }

        /// Writes the root bucket's tree and returns its root page (the root is never inline).
        mutating func writeRoot(_ root: Bucket) throws -> UInt64 {
            let inodes = try leafInodes(of: root, path: [])
            return try writeTree(inodes, path: [])
        }

        /// Fills in the freelist and both meta pages and returns the whole file.
        mutating func finish(rootPage: UInt64, rootSequence: UInt64) -> [UInt8] {
            let highWaterMark = UInt64(bytes.count / pageSize)
            for txid in 0..<2 {
                let start = txid * pageSize
                bytes.storeLE(UInt64(txid), at: start)
                bytes.storeLE(Format.metaPageFlag, at: start + 8)
                let meta = start + Format.pageHeaderSize
                bytes.storeLE(Format.magic, at: meta)
                bytes.storeLE(Format.version, at: meta + 4)
                bytes.storeLE(UInt32(pageSize), at: meta + 8)
                bytes.storeLE(UInt32(0), at: meta + 12)
                bytes.storeLE(rootPage, at: meta + 16)
                bytes.storeLE(rootSequence, at: meta + 24)
                bytes.storeLE(UInt64(2), at: meta + 32)
                bytes.storeLE(highWaterMark, at: meta + 40)
                bytes.storeLE(UInt64(txid), at: meta + 48)
                let checksum = Bolt.fnv1a64(bytes[meta..<(meta + Format.metaChecksummedSize)])
                bytes.storeLE(checksum, at: meta + Format.metaChecksummedSize)
            }
            let freelist = 2 * pageSize
            bytes.storeLE(UInt64(2), at: freelist)
            bytes.storeLE(Format.freelistPageFlag, at: freelist + 8)
            return bytes
        }

        /// The sorted leaf elements of `bucket`; nested buckets are written (or inlined) first.
        private mutating func leafInodes(of bucket: Bucket, path: [Data]) throws -> [Inode] {
            var keyed: [(key: [UInt8], name: Data, entry: Entry)] = []
            keyed.reserveCapacity(bucket.entries.count)
            for (name, entry) in bucket.entries {
                guard !name.isEmpty else { throw Writer.Error.emptyKey(bucket: path) }
                guard name.count <= Format.maxKeySize else {
                    throw Writer.Error.keyTooLarge(bucket: path, key: name)
                }
                keyed.append((Array(name), name, entry))
            }
            keyed.sort { Bolt.precedes($0.key, $1.key) }

            var inodes: [Inode] = []
            inodes.reserveCapacity(keyed.count)
            for item in keyed {
                switch item.entry {
                case .value(let value):
                    guard value.count <= Format.maxValueSize else {
                        throw Writer.Error.valueTooLarge(bucket: path, key: item.name, size: value.count)
                    }
                    inodes.append(Inode(key: item.key, value: Array(value)))
                case .bucket(let child):
                    let header = try bucketValue(of: child, path: path + [item.name])
                    inodes.append(Inode(flags: Format.bucketLeafFlag, key: item.key, value: header))
                }
            }
            return inodes
        }

        /// The value stored for a nested bucket: an inline bucket (header plus its leaf page)
        /// when bbolt's `Bucket.inlineable` would allow it, otherwise the header of a bucket
        /// whose pages have just been written.
        private mutating func bucketValue(of bucket: Bucket, path: [Data]) throws -> [UInt8] {
            let inodes = try leafInodes(of: bucket, path: path)
            let hasSubBuckets = inodes.contains { $0.flags & Format.bucketLeafFlag != 0 }
            let size = Self.nodeSize(inodes, elementSize: Format.leafElementSize)
            var value = [UInt8](repeating: 0, count: Format.bucketHeaderSize)
            value.storeLE(bucket.sequence, at: 8)
            if !hasSubBuckets && size <= pageSize / 4 {
                var page = [UInt8](repeating: 0, count: size)
                Self.encode(inodes, isLeaf: true, into: &page, at: 0)
                return value + page
            }
            value.storeLE(try writeTree(inodes, path: path), at: 0)
            return value
        }

        /// Writes one bucket's leaves and as many branch levels as needed; returns the root page.
        private mutating func writeTree(_ leafInodes: [Inode], path: [Data]) throws -> UInt64 {
            var level = leafInodes
            var isLeaf = true
            while true {
                let elementSize = isLeaf ? Format.leafElementSize : Format.branchElementSize
                let nodes = split(level, elementSize: elementSize)
                var parents: [Inode] = []
                parents.reserveCapacity(nodes.count)
                for node in nodes {
                    let id = try allocate(node, isLeaf: isLeaf, path: path)
                    if nodes.count == 1 { return id }
                    parents.append(Inode(key: node[node.startIndex].key, child: id))
                }
                level = parents
                isLeaf = false
            }
        }

        /// bbolt's `node.split`: keep one node while it fits a page (or has too few keys to
        /// split), otherwise cut it where the fill threshold is reached and repeat on the rest.
        private func split(_ inodes: [Inode], elementSize: Int) -> [ArraySlice<Inode>] {
            var nodes: [ArraySlice<Inode>] = []
            var rest = inodes[...]
            let threshold = Int(Double(pageSize) * fillPercent)
            while true {
                if rest.count <= Format.minKeysPerPage * 2
                    || Self.sizeLessThan(pageSize, rest, elementSize: elementSize)
                {
                    nodes.append(rest)
                    return nodes
                }
                // bbolt's `splitIndex`: at least minKeysPerPage keys on each side.
                var size = Format.pageHeaderSize
                var index = 0
                for offset in 0..<(rest.count - Format.minKeysPerPage) {
                    index = offset
                    let inode = rest[rest.startIndex + offset]
                    let elementTotal = elementSize + inode.key.count + inode.value.count
                    if index >= Format.minKeysPerPage && size + elementTotal > threshold { break }
                    size += elementTotal
                }
                let cut = rest.startIndex + index
                nodes.append(rest[rest.startIndex..<cut])
                rest = rest[cut...]
            }
        }

        /// Appends a page run big enough for `node` and writes it there.
        private mutating func allocate(_ node: ArraySlice<Inode>, isLeaf: Bool, path: [Data]) throws -> UInt64 {
            let elementSize = isLeaf ? Format.leafElementSize : Format.branchElementSize
            let size = Self.nodeSize(node, elementSize: elementSize)
            // Element offsets are u32; only several values near bbolt's 2 GiB limit sharing one
            // node could exceed that.
            guard size <= Int(UInt32.max) else { throw Writer.Error.pageTooLarge(bucket: path, size: size) }
            let pages = max(1, (size + pageSize - 1) / pageSize)
            let id = UInt64(bytes.count / pageSize)
            let start = bytes.count
            bytes.append(contentsOf: [UInt8](repeating: 0, count: pages * pageSize))
            bytes.storeLE(id, at: start)
            bytes.storeLE(UInt32(pages - 1), at: start + 12)
            Self.encode(node, isLeaf: isLeaf, into: &bytes, at: start)
            return id
        }

        /// bbolt's `node.size`: header plus every element and its key and value bytes.
        static func nodeSize(_ inodes: some Collection<Inode>, elementSize: Int) -> Int {
            inodes.reduce(Format.pageHeaderSize) { $0 + elementSize + $1.key.count + $1.value.count }
        }

        /// bbolt's `node.sizeLessThan`: stops adding once the limit is reached, which keeps
        /// splitting a large bucket linear.
        static func sizeLessThan(_ limit: Int, _ inodes: ArraySlice<Inode>, elementSize: Int) -> Bool {
            var size = Format.pageHeaderSize
            for inode in inodes {
                size += elementSize + inode.key.count + inode.value.count
                if size >= limit { return false }
            }
            return true
        }

        /// bbolt's `node.write`: flags and count in the header, then the elements, then keys and
        /// values packed in order. `pos` counts from each element to its key.
        static func encode(_ inodes: some Collection<Inode>, isLeaf: Bool, into page: inout [UInt8], at start: Int) {
            page.storeLE(isLeaf ? Format.leafPageFlag : Format.branchPageFlag, at: start + 8)
            page.storeLE(UInt16(inodes.count), at: start + 10)
            let elementSize = isLeaf ? Format.leafElementSize : Format.branchElementSize
            var data = start + Format.pageHeaderSize + elementSize * inodes.count
            for (index, inode) in inodes.enumerated() {
                let element = start + Format.pageHeaderSize + elementSize * index
                let pos = UInt32(data - element)
                if isLeaf {
                    page.storeLE(inode.flags, at: element)
                    page.storeLE(pos, at: element + 4)
                    page.storeLE(UInt32(inode.key.count), at: element + 8)
                    page.storeLE(UInt32(inode.value.count), at: element + 12)
                } else {
                    page.storeLE(pos, at: element)
                    page.storeLE(UInt32(inode.key.count), at: element + 4)
                    page.storeLE(inode.child, at: element + 8)
                }
                page.replaceSubrange(data..<(data + inode.key.count), with: inode.key)
                data += inode.key.count
                page.replaceSubrange(data..<(data + inode.value.count), with: inode.value)
                data += inode.value.count
            }
        }
    }
}
