import Foundation

extension Bolt {
    /// Lays out a ``Bolt/Bucket`` tree as a bbolt file.
    ///
    /// The file looks like one bbolt wrote in a single transaction into a fresh database: both
    /// meta pages (txid 0 and 1), an empty freelist at page 2, then the buckets' pages. Leaf
    /// and branch pages are split the way bbolt splits them (fill up to ``fillPercent`` when a
    /// node exceeds a page), small buckets without sub-buckets are inlined into their parent
    /// exactly when bbolt would inline them, and elements larger than a page get overflow
    /// pages. The same tree always gives the same bytes.
    public struct Writer: Sendable {
        /// The page size; bbolt reads it from the file, 4096 suits every platform we target.
        public var pageSize: Int
        /// How full a page gets before the next one starts when a node is split (bbolt's
        /// `Bucket.FillPercent`, 0.1 through 1.0). Half-full pages leave room for the writes
        /// containerd makes later without splitting every page at once.
        public var fillPercent: Double

        /// Creates a writer.
        public init(pageSize: Int = 4096, fillPercent: Double = 0.5) {
            self.pageSize = pageSize
            self.fillPercent = fillPercent
        }

        /// Errors raised for trees or settings bbolt could not represent.
        public enum Error: Swift.Error, CustomStringConvertible, Equatable {
            /// The page size is not a power of two between 1024 and 65536.
            case invalidPageSize(Int)
            /// The fill percent is outside 0.1 through 1.0.
            case invalidFillPercent(Double)
            /// A key is empty; bbolt rejects zero-length keys.
            case emptyKey(bucket: [Data])
            /// A key is longer than bbolt's `MaxKeySize` (32768 bytes).
            case keyTooLarge(bucket: [Data], key: Data)
            /// A value is longer than bbolt's `MaxValueSize`.
            case valueTooLarge(bucket: [Data], key: Data, size: Int)
            /// The root bucket holds a plain value; bbolt only allows buckets at the top level.
            case valueInRootBucket(key: Data)
            /// A page run would exceed the 4 GiB its u32 offsets can address.
            case pageTooLarge(bucket: [Data], size: Int)
            /// Writing the file failed.
            case writeFailed(path: String, reason: String)

            public var description: String {
                switch self {
                case .invalidPageSize(let size):
                    return "invalid bbolt page size \(size): expected a power of two from 1024 to 65536"
                case .invalidFillPercent(let fill):
                    return "invalid bbolt fill percent \(fill): expected 0.1 through 1.0"
                case .emptyKey(let path):
                    return "empty key in \(Bolt.describe(path: path)): bbolt keys must not be empty"
                case .keyTooLarge(let path, let key):
                    return "key of \(key.count) bytes in \(Bolt.describe(path: path)) exceeds bbolt's "
                        + "limit of \(Format.maxKeySize) bytes"
                case .valueTooLarge(let path, let key, let size):
                    return "value of \(size) bytes under key '\(Bolt.describe(key: key))' in "
                        + "\(Bolt.describe(path: path)) exceeds bbolt's limit of \(Format.maxValueSize) bytes"
                case .valueInRootBucket(let key):
                    return "plain value under key '\(Bolt.describe(key: key))' in the root bucket: "
                        + "bbolt only allows buckets at the top level"
                case .pageTooLarge(let path, let size):
                    return "page of \(size) bytes in \(Bolt.describe(path: path)) "
                        + "exceeds the 4 GiB a bbolt page can address"
                case .writeFailed(let path, let reason):
                    return "cannot write bbolt file \(path): \(reason)"
                }
            }
        }

        /// The complete file for `root`, `pgid * pageSize` bytes long.
        ///
        /// `root` must hold only buckets; its ``Bolt/Bucket/sequence`` goes into the meta pages.
        public func serialize(_ root: Bucket) throws -> Data {
            guard pageSize >= 1024, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
                throw Error.invalidPageSize(pageSize)
            }
            guard fillPercent >= 0.1, fillPercent <= 1.0 else {
                throw Error.invalidFillPercent(fillPercent)
            }
            for (key, entry) in root.entries {
                if case .value = entry { throw Error.valueInRootBucket(key: key) }
            }
            var layout = PageLayout(pageSize: pageSize, fillPercent: fillPercent)
            let rootPage = try layout.writeRoot(root)
            return Data(layout.finish(rootPage: rootPage, rootSequence: root.sequence))
        }

        /// Writes the file for `root` to `url`, replacing it atomically.
        public func write(_ root: Bucket, to url: URL) throws {
            let bytes = try serialize(root)
            do {
                try bytes.write(to: url, options: .atomic)
            } catch {
                throw Error.writeFailed(path: url.path, reason: String(describing: error))
            }
        }
    }
}
