import Foundation
import KilnTestSupport
import Testing
@testable import KilnBolt

@Suite("Swift-written files judged by bbolt")
struct WriterTests {
    @Test("bbolt's tx.Check is clean and its dump equals the tree", BoltCheck.required,
          arguments: Trees.all.map(\.name))
    func bboltReadsWrittenTree(name: String) throws {
        let tree = try #require(Trees.all.first { $0.name == name }).tree
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("written.db")
        try Bolt.Writer().write(tree, to: file)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
        #expect(size % 4096 == 0)
        #expect(try BoltCheck.dump(file) == Dump.render(tree))
        let stats = try BoltCheck.stats(file)
        #expect(stats.meta["pagesize"] == "4096")
        #expect(stats.meta["txid"] == "1")
        // bbolt's tx.Size() is pgid * pageSize: the file holds exactly the pages in use.
        #expect(stats.meta["size"] == String(size))
        #expect(stats.meta["freepages"] == "0")
    }

    @Test("an empty database is byte for byte what bbolt initialises", BoltCheck.required)
    func emptyDatabaseMatchesBbolt() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let goFile = dir.url("go.db")
        try BoltCheck.apply(goFile, BoltScript())
        let expected = try Data(contentsOf: goFile)
        #expect(try Bolt.Writer().serialize(Bolt.Bucket()) == expected)
    }

    @Test("large buckets get branch pages, several levels deep, filled like bbolt fills them",
          BoltCheck.required)
    func branchPages() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("many.db")
        try Bolt.Writer().write(Trees.manyKeys(), to: file)
        let stats = try BoltCheck.stats(file).buckets
        let big = try #require(stats["/" + Data("big").hex])
        #expect(big["keys"] == 5000)
        #expect((big["branch"] ?? 0) >= 1)
        #expect((big["depth"] ?? 0) >= 2)
        let deep = try #require(stats["/" + Data("deep").hex])
        #expect((deep["depth"] ?? 0) >= 4)
        for bucket in [big, deep] {
            // Split pages at bbolt's 50% threshold: well below full, well above empty.
            let fill = Double(bucket["leafinuse"] ?? 0) / Double(max(bucket["leafalloc"] ?? 1, 1))
            #expect(fill > 0.4 && fill < 0.75, "leaf fill \(fill)")
        }
    }

    @Test("elements larger than a page get overflow pages", BoltCheck.required)
    func overflowPages() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("overflow.db")
        try Bolt.Writer().write(Trees.overflow(), to: file)
        let stats = try BoltCheck.stats(file).buckets
        #expect((stats["/" + Data("large").hex]?["leafoverflow"] ?? 0) > 70)
        #expect((stats["/" + Data("mixed").hex]?["leafoverflow"] ?? 0) > 0)
        #expect((stats["/" + Data("mixed").hex]?["branch"] ?? 0) > 0)
    }

    @Test("buckets are inlined exactly when bbolt inlines them", BoltCheck.required)
    func inlineBuckets() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("buckets.db")
        let tree = Trees.manyBuckets()
        try Bolt.Writer().write(tree, to: file)
        let stats = try BoltCheck.stats(file).buckets
        // bbolt's Stats().InlineBucketN counts the bucket itself if inline plus inline descendants.
        func inline(_ path: String...) -> Int? {
            stats["/" + path.map { Data($0).hex }.joined(separator: "/")]?["inline"]
        }
        #expect(inline("limits", "at-limit") == 1)
        #expect(inline("limits", "over-limit") == 0)
        #expect(inline("limits", "empty") == 1)
        // A bucket with a sub-bucket is never inline; its empty child is.
        #expect(inline("limits", "only-buckets") == 1)
        #expect(inline("tenants", "tenant-0001") == 1)
        // 120 keys do not fit a quarter page and "nested" holds a bucket: only "deeper" is inline.
        #expect(inline("tenants", "tenant-0000") == 1)
        #expect(inline("tenants", "tenant-0000", "nested") == 1)
        #expect(inline("tenants", "tenant-0000", "nested", "deeper") == 1)
        #expect(inline("tenants", "tenant-0097") == 0)
    }

    @Test("the same tree gives the same bytes, whatever order it was built in")
    func deterministic() throws {
        let tree = Trees.containerd()
        var reversed = Bolt.Bucket()
        func copyReversed(_ bucket: Bolt.Bucket) -> Bolt.Bucket {
            var out = Bolt.Bucket(sequence: bucket.sequence)
            for key in bucket.sortedKeys.reversed() {
                switch bucket.entries[key] {
                case .value(let value): out.put(value, forKey: key)
                case .bucket(let child): out.put(bucket: copyReversed(child), named: key)
                case nil: break
                }
            }
            return out
        }
        reversed = copyReversed(tree)
        let first = try Bolt.Writer().serialize(tree)
        #expect(try Bolt.Writer().serialize(tree) == first)
        #expect(try Bolt.Writer().serialize(reversed) == first)
    }

    @Test("trees bbolt could not hold are rejected with the place named")
    func invalidTrees() throws {
        var root = Bolt.Bucket()
        root.withBucket(at: ["a", "b"]) { $0.put(Data("x"), forKey: Data()) }
        #expect(throws: Bolt.Writer.Error.emptyKey(bucket: [Data("a"), Data("b")])) {
            try Bolt.Writer().serialize(root)
        }
        let error = #expect(throws: Bolt.Writer.Error.self) { try Bolt.Writer().serialize(root) }
        #expect(error?.description.contains("'a/b'") == true)

        var tooLong = Bolt.Bucket()
        tooLong.withBucket("a") { $0.put(Data(), forKey: Data(count: 32769)) }
        #expect(throws: Bolt.Writer.Error.keyTooLarge(bucket: [Data("a")], key: Data(count: 32769))) {
            try Bolt.Writer().serialize(tooLong)
        }

        var rootValue = Bolt.Bucket()
        rootValue.put(Data("x"), forKey: "top")
        #expect(throws: Bolt.Writer.Error.valueInRootBucket(key: Data("top"))) {
            try Bolt.Writer().serialize(rootValue)
        }
        #expect(throws: Bolt.Writer.Error.invalidPageSize(3000)) {
            try Bolt.Writer(pageSize: 3000).serialize(Bolt.Bucket())
        }
        #expect(throws: Bolt.Writer.Error.invalidFillPercent(0)) {
            try Bolt.Writer(fillPercent: 0).serialize(Bolt.Bucket())
        }
    }

    @Test("other page sizes and fill percents stay valid for bbolt", BoltCheck.required,
          arguments: [(1024, 0.5), (4096, 1.0), (16384, 0.9), (65536, 0.1)])
    func geometry(pageSize: Int, fill: Double) throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("geometry.db")
        var tree = Trees.manyKeys()
        tree.entries.merge(Trees.overflow().entries) { a, _ in a }
        try Bolt.Writer(pageSize: pageSize, fillPercent: fill).write(tree, to: file)
        #expect(try BoltCheck.dump(file) == Dump.render(tree))
        #expect(try BoltCheck.stats(file).meta["pagesize"] == String(pageSize))
    }
}
