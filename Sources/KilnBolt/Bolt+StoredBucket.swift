import Foundation

extension Bolt {
    /// What a key of a stored bucket holds.
    public enum StoredEntry: Sendable {
        case value(Data)
        case bucket(StoredBucket)
    }

    /// A bucket inside an opened file, read on demand.
    public struct StoredBucket: Sendable {
        /// The bucket's sequence number.
        public let sequence: UInt64
        /// The bucket's root page, or nil for an inline bucket.
        public let rootPage: UInt64?

        let file: PageFile
        /// The leaf page of an inline bucket (its value after the 16-byte header) and its key.
        let inlinePage: (bytes: [UInt8], key: Data)?
        /// Keys from the root bucket to this one, for messages.
        let path: [Data]

        /// Branch pages never nest this deep in a real file: each level at least halves the
        /// remaining pages.
        static let maxTreeDepth = 64
        /// Deeper bucket nesting is taken as corruption rather than risking the stack.
        static let maxNestingDepth = 256

        init(file: PageFile, rootPage: UInt64?, inlinePage: (bytes: [UInt8], key: Data)?, sequence: UInt64, path: [Data] = []) {
            self.file = file
            self.path = path
            self.rootPage = rootPage
            self.inlinePage = inlinePage
            self.sequence = sequence
        }

        /// Whether the bucket is stored inside its parent's leaf.
        public var isInline: Bool { inlinePage != nil }

        /// Every key in bbolt order with what it holds.
        public func entries() throws -> [(key: Data, entry: StoredEntry)] {
            var result: [(key: Data, entry: StoredEntry)] = []
            var visited: Set<UInt64> = []
            try forEachElement(visited: &visited) { page, element in
                let key = Data(page.key(element.key))
                result.append((key, try entry(of: element, in: page, key: key)))
            }
            return result
        }

        /// Every key in bbolt order.
        public func keys() throws -> [Data] {
            var result: [Data] = []
            var visited: Set<UInt64> = []
            try forEachElement(visited: &visited) { page, element in
                result.append(Data(page.key(element.key)))
            }
            return result
        }

        /// The value under `key`, found through the branch pages like bbolt's `Get`; nil when
        /// the key is missing or holds a bucket.
        public func value(forKey key: Data) throws -> Data? {
            guard let (page, element) = try find(Array(key)), !element.isBucket else { return nil }
            return Data(page.bytes[element.value])
        }

        /// The nested bucket `name`; nil when missing or a plain value.
        public func bucket(named name: Data) throws -> StoredBucket? {
            guard let (page, element) = try find(Array(name)), element.isBucket else { return nil }
            guard case .bucket(let bucket) = try entry(of: element, in: page, key: name) else { return nil }
            return bucket
        }

        /// Follows `path` through nested buckets; the empty path is this bucket.
        public func bucket(at path: [Data]) throws -> StoredBucket? {
            var current = self
            for name in path {
                guard let next = try current.bucket(named: name) else { return nil }
                current = next
            }
            return current
        }

        /// The value under the UTF-8 bytes of `key`.
        public func value(forKey key: String) throws -> Data? {
            try value(forKey: Data(key.utf8))
        }

        /// The nested bucket with the UTF-8 name `name`.
        public func bucket(named name: String) throws -> StoredBucket? {
            try bucket(named: Data(name.utf8))
        }

        /// Follows a path of UTF-8 bucket names.
        public func bucket(at path: [String]) throws -> StoredBucket? {
            try bucket(at: path.map { Data($0.utf8) })
        }

        /// Reads this bucket and everything below it into memory.
        public func tree() throws -> Bucket {
            var visited: Set<UInt64> = []
            return try materialize(depth: 0, visited: &visited)
        }
    }
}

extension Bolt.StoredBucket {
    typealias Error = Bolt.Reader.Error
    typealias PageView = Bolt.PageView

    func materialize(depth: Int, visited: inout Set<UInt64>) throws -> Bolt.Bucket {
        guard depth < Self.maxNestingDepth else { throw Error.bucketsNestedTooDeep(limit: Self.maxNestingDepth) }
        var bucket = Bolt.Bucket(sequence: sequence)
        var children: [(Data, Bolt.StoredBucket)] = []
        try forEachElement(visited: &visited) { page, element in
            let key = Data(page.key(element.key))
            switch try entry(of: element, in: page, key: key) {
            case .value(let value): bucket.entries[key] = .value(value)
            case .bucket(let child): children.append((key, child))
            }
        }
        for (key, child) in children {
            bucket.entries[key] = .bucket(try child.materialize(depth: depth + 1, visited: &visited))
        }
        return bucket
    }

    /// Decodes a leaf element: a plain value, or a bucket header with an inline page.
    func entry(of element: PageView.LeafElement, in page: PageView, key: Data) throws -> Bolt.StoredEntry {
        guard element.isBucket else { return .value(Data(page.bytes[element.value])) }
        let value = element.value
        guard value.count >= Bolt.Format.bucketHeaderSize else {
            throw Error.invalidBucketValue(page.location, key: key, size: value.count)
        }
        let root = page.bytes.loadLE(UInt64.self, at: value.lowerBound)
        let sequence = page.bytes.loadLE(UInt64.self, at: value.lowerBound + 8)
        if root != 0 {
            return .bucket(Bolt.StoredBucket(file: file, rootPage: root, inlinePage: nil, sequence: sequence, path: path + [key]))
        }
        let inline = Array(page.bytes[(value.lowerBound + Bolt.Format.bucketHeaderSize)..<value.upperBound])
        guard inline.count >= Bolt.Format.pageHeaderSize else {
            throw Error.invalidBucketValue(page.location, key: key, size: value.count)
        }
        return .bucket(Bolt.StoredBucket(file: file, rootPage: nil, inlinePage: (inline, key), sequence: sequence, path: path + [key]))
    }

