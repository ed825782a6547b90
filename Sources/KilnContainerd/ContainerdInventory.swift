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
        public var description: String {
            switch self {
            case .notContainerd(let why): return "not a containerd metadata database: \(why)"
            }
        }
    }

    /// Reads `meta.db` and, when given, the overlayfs snapshotter's `metadata.db`.
    public init(metaDB: Data, snapshotterDB: Data?) throws {
        let meta = try Bolt.Reader(data: metaDB)
        guard let v1 = try meta.root.bucket(named: "v1") else { throw Error.notContainerd("no v1 bucket") }
        if let v = try v1.value(forKey: "version") { version = try GoVarint.decode(v).value }
        var snapshotterRecords: [String: (UInt64?, String?, Int64?, Int64?)] = [:]
        if let snapshotterDB, let sv1 = try Bolt.Reader(data: snapshotterDB).root.bucket(named: "v1"),
           let snaps = try sv1.bucket(named: "snapshots") {
            for (key, entry) in try snaps.entries() {
                guard case .bucket(let b) = entry else { continue }
                let id = try b.value(forKey: "id").map { try GoVarint.decodeUnsigned($0).value }
                let kind = try b.value(forKey: "kind").flatMap { $0.first }.map { k -> String in
                    switch k { case 1: return "view"; case 2: return "active"; case 3: return "committed"; default: return "kind \(k)" }
                }
                let inodes = try b.value(forKey: "inodes").map { try GoVarint.decode($0).value }
                let size = try b.value(forKey: "size").map { try GoVarint.decode($0).value }
                snapshotterRecords[String(decoding: key, as: UTF8.self)] = (id, kind, inodes, size)
            }
        }
        for (nsKey, nsEntry) in try v1.entries() {
            guard case .bucket(let ns) = nsEntry else { continue }
            let namespace = String(decoding: nsKey, as: UTF8.self)
            if let images = try ns.bucket(named: "images") {
                for (k, e) in try images.entries() {
                    guard case .bucket(let b) = e else { continue }
                    let target = try b.bucket(named: "target")
                    self.images.append(Image(
                        namespace: namespace, name: String(decoding: k, as: UTF8.self),
                        digest: try target?.value(forKey: "digest").map { String(decoding: $0, as: UTF8.self) } ?? "",
                        mediaType: try target?.value(forKey: "mediatype").map { String(decoding: $0, as: UTF8.self) } ?? "",
                        size: try target?.value(forKey: "size").map { try GoVarint.decode($0).value } ?? 0,
                        labels: try Self.labels(b)))
                }
            }
            if let blobs = try ns.bucket(at: ["content", "blob"]) {
                for (k, e) in try blobs.entries() {
                    guard case .bucket(let b) = e else { continue }
                    self.blobs.append(Blob(
                        namespace: namespace, digest: String(decoding: k, as: UTF8.self),
                        size: try b.value(forKey: "size").map { try GoVarint.decode($0).value } ?? 0,
                        labels: try Self.labels(b)))
                }
            }
            if let snapshotters = try ns.bucket(named: "snapshots") {
                for (_, se) in try snapshotters.entries() {
                    guard case .bucket(let sb) = se else { continue }
                    for (k, e) in try sb.entries() {
                        guard case .bucket(let b) = e else { continue }
                        let name = try b.value(forKey: "name").map { String(decoding: $0, as: UTF8.self) } ?? ""
                        let backend = snapshotterRecords[name]
                        self.snapshots.append(Snapshot(
                            namespace: namespace, key: String(decoding: k, as: UTF8.self),
                            parent: try b.value(forKey: "parent").map { String(decoding: $0, as: UTF8.self) },
                            name: name, id: backend?.0, kind: backend?.1, inodes: backend?.2, size: backend?.3,
                            labels: try Self.labels(b)))
                    }
                }
            }
        }
    }

    static func labels(_ b: Bolt.StoredBucket) throws -> [String: String] {
        guard let l = try b.bucket(named: "labels") else { return [:] }
        var out: [String: String] = [:]
        for (k, e) in try l.entries() {
            if case .value(let v) = e { out[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self) }
        }
        return out
    }
}
