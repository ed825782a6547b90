import Foundation

extension Bolt {
    /// An opened bbolt file: its geometry, current meta page and root bucket.
    ///
    /// The reader takes the valid meta page with the higher txid, as bbolt does, and checks
    /// every page, element and key it touches, so a corrupt file gives an ``Error`` rather
    /// than a crash.
    public struct Reader: Sendable {
        /// The page size the file was written with.
        public let pageSize: Int
        /// The transaction id of the meta page in use.
        public let txid: UInt64
        /// The high-water mark: pages below it are in use or free.
        public let pageCount: UInt64
        /// The freelist page, or nil when the file does not sync its freelist.
        public let freelistPage: UInt64?
        /// The root bucket; its entries are the top-level buckets.
        public let root: StoredBucket

        let file: PageFile

        /// Opens the file at `url`.
        public init(contentsOf url: URL) throws {
            let data: Data
            do {
                data = try Data(contentsOf: url)
            } catch {
                throw Error.unreadable(path: url.path, reason: String(describing: error))
            }
            try self.init(data: data)
        }

        /// Opens a file held in memory.
        public init(data: Data) throws {
            let bytes = [UInt8](data)
            let meta = try Self.currentMeta(bytes)
            self.pageSize = meta.pageSize
            self.txid = meta.txid
            self.pageCount = meta.pageCount
            self.freelistPage = meta.freelist == Format.noFreelist ? nil : meta.freelist
            self.file = PageFile(bytes: bytes, pageSize: meta.pageSize, pageCount: meta.pageCount)
            self.root = StoredBucket(file: file, rootPage: meta.root, inlinePage: nil, sequence: meta.rootSequence)
        }

        /// Reads the whole database into memory, checking every page on the way.
        public func tree() throws -> Bucket {
            var visited: Set<UInt64> = []
            return try root.materialize(depth: 0, visited: &visited)
        }

        /// The free page ids, sorted: the freelist page's contents, or, when the freelist is
        /// not synced, every page below the high-water mark no bucket reaches (as bbolt
        /// rebuilds it).
        public func freePages() throws -> [UInt64] {
            guard let freelistPage else {
                var visited: Set<UInt64> = [0, 1]
                _ = try root.materialize(depth: 0, visited: &visited)
                return (2..<pageCount).filter { !visited.contains($0) }
            }
            let page = try file.page(freelistPage)
            guard page.flags & Format.freelistPageFlag != 0 else {
                throw Error.unexpectedPageType(.page(freelistPage), flags: page.flags, expected: "freelist")
            }
            var first = page.start + Format.pageHeaderSize
            var count = page.count
            if count == Format.freelistCountOverflow {
                guard first + 8 <= page.end else {
                    throw Error.invalidFreelist(page: freelistPage, reason: "count overflows the page")
                }
                let stored = file.bytes.loadLE(UInt64.self, at: first)
                guard stored <= UInt64((page.end - first) / 8) else {
                    throw Error.invalidFreelist(page: freelistPage, reason: "\(stored) ids do not fit the page")
                }
                count = Int(stored)
                first += 8
            }
            guard first + count * 8 <= page.end else {
                throw Error.invalidFreelist(page: freelistPage, reason: "\(count) ids do not fit the page")
            }
            var ids: [UInt64] = []
            ids.reserveCapacity(count)
            for index in 0..<count {
                let id = file.bytes.loadLE(UInt64.self, at: first + index * 8)
                guard id >= 2, id < pageCount else {
                    throw Error.invalidFreelist(
                        page: freelistPage,
                        reason: "free page \(id) is outside 2..<\(pageCount)"
                    )
                }
                ids.append(id)
            }
            return ids.sorted()
        }

        /// bbolt's `tx.Check()`: every page below the high-water mark is a meta page, the
        /// freelist, reachable exactly once from the root, or free, never two of these.
        /// Also checks key order and branch ranges in every bucket.
        public func verify() throws {
            var visited: Set<UInt64> = [0, 1]
            if let freelistPage {
                let page = try file.page(freelistPage)
                for id in freelistPage...(freelistPage + page.overflow) {
                    guard visited.insert(id).inserted else { throw Error.pageReferencedTwice(page: id) }
                }
            }
            _ = try root.materialize(depth: 0, visited: &visited)
            guard freelistPage != nil else { return }
            var free: Set<UInt64> = []
            for id in try freePages() {
                guard free.insert(id).inserted else { throw Error.pageFreedTwice(page: id) }
                guard !visited.contains(id) else { throw Error.freePageInUse(page: id) }
            }
            for id in 0..<pageCount where !visited.contains(id) && !free.contains(id) {
                throw Error.pageUnreachable(page: id)
            }
        }
    }
}