    /// The bucket's top page: its root page, or the page embedded in an inline bucket.
    func topPage() throws -> PageView {
        if let inlinePage {
            let page = try PageView(
                bytes: inlinePage.bytes, start: 0, end: inlinePage.bytes.count,
                location: .inlineBucket(path: path)
            )
            try page.requireTreePage()
            guard page.isLeaf else {
                throw Error.unexpectedPageType(page.location, flags: page.flags, expected: "leaf")
            }
            return page
        }
        // The init only leaves rootPage nil together with an inline page.
        let page = try file.page(rootPage ?? 0)
        try page.requireTreePage()
        return page
    }

    /// Visits every leaf element in key order, marking each page run in `visited` and checking
    /// that keys ascend strictly and stay inside the range their branch element assigns.
    func forEachElement(
        visited: inout Set<UInt64>,
        _ body: (PageView, PageView.LeafElement) throws -> Void
    ) throws {
        var previous: ArraySlice<UInt8>? = nil
        let top = try topPage()
        if case .page(let id) = top.location { try Self.mark(top, id: id, visited: &visited) }
        try walk(top, lower: nil, upper: nil, depth: 0, previous: &previous, visited: &visited, body)
    }

    private static func mark(_ page: PageView, id: UInt64, visited: inout Set<UInt64>) throws {
        for run in id...(id + page.overflow) {
            guard visited.insert(run).inserted else { throw Error.pageReferencedTwice(page: run) }
        }
    }

    private func walk(
        _ page: PageView,
        lower: ArraySlice<UInt8>?,
        upper: ArraySlice<UInt8>?,
        depth: Int,
        previous: inout ArraySlice<UInt8>?,
        visited: inout Set<UInt64>,
        _ body: (PageView, PageView.LeafElement) throws -> Void
    ) throws {
        guard depth < Self.maxTreeDepth else { throw Error.treeTooDeep(page.location, limit: Self.maxTreeDepth) }
        func inRange(_ key: ArraySlice<UInt8>) -> Bool {
            if let lower, Bolt.precedes(key, lower) { return false }
            if let upper, !Bolt.precedes(key, upper) { return false }
            return true
        }
        if page.isLeaf {
            for index in 0..<page.count {
                let element = try page.leafElement(index)
                let key = page.key(element.key)
                if let last = previous, !Bolt.precedes(last, key) {
                    throw Error.keysOutOfOrder(page.location, index: index)
                }
                guard inRange(key) else { throw Error.keysOutOfOrder(page.location, index: index) }
                previous = key
                try body(page, element)
            }
            return
        }
        var elements: [(key: ArraySlice<UInt8>, child: UInt64)] = []
        for index in 0..<page.count {
            let element = try page.branchElement(index)
            let key = page.key(element.key)
            if let last = elements.last, !Bolt.precedes(last.key, key) {
                throw Error.keysOutOfOrder(page.location, index: index)
            }
            elements.append((key, element.child))
        }
        for (index, element) in elements.enumerated() {
            guard element.child < file.pageCount else {
                throw Error.childOutOfRange(page.location, index: index, child: element.child, pageCount: file.pageCount)
            }
            let child = try file.page(element.child)
            try Self.mark(child, id: element.child, visited: &visited)
            try child.requireTreePage()
            // The first child also takes keys below its branch key, as bbolt's seek does.
            let childLower = index == 0 ? lower : element.key
            let childUpper = index + 1 < elements.count ? elements[index + 1].key : upper
            try walk(
                child, lower: childLower, upper: childUpper, depth: depth + 1,
                previous: &previous, visited: &visited, body
            )
        }
    }

    /// bbolt's cursor seek for an exact key: in a branch, the last element whose key is not
    /// above `key`; in the leaf, an exact match.
    func find(_ key: [UInt8]) throws -> (PageView, PageView.LeafElement)? {
        var page = try topPage()
        var depth = 0
        while !page.isLeaf {
            depth += 1
            guard depth < Self.maxTreeDepth else { throw Error.treeTooDeep(page.location, limit: Self.maxTreeDepth) }
            var low = 0
            var high = page.count
            // First index whose key is above `key`, minus one.
            while low < high {
                let mid = (low + high) / 2
                if Bolt.precedes(key, page.key(try page.branchElement(mid).key)) { high = mid } else { low = mid + 1 }
            }
            let child = try page.branchElement(max(low - 1, 0)).child
            guard child < file.pageCount else {
                throw Error.childOutOfRange(page.location, index: max(low - 1, 0), child: child, pageCount: file.pageCount)
            }
            page = try file.page(child)
            try page.requireTreePage()
        }
        var low = 0
        var high = page.count
        while low < high {
            let mid = (low + high) / 2
            let element = try page.leafElement(mid)
            let candidate = page.key(element.key)
            if Bolt.precedes(candidate, key) {
                low = mid + 1
            } else if Bolt.precedes(key, candidate) {
                high = mid
            } else {
                return (page, element)
            }
        }
        return nil
    }
}
