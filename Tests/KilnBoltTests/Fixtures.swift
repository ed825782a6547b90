import Foundation
import KilnTestSupport
@testable import KilnBolt

extension Data {
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: count * 2)
        for (index, byte) in enumerated() {
            out[2 * index] = digits[Int(byte >> 4)]
            out[2 * index + 1] = digits[Int(byte & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }

    init(_ string: String) { self.init(string.utf8) }
}

/// Renders a tree in boltcheck's dump format, so a Swift tree and bbolt's view of a file can
/// be compared line by line.
enum Dump {
    static func render(_ root: Bolt.Bucket) -> String {
        var out = ""
        for key in root.sortedKeys {
            if let child = root.bucket(named: key) { render(child, path: [key], into: &out) }
        }
        return out
    }

    private static func render(_ bucket: Bolt.Bucket, path: [Data], into out: inout String) {
        let name = "/" + path.map(\.hex).joined(separator: "/")
        out += "B \(name) \(bucket.sequence)\n"
        for key in bucket.sortedKeys {
            switch bucket.entries[key] {
            case .bucket(let child): render(child, path: path + [key], into: &out)
            case .value(let value): out += "K \(name) \(key.hex) \(value.isEmpty ? "-" : value.hex)\n"
            case nil: break
            }
        }
    }
}

/// A boltcheck `apply` script that can also be applied to a Swift tree, giving the tree bbolt
/// should end up with.
struct BoltScript {
    enum Operation {
        case bucket([Data])
        case put([Data], key: Data, value: Data)
        case delete([Data], key: Data)
        case deleteBucket([Data])
        case sequence([Data], UInt64)
        case nextSequence([Data])
        case commit
    }

    var operations: [Operation] = []

    mutating func add(_ operation: Operation) { operations.append(operation) }

    var text: String {
        func path(_ p: [Data]) -> String { "/" + p.map(\.hex).joined(separator: "/") }
        return operations.map { operation -> String in
            switch operation {
            case .bucket(let p): return "bucket \(path(p))"
            case .put(let p, let key, let value): return "put \(path(p)) \(key.hex) \(value.isEmpty ? "-" : value.hex)"
            case .delete(let p, let key): return "del \(path(p)) \(key.hex)"
            case .deleteBucket(let p): return "delbucket \(path(p))"
            case .sequence(let p, let n): return "seq \(path(p)) \(n)"
            case .nextSequence(let p): return "nextseq \(path(p))"
            case .commit: return "commit"
            }
        }.joined(separator: "\n") + "\n"
    }

    func apply(to root: inout Bolt.Bucket) {
        for operation in operations {
            switch operation {
            case .bucket(let p): root.withBucket(at: p) { _ in }
            case .put(let p, let key, let value): root.withBucket(at: p) { $0.put(value, forKey: key) }
            case .delete(let p, let key): root.withBucket(at: p) { $0.removeEntry(forKey: key) }
            case .deleteBucket(let p):
                root.withBucket(at: Array(p.dropLast())) { $0.removeEntry(forKey: p[p.count - 1]) }
            case .sequence(let p, let n): root.withBucket(at: p) { $0.sequence = n }
            case .nextSequence(let p): root.withBucket(at: p) { $0.sequence += 1 }
            case .commit: break
            }
        }
    }
}

extension SeededGenerator {
    /// `count` random bytes as `Data`, the type bucket keys and values have.
    mutating func data(_ count: Int) -> Data { Data(bytes(count)) }
}

enum Trees {
    /// A containerd 1.6 meta.db shape: images, content records and snapshots in `k8s.io`.
    static func containerd() -> Bolt.Bucket {
        var root = Bolt.Bucket()
        let created = GoTime(unixSeconds: 1_700_000_000, nanoseconds: 123_456_789).marshalBinary()
        root.withBucket("v1") { v1 in
            v1.put(GoVarint.encode(3), forKey: "version")
            v1.withBucket("k8s.io") { ns in
                ns.withBucket(at: ["images", "docker.io/library/busybox:1.36"]) { image in
                    image.put(created, forKey: "createdat")
                    image.put(created, forKey: "updatedat")
                    image.withBucket("target") { target in
                        target.put("sha256:" + String(repeating: "ab", count: 32), forKey: "digest")
                        target.put("application/vnd.oci.image.index.v1+json", forKey: "mediatype")
                        target.put(GoVarint.encode(9014), forKey: "size")
                    }
                    image.withBucket("labels") { $0.put("managed", forKey: "io.cri-containerd.image") }
                }
                for index in 0..<40 {
                    let digest = "sha256:" + String(format: "%064x", index * 7919)
                    ns.withBucket(at: ["content", "blob", digest]) { blob in
                        blob.put(created, forKey: "createdat")
                        blob.put(created, forKey: "updatedat")
                        blob.put(GoVarint.encode(Int64(index) * 100_003), forKey: "size")
                        blob.withBucket("labels") { labels in
                            for layer in 0..<(index % 5) {
                                labels.put(
                                    "sha256:" + String(format: "%064x", layer),
                                    forKey: "containerd.io/gc.ref.content.l.\(layer)"
                                )
                            }
                        }
                    }
                }
                ns.withBucket(at: ["snapshots", "overlayfs"]) { overlay in
                    var parent: String? = nil
                    for layer in 0..<6 {
                        let chain = "sha256:" + String(format: "%064x", 0xC0FFEE + layer)
                        overlay.withBucket(chain) { snapshot in
                            snapshot.sequence = UInt64(layer + 1)
                            snapshot.put("k8s.io/\(layer + 1)/\(chain)", forKey: "name")
                            if let parent { snapshot.put(parent, forKey: "parent") }
                            snapshot.put(created, forKey: "createdat")
                            snapshot.put(created, forKey: "updatedat")
                            snapshot.withBucket("children") { _ in }
                            snapshot.withBucket("labels") { $0.put(chain, forKey: "containerd.io/snapshot.ref") }
                        }
                        if let parent {
                            overlay.withBucket(at: [parent, "children"]) { $0.put(Data(), forKey: chain) }
                        }
                        parent = chain
                    }
                }
            }
        }
        return root
    }

    /// Thousands of keys: one bucket needing a branch level, one with long keys needing several.
    static func manyKeys() -> Bolt.Bucket {
        var random = SeededGenerator(seed: 1)
        var root = Bolt.Bucket()
        root.withBucket("big") { big in
            for index in 0..<5000 {
                big.put(random.data(random.below(40)), forKey: Data(String(format: "key-%06d", index * 7)))
            }
        }
        root.withBucket("deep") { deep in
            for index in 0..<3000 {
                deep.put(Data("v\(index)"), forKey: Data(String(format: "%08d", index)) + random.data(200))
            }
        }
        return root
    }

    /// Values and keys larger than a page, alone and among small elements.
    static func overflow() -> Bolt.Bucket {
        var random = SeededGenerator(seed: 2)
        var root = Bolt.Bucket()
        root.withBucket("large") { large in
            for size in [4097, 5000, 8192, 10_000, 70_000, 300_000] {
                large.put(random.data(size), forKey: "value-\(size)")
            }
            large.put(Data("small"), forKey: random.data(32768))
            large.put(random.data(9000), forKey: Data(repeating: 0xFF, count: 32768))
        }
        root.withBucket("mixed") { mixed in
            for index in 0..<600 {
                let size = index % 50 == 7 ? 6000 + index : random.below(60)
                mixed.put(random.data(size), forKey: "k\(String(format: "%05d", index))")
            }
        }
        return root
    }

    /// Many sub-buckets: inline ones, page-based ones, nested ones, empty ones, sequences, and
    /// buckets right at the inline size limit.
    static func manyBuckets() -> Bolt.Bucket {
        var random = SeededGenerator(seed: 3)
        var root = Bolt.Bucket(sequence: 0)
        root.withBucket("tenants") { tenants in
            tenants.sequence = 2000
            for index in 0..<2000 {
                tenants.withBucket(String(format: "tenant-%04d", index)) { tenant in
                    tenant.sequence = UInt64(index)
                    let keys = index % 97 == 0 ? 120 : index % 4
                    for key in 0..<keys { tenant.put(random.data(key * 3), forKey: "k\(key)") }
                    if index % 250 == 0 {
                        tenant.withBucket("nested") { nested in
                            nested.sequence = .max
                            nested.withBucket("deeper") { $0.put(Data("x"), forKey: "leaf") }
                        }
                    }
                }
            }
        }
        root.withBucket("limits") { limits in
            // Node size 16 + 16 + 1 + 991 = 1024 = pageSize/4: bbolt inlines it; one byte more it does not.
            limits.withBucket("at-limit") { $0.put(Data(repeating: 1, count: 991), forKey: "v") }
            limits.withBucket("over-limit") { $0.put(Data(repeating: 2, count: 992), forKey: "v") }
            limits.withBucket("empty") { _ in }
            limits.withBucket("only-buckets") { $0.withBucket("empty") { _ in } }
        }
        root.withBucket("order") { order in
            let keys: [[UInt8]] = [
                [0x00], [0x00, 0x00], [0x61], [0x61, 0x00], [0x61, 0x62], [0x62], [0x7F], [0x80], [0xFF], [0xFF, 0xFF],
            ]
            for key in keys {
                order.put(Data(key.reversed()), forKey: Data(key))
            }
            order.put(Data(), forKey: "empty-value")
        }
        return root
    }

    static func oneBucket() -> Bolt.Bucket {
        var root = Bolt.Bucket()
        root.withBucket("one") { one in
            one.sequence = 5
            one.put(Data("v"), forKey: "k")
        }
        return root
    }

    static var all: [(name: String, tree: Bolt.Bucket)] {
        [
            ("empty", Bolt.Bucket()),
            ("one bucket", oneBucket()),
            ("containerd", containerd()),
            ("many keys", manyKeys()),
            ("overflow", overflow()),
            ("many buckets", manyBuckets()),
        ]
    }
}
