import Foundation

extension Bolt {
    /// The bytes of an opened file with the geometry its meta page declares.
    struct PageFile: Sendable {
        let bytes: [UInt8]
        let pageSize: Int
        let pageCount: UInt64

        /// The page run starting at `id`, checked against the high-water mark and file size.
        func page(_ id: UInt64) throws -> PageView {
            typealias Error = Reader.Error
            guard id < pageCount else { throw Error.pageOutOfRange(page: id, pageCount: pageCount) }
            let (offset, overflowed) = id.multipliedReportingOverflow(by: UInt64(pageSize))
            guard !overflowed, offset < UInt64(bytes.count),
                UInt64(bytes.count) - offset >= UInt64(Format.pageHeaderSize)
            else {
                throw Error.pageBeyondEndOfFile(page: id, fileSize: bytes.count)
            }
            let start = Int(offset)
            let stored = bytes.loadLE(UInt64.self, at: start)
            guard stored == id else { throw Error.pageIDMismatch(page: id, stored: stored) }
            let overflow = UInt64(bytes.loadLE(UInt32.self, at: start + 12))
            guard id + overflow < pageCount else {
                throw Error.overflowOutOfRange(page: id, overflow: overflow, pageCount: pageCount)
            }
            // id + overflow < pageCount and id * pageSize fits the file, so this cannot overflow
            // before the comparison with the file size.
            let length = (Int(overflow) + 1) * pageSize
            guard length <= bytes.count - start else {
                throw Error.pageBeyondEndOfFile(page: id, fileSize: bytes.count)
            }
            return try PageView(bytes: bytes, start: start, end: start + length, location: .page(id))
        }
    }

    /// One page (or page run, or inline bucket page) with bounds-checked element access.
    struct PageView {
        let bytes: [UInt8]
        let start: Int
        let end: Int
        let location: Reader.PageLocation
        let flags: UInt16
        let count: Int
        /// Pages after the first one in this run.
        let overflow: UInt64

        init(bytes: [UInt8], start: Int, end: Int, location: Reader.PageLocation) throws {
            guard end - start >= Format.pageHeaderSize else {
                throw Reader.Error.elementOutOfBounds(location, index: 0)
            }
            self.bytes = bytes
            self.start = start
            self.end = end
            self.location = location
            self.flags = bytes.loadLE(UInt16.self, at: start + 8)
            self.count = Int(bytes.loadLE(UInt16.self, at: start + 10))
            self.overflow = UInt64(bytes.loadLE(UInt32.self, at: start + 12))
        }

        var isLeaf: Bool { flags & Format.leafPageFlag != 0 }
        var isBranch: Bool { flags & Format.branchPageFlag != 0 }

        /// Checks this is a leaf or branch page whose element table fits the page.
        func requireTreePage() throws {
            guard isLeaf || isBranch else {
                throw Reader.Error.unexpectedPageType(location, flags: flags, expected: "leaf or branch")
            }
            if isBranch && count == 0 { throw Reader.Error.emptyBranch(location) }
            let elementSize = isLeaf ? Format.leafElementSize : Format.branchElementSize
            guard Format.pageHeaderSize + count * elementSize <= end - start else {
                let fitting = (end - start - Format.pageHeaderSize) / elementSize
                throw Reader.Error.elementOutOfBounds(location, index: fitting)
            }
            // Keys and values follow the table in element order, as bbolt writes them. Overlapping elements
            // would let a few bytes stand for many keys, values or inline buckets.
            var next = start + Format.pageHeaderSize + count * elementSize
            for index in 0..<count {
                let bytes: Range<Int>
                if isLeaf {
                    let e = try leafElement(index)
                    bytes = e.key.lowerBound..<e.value.upperBound
                } else {
                    bytes = try branchElement(index).key
                }
                guard bytes.lowerBound >= next else { throw Reader.Error.elementsOverlap(location, index: index) }
                next = bytes.upperBound
            }
        }

        struct LeafElement {
            let flags: UInt32
            let key: Range<Int>
            let value: Range<Int>
            var isBucket: Bool { flags & Format.bucketLeafFlag != 0 }
        }

        /// Leaf element `index`; `pos` counts from the element to its key, the value follows.
        func leafElement(_ index: Int) throws -> LeafElement {
            let element = start + Format.pageHeaderSize + index * Format.leafElementSize
            let flags = bytes.loadLE(UInt32.self, at: element)
            let pos = Int(bytes.loadLE(UInt32.self, at: element + 4))
            let keySize = Int(bytes.loadLE(UInt32.self, at: element + 8))
            let valueSize = Int(bytes.loadLE(UInt32.self, at: element + 12))
            let keyStart = element + pos
            guard keyStart + keySize + valueSize <= end else {
                throw Reader.Error.elementOutOfBounds(location, index: index)
            }
            return LeafElement(
                flags: flags,
                key: keyStart..<(keyStart + keySize),
                value: (keyStart + keySize)..<(keyStart + keySize + valueSize)
            )
        }

        /// Branch element `index`: the first key of a child and the child's page.
        func branchElement(_ index: Int) throws -> (key: Range<Int>, child: UInt64) {
            let element = start + Format.pageHeaderSize + index * Format.branchElementSize
            let pos = Int(bytes.loadLE(UInt32.self, at: element))
            let keySize = Int(bytes.loadLE(UInt32.self, at: element + 4))
            let child = bytes.loadLE(UInt64.self, at: element + 8)
            let keyStart = element + pos
            guard keyStart + keySize <= end else {
                throw Reader.Error.elementOutOfBounds(location, index: index)
            }
            return (keyStart..<(keyStart + keySize), child)
        }

        func key(_ range: Range<Int>) -> ArraySlice<UInt8> { bytes[range] }
    }
}
