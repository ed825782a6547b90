import Foundation

extension Bolt {
    /// What a key in a bucket holds: a value or a nested bucket.
    ///
    /// bbolt keeps both in one key space, so a key is either a value or a bucket, never both.
    public enum Entry: Sendable, Hashable {
        case value(Data)
        case bucket(Bucket)
    }

    /// A bucket held in memory: keys mapped to values or nested buckets, plus the bucket's
    /// sequence (bbolt's `NextSequence` counter, which containerd uses to hand out ids).
    ///
    /// A database is a root bucket whose entries are all buckets. Keys are arbitrary non-empty
    /// bytes; ``Bolt/Writer`` sorts them the way bbolt does, so insertion order does not matter.
    public struct Bucket: Sendable, Hashable {
        /// The bucket's sequence number.
        public var sequence: UInt64
        /// Every key of this bucket and what it holds.
        public var entries: [Data: Entry]

        /// Creates a bucket.
        public init(sequence: UInt64 = 0, entries: [Data: Entry] = [:]) {
            self.sequence = sequence
            self.entries = entries
        }

        /// Whether the bucket has no keys.
        public var isEmpty: Bool { entries.isEmpty }

        /// The keys in bbolt's order (bytewise).
        public var sortedKeys: [Data] {
            entries.keys.sorted { Bolt.precedes($0, $1) }
        }

        /// The value stored under `key`, or nil if the key is missing or holds a bucket.
        public func value(forKey key: Data) -> Data? {
            if case .value(let value) = entries[key] { return value }
            return nil
        }

        /// The nested bucket stored under `name`, or nil if missing or a plain value.
        public func bucket(named name: Data) -> Bucket? {
            if case .bucket(let bucket) = entries[name] { return bucket }
            return nil
        }

        /// Follows `path` through nested buckets; the empty path is this bucket.
        public func bucket(at path: [Data]) -> Bucket? {
            var current = self
            for name in path {
                guard let next = current.bucket(named: name) else { return nil }
                current = next
            }
            return current
        }

        /// Stores `value` under `key`, replacing whatever the key held (a nested bucket too).
        public mutating func put(_ value: Data, forKey key: Data) {
            entries[key] = .value(value)
        }

        /// Stores `bucket` under `name`, replacing whatever the key held.
        public mutating func put(bucket: Bucket, named name: Data) {
            entries[name] = .bucket(bucket)
        }

        /// Removes `key` and returns what it held.
        @discardableResult
        public mutating func removeEntry(forKey key: Data) -> Entry? {
            entries.removeValue(forKey: key)
        }

        /// Runs `body` on the nested bucket `name`, creating it (or replacing a plain value)
        /// first if needed, like bbolt's `CreateBucketIfNotExists`.
        @discardableResult
        public mutating func withBucket<Result>(
            _ name: Data,
            _ body: (inout Bucket) throws -> Result
        ) rethrows -> Result {
            // Taking the child out of the dictionary leaves it uniquely referenced, so `body`
            // mutates it in place instead of copying it on every nested edit.
            var child = Bucket()
            if case .bucket(let existing) = entries.removeValue(forKey: name) {
                child = existing
            }
            defer { entries[name] = .bucket(child) }
            return try body(&child)
        }

        /// Runs `body` on the bucket at `path` below this one, creating missing buckets on the
        /// way; the empty path is this bucket.
        @discardableResult
        public mutating func withBucket<Result>(
            at path: [Data],
            _ body: (inout Bucket) throws -> Result
        ) rethrows -> Result {
            guard let first = path.first else { return try body(&self) }
            return try withBucket(first) { child in
                try child.withBucket(at: Array(path.dropFirst()), body)
            }
        }
    }
}

extension Bolt.Bucket {
    /// The value stored under the UTF-8 bytes of `key`.
    public func value(forKey key: String) -> Data? {
        value(forKey: Data(key.utf8))
    }

    /// The nested bucket stored under the UTF-8 bytes of `name`.
    public func bucket(named name: String) -> Bolt.Bucket? {
        bucket(named: Data(name.utf8))
    }

    /// Follows a path of UTF-8 bucket names.
    public func bucket(at path: [String]) -> Bolt.Bucket? {
        bucket(at: path.map { Data($0.utf8) })
    }

    /// Stores `value` under the UTF-8 bytes of `key`.
    public mutating func put(_ value: Data, forKey key: String) {
        put(value, forKey: Data(key.utf8))
    }

    /// Stores the UTF-8 bytes of `value` under the UTF-8 bytes of `key`.
    public mutating func put(_ value: String, forKey key: String) {
        put(Data(value.utf8), forKey: Data(key.utf8))
    }

    /// Stores `bucket` under the UTF-8 bytes of `name`.
    public mutating func put(bucket: Bolt.Bucket, named name: String) {
        put(bucket: bucket, named: Data(name.utf8))
    }

    /// Removes the UTF-8 key `key` and returns what it held.
    @discardableResult
    public mutating func removeEntry(forKey key: String) -> Bolt.Entry? {
        removeEntry(forKey: Data(key.utf8))
    }

    /// Runs `body` on the nested bucket with the UTF-8 name `name`, creating it if needed.
    @discardableResult
    public mutating func withBucket<Result>(
        _ name: String,
        _ body: (inout Bolt.Bucket) throws -> Result
    ) rethrows -> Result {
        try withBucket(Data(name.utf8), body)
    }

    /// Runs `body` on the bucket at `path` below this one, creating missing buckets on the way.
    @discardableResult
    public mutating func withBucket<Result>(
        at path: [String],
        _ body: (inout Bolt.Bucket) throws -> Result
    ) rethrows -> Result {
        try withBucket(at: path.map { Data($0.utf8) }, body)
    }
}
