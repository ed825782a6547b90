import Foundation
import KilnBolt

/// What a containerd root holds, read back from its two databases (for `kiln inspect` and tests).
public struct ContainerdInventory: Sendable, Codable {
    public struct Image: Sendable, Codable {
        public var namespace: String
        public var name: String
        public var digest: String
        public var mediaType: String
        public var size: Int64
        public var labels: [String: String]
    }

    public struct Blob: Sendable, Codable {
        public var namespace: String
        public var digest: String
        public var size: Int64
        public var labels: [String: String]
    }

    public struct Snapshot: Sendable, Codable {
        public var namespace: String
        public var key: String
        public var parent: String?
        /// The snapshotter's key (`<namespace>/<seq>/<key>`).
        public var name: String
        public var id: UInt64?
        public var kind: String?
        public var inodes: Int64?
        public var size: Int64?
        public var labels: [String: String]
    }

    public var version: Int64?
    public var images: [Image] = []
    public var blobs: [Blob] = []
    public var snapshots: [Snapshot] = []

    public enum Error: Swift.Error, CustomStringConvertible {
        case notContainerd(String)
        /// A database's pages do not hold together (`database` is the file's name in the containerd root).
        case damaged(database: String, Bolt.Reader.Error)
        /// A record whose value does not decode: the database, the bucket path and the key.
        case badValue(database: String, bucket: String, key: String, reason: String)

        public var description: String {
            switch self {
            case .notContainerd(let why): return "not a containerd metadata database: \(why)"
            case .damaged(let database, let error): return "\(database): \(error)"
            case .badValue(let database, let bucket, let key, let why): return "\(database): bucket \(bucket): key '\(key)': \(why)"
            }
        }
    }

    /// Reads `meta.db` and, when given, the overlayfs snapshotter's `metadata.db`.
    ///
    /// Each database is read whole, in one walk that visits every page once: containerd's records are
    /// buckets of buckets, and walking them one lookup at a time would let a damaged file that points many
    /// buckets at one page make the work grow with every level.
    public init(metaDB: Data, snapshotterDB: Data?) throws {
        let metaName = ContainerdRoot.Paths.metaDB
        let meta = try Self.tree(metaDB, name: metaName)
        guard let v1 = meta.bucket(named: "v1") else { throw Error.notContainerd("no v1 bucket") }
        if let v = v1.value(forKey: "version") { version = try Self.signed(v, metaName, "v1", "version") }
        var snapshotterRecords: [String: (UInt64?, String?, Int64?, Int64?)] = [:]
        if let snapshotterDB {
            let snapName = ContainerdRoot.Paths.snapshotterDB
            let snapshotter = try Self.tree(snapshotterDB, name: snapName)
            if let snaps = snapshotter.bucket(at: ["v1", "snapshots"]) {
                for (key, b) in Self.buckets(snaps) {
                    let path = "v1/snapshots/\(Bolt.describe(key: key))"
                    let id = try b.value(forKey: "id").map { try Self.unsigned($0, snapName, path, "id") }
                    let kind = b.value(forKey: "kind").flatMap { $0.first }.map { k -> String in
                        switch k { case 1: return "view"; case 2: return "active"; case 3: return "committed"; default: return "kind \(k)" }
                    }
                    let inodes = try b.value(forKey: "inodes").map { try Self.signed($0, snapName, path, "inodes") }
                    let size = try b.value(forKey: "size").map { try Self.signed($0, snapName, path, "size") }
                    snapshotterRecords[String(decoding: key, as: UTF8.self)] = (id, kind, inodes, size)
                }
            }
        }
        for (nsKey, ns) in Self.buckets(v1) {
            let namespace = String(decoding: nsKey, as: UTF8.self)
            let nsPath = "v1/\(Bolt.describe(key: nsKey))"
            if let images = ns.bucket(named: "images") {
                for (k, b) in Self.buckets(images) {
                    let target = b.bucket(named: "target")
                    let path = "\(nsPath)/images/\(Bolt.describe(key: k))/target"
                    self.images.append(Image(
                        namespace: namespace, name: String(decoding: k, as: UTF8.self),
                        digest: target?.value(forKey: "digest").map { String(decoding: $0, as: UTF8.self) } ?? "",
                        mediaType: target?.value(forKey: "mediatype").map { String(decoding: $0, as: UTF8.self) } ?? "",
                        size: try target?.value(forKey: "size").map { try Self.signed($0, metaName, path, "size") } ?? 0,
                        labels: Self.labels(b)))
                }
            }
            if let blobs = ns.bucket(at: ["content", "blob"]) {
                for (k, b) in Self.buckets(blobs) {
                    let path = "\(nsPath)/content/blob/\(Bolt.describe(key: k))"
                    self.blobs.append(Blob(
                        namespace: namespace, digest: String(decoding: k, as: UTF8.self),
                        size: try b.value(forKey: "size").map { try Self.signed($0, metaName, path, "size") } ?? 0,
                        labels: Self.labels(b)))
                }
            }
            if let snapshotters = ns.bucket(named: "snapshots") {
                for (_, sb) in Self.buckets(snapshotters) {
                    for (k, b) in Self.buckets(sb) {
                        let name = b.value(forKey: "name").map { String(decoding: $0, as: UTF8.self) } ?? ""
                        let backend = snapshotterRecords[name]
                        self.snapshots.append(Snapshot(
                            namespace: namespace, key: String(decoding: k, as: UTF8.self),
                            parent: b.value(forKey: "parent").map { String(decoding: $0, as: UTF8.self) },
                            name: name, id: backend?.0, kind: backend?.1, inodes: backend?.2, size: backend?.3,
                            labels: Self.labels(b)))
                    }
                }
            }
        }
    }

    static func tree(_ data: Data, name: String) throws -> Bolt.Bucket {
        do { return try Bolt.Reader(data: data).tree() } catch let e as Bolt.Reader.Error { throw Error.damaged(database: name, e) }
    }

    /// The nested buckets of `bucket` in bbolt's key order (plain values skipped).
    static func buckets(_ bucket: Bolt.Bucket) -> [(Data, Bolt.Bucket)] {
        bucket.sortedKeys.compactMap { key in bucket.bucket(named: key).map { (key, $0) } }
    }

    static func signed(_ value: Data, _ database: String, _ bucket: String, _ key: String) throws -> Int64 {
        do { return try GoVarint.decode(value).value } catch {
            throw Error.badValue(database: database, bucket: bucket, key: key, reason: "\(error)")
        }
    }

    static func unsigned(_ value: Data, _ database: String, _ bucket: String, _ key: String) throws -> UInt64 {
        do { return try GoVarint.decodeUnsigned(value).value } catch {
            throw Error.badValue(database: database, bucket: bucket, key: key, reason: "\(error)")
        }
    }

    static func labels(_ b: Bolt.Bucket) -> [String: String] {
        guard let l = b.bucket(named: "labels") else { return [:] }
        var out: [String: String] = [:]
        for k in l.sortedKeys {
            if let v = l.value(forKey: k) { out[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self) }
        }
        return out
    }
}