extension Bolt.Reader {
    struct Meta {
        var pageSize: Int
        var root: UInt64
        var rootSequence: UInt64
        var freelist: UInt64
        var pageCount: UInt64
        var txid: UInt64
    }

    /// bbolt's `db.meta()`: the valid meta page with the higher txid. Page 1 sits one page
    /// size in, so its position comes from page 0, or is guessed if page 0 is damaged.
    static func currentMeta(_ bytes: [UInt8]) throws -> Meta {
        let first = parseMeta(bytes, at: 0)
        // With page 0 valid, page 1 is where page 0's page size puts it, and nowhere else (bbolt's
        // getPageSize): a value elsewhere in the file that looks like a meta page must not be taken for one.
        var candidates: [Int] = []
        if case .success(let meta) = first {
            candidates.append(meta.pageSize)
        } else {
            if bytes.count >= 28, let size = validPageSize(bytes.loadLE(UInt32.self, at: 24)) { candidates.append(size) }
            candidates += [4096] + (9...20).map { 1 << $0 }.filter { $0 != 4096 }
        }
        var second: Result<Meta, MetaProblem> = .failure(.truncated)
        for (index, offset) in candidates.enumerated() {
            let attempt = parseMeta(bytes, at: offset)
            if index == 0 { second = attempt }
            if case .success(let meta) = attempt, meta.pageSize == offset {
                second = attempt
                break
            }
        }
        switch (first, second) {
        case (.success(let a), .success(let b)):
            return b.txid > a.txid ? b : a
        case (.success(let a), .failure):
            return a
        case (.failure, .success(let b)):
            return b
        case (.failure(let a), .failure(let b)):
            throw Error.noValidMeta(first: a, second: b)
        }
    }

    static func validPageSize(_ size: UInt32) -> Int? {
        (512...(1 << 20)).contains(size) && size & (size - 1) == 0 ? Int(size) : nil
    }

    /// Parses and validates the meta structure of the page at `offset`.
    static func parseMeta(_ bytes: [UInt8], at offset: Int) -> Result<Meta, MetaProblem> {
        let base = offset + Bolt.Format.pageHeaderSize
        guard bytes.count >= base + Bolt.Format.metaSize else { return .failure(.truncated) }
        let magic = bytes.loadLE(UInt32.self, at: base)
        guard magic == Bolt.Format.magic else { return .failure(.badMagic(magic)) }
        let version = bytes.loadLE(UInt32.self, at: base + 4)
        guard version == Bolt.Format.version else { return .failure(.unsupportedVersion(version)) }
        let stored = bytes.loadLE(UInt64.self, at: base + Bolt.Format.metaChecksummedSize)
        let computed = Bolt.fnv1a64(bytes[base..<(base + Bolt.Format.metaChecksummedSize)])
        guard stored == computed else { return .failure(.badChecksum(stored: stored, computed: computed)) }
        let rawPageSize = bytes.loadLE(UInt32.self, at: base + 8)
        guard let pageSize = validPageSize(rawPageSize) else { return .failure(.invalidPageSize(rawPageSize)) }
        let meta = Meta(
            pageSize: pageSize,
            root: bytes.loadLE(UInt64.self, at: base + 16),
            rootSequence: bytes.loadLE(UInt64.self, at: base + 24),
            freelist: bytes.loadLE(UInt64.self, at: base + 32),
            pageCount: bytes.loadLE(UInt64.self, at: base + 40),
            txid: bytes.loadLE(UInt64.self, at: base + 48)
        )
        guard meta.root >= 2, meta.root < meta.pageCount else {
            return .failure(.rootOutOfRange(root: meta.root, pageCount: meta.pageCount))
        }
        guard meta.freelist == Bolt.Format.noFreelist || (meta.freelist >= 2 && meta.freelist < meta.pageCount) else {
            return .failure(.freelistOutOfRange(freelist: meta.freelist, pageCount: meta.pageCount))
        }
        let (needed, overflow) = meta.pageCount.multipliedReportingOverflow(by: UInt64(pageSize))
        guard !overflow, needed <= UInt64(bytes.count) else {
            return .failure(.fileShorterThanPages(pageCount: meta.pageCount, fileSize: bytes.count))
        }
        return .success(meta)
    }
}
