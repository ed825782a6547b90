import Foundation

extension Bolt.Reader {
    /// Where a page lives: a page of the file, or the page embedded in an inline bucket's value.
    public enum PageLocation: Sendable, Hashable, CustomStringConvertible {
        case page(UInt64)
        /// The leaf of an inline bucket: its whole path from the root bucket.
        case inlineBucket(path: [Data])

        public var description: String {
            switch self {
            case .page(let id): return "page \(id)"
            case .inlineBucket(let path): return "the inline " + Bolt.describe(path: path)
            }
        }
    }

    /// Why a meta page was rejected.
    public enum MetaProblem: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        /// The file ends before the meta page.
        case truncated
        case badMagic(UInt32)
        case unsupportedVersion(UInt32)
        case badChecksum(stored: UInt64, computed: UInt64)
        /// Not a power of two from 512 to 1 MiB.
        case invalidPageSize(UInt32)
        case rootOutOfRange(root: UInt64, pageCount: UInt64)
        case freelistOutOfRange(freelist: UInt64, pageCount: UInt64)
        /// The high-water mark needs more bytes than the file has.
        case fileShorterThanPages(pageCount: UInt64, fileSize: Int)

        public var description: String {
            switch self {
            case .truncated:
                return "the file ends before it"
            case .badMagic(let magic):
                return "bad magic 0x\(String(magic, radix: 16)) (expected 0xed0cdaed): not a bbolt file"
            case .unsupportedVersion(let version):
                return "unsupported format version \(version) (expected 2)"
            case .badChecksum(let stored, let computed):
                return "checksum mismatch (stored 0x\(String(stored, radix: 16)), "
                    + "computed 0x\(String(computed, radix: 16)))"
            case .invalidPageSize(let size):
                return "invalid page size \(size)"
            case .rootOutOfRange(let root, let pageCount):
                return "root page \(root) is beyond the high-water mark \(pageCount)"
            case .freelistOutOfRange(let freelist, let pageCount):
                return "freelist page \(freelist) is beyond the high-water mark \(pageCount)"
            case .fileShorterThanPages(let pageCount, let fileSize):
                return "high-water mark of \(pageCount) pages needs more than the file's \(fileSize) bytes"
            }
        }
    }

    /// Errors raised for unreadable or corrupt bbolt files.
    public enum Error: Swift.Error, CustomStringConvertible, Hashable {
        /// The file could not be read at all.
        case unreadable(path: String, reason: String)
        /// Neither meta page is valid; `second` describes the meta page 1 candidate.
        case noValidMeta(first: MetaProblem, second: MetaProblem)
        /// A page id at or beyond the high-water mark.
        case pageOutOfRange(page: UInt64, pageCount: UInt64)
        /// A page (with its overflow run) extends past the end of the file.
        case pageBeyondEndOfFile(page: UInt64, fileSize: Int)
        /// The id stored in a page header is not the page's position.
        case pageIDMismatch(page: UInt64, stored: UInt64)
        /// A page has the wrong type for where it is referenced from.
        case unexpectedPageType(PageLocation, flags: UInt16, expected: String)
        /// A page's elements, keys or values run past the page's end.
        case elementOutOfBounds(PageLocation, index: Int)
        /// An element's key or value starts inside the element table or the bytes of the element before it
        /// (bbolt packs them in element order, so two elements never share bytes).
        case elementsOverlap(PageLocation, index: Int)
        /// A page's overflow run ends at or past the high-water mark.
        case overflowOutOfRange(page: UInt64, overflow: UInt64, pageCount: UInt64)
        /// A branch element names a page at or past the high-water mark.
        case childOutOfRange(PageLocation, index: Int, child: UInt64, pageCount: UInt64)
        /// A branch page without elements.
        case emptyBranch(PageLocation)
        /// Keys are not strictly ascending, or lie outside the range their branch assigns.
        case keysOutOfOrder(PageLocation, index: Int)
        /// A page is reached twice (a cycle, or two parents).
        case pageReferencedTwice(page: UInt64)
        /// A bucket's branch pages nest deeper than any real database does.
        case treeTooDeep(PageLocation, limit: Int)
        /// Buckets nest deeper than this reader follows.
        case bucketsNestedTooDeep(limit: Int)
        /// A bucket element whose value is too short for a bucket header or inline page.
        case invalidBucketValue(PageLocation, key: Data, size: Int)
        /// The freelist page is malformed.
        case invalidFreelist(page: UInt64, reason: String)
        /// A page below the high-water mark is neither reachable nor free.
        case pageUnreachable(page: UInt64)
        /// A page is on the freelist and reachable from a bucket.
        case freePageInUse(page: UInt64)
        /// A page is on the freelist twice.
        case pageFreedTwice(page: UInt64)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason):
                return "cannot read bbolt file \(path): \(reason)"
            case .noValidMeta(let first, let second):
                return "no valid bbolt meta page: meta page 0: \(first); meta page 1: \(second)"
            case .pageOutOfRange(let page, let pageCount):
                return "page \(page) is beyond the high-water mark of \(pageCount) pages"
            case .pageBeyondEndOfFile(let page, let fileSize):
                return "page \(page) extends past the end of the \(fileSize)-byte file"
            case .pageIDMismatch(let page, let stored):
                return "page \(page) has id \(stored) in its header"
            case .unexpectedPageType(let location, let flags, let expected):
                return "\(location) has flags 0x\(String(flags, radix: 16)), expected a \(expected) page"
            case .elementOutOfBounds(let location, let index):
                return "element \(index) of \(location) runs past the end of the page"
            case .elementsOverlap(let location, let index):
                return "element \(index) of \(location) overlaps the element table or the element before it"
            case .overflowOutOfRange(let page, let overflow, let pageCount):
                return "page \(page)'s overflow of \(overflow) pages runs past the high-water mark of \(pageCount) pages"
            case .childOutOfRange(let location, let index, let child, let pageCount):
                return "branch element \(index) of \(location) names page \(child), beyond the high-water mark of \(pageCount) pages"
            case .emptyBranch(let location):
                return "branch \(location) has no elements"
            case .keysOutOfOrder(let location, let index):
                return "key \(index) of \(location) is out of order"
            case .pageReferencedTwice(let page):
                return "page \(page) is referenced more than once"
            case .treeTooDeep(let location, let limit):
                return "branch pages under \(location) nest deeper than \(limit) levels"
            case .bucketsNestedTooDeep(let limit):
                return "buckets nest deeper than \(limit) levels"
            case .invalidBucketValue(let location, let key, let size):
                return "bucket '\(Bolt.describe(key: key))' in \(location) has a \(size)-byte value, "
                    + "too short for a bucket header (16 bytes) and, inline, a page header (16 more)"
            case .invalidFreelist(let page, let reason):
                return "freelist page \(page): \(reason)"
            case .pageUnreachable(let page):
                return "page \(page) is neither reachable nor free"
            case .freePageInUse(let page):
                return "page \(page) is free but still reachable"
            case .pageFreedTwice(let page):
                return "page \(page) is on the freelist twice"
            }
        }
    }
}
