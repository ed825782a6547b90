import Foundation
import KilnTestSupport
import Testing
@testable import KilnBolt

@Suite("Reading bbolt files")
struct ReaderTests {
    /// A database built by bbolt over several transactions, so it has a freelist, branch
    /// pages, overflow pages, inline and page-based buckets, and a txid above 1.
    static func goScript() -> BoltScript {
        var random = SeededGenerator(seed: 7)
        var script = BoltScript()
        let v1 = [Data("v1")]
        script.add(.bucket(v1))
        script.add(.bucket(v1 + [Data("keys")]))
        script.add(.bucket([Data("blobs")]))
        script.add(.put(v1, key: Data("version"), value: GoVarint.encode(3)))
        for index in 0..<4000 {
            let key = Data(String(format: "%07d", index * 13)) + random.data(random.below(40))
            script.add(.put(v1 + [Data("keys")], key: key, value: random.data(random.below(50))))
            if index % 1000 == 999 { script.add(.commit) }
        }
        for index in 0..<300 {
            let bucket = v1 + [Data("buckets"), Data("b\(index)")]
            script.add(.bucket(bucket))
            script.add(.sequence(bucket, UInt64(index * index)))
            for key in 0..<(index % 7 == 0 ? 60 : 2) {
                script.add(.put(bucket, key: Data("k\(key)"), value: random.data(key)))
            }
        }
        script.add(.commit)
        for size in [5000, 12000, 100_000] {
            script.add(.put([Data("blobs")], key: Data("blob-\(size)"), value: random.data(size)))
        }
        script.add(.deleteBucket(v1 + [Data("buckets"), Data("b7")]))
        script.add(.commit)
        script.add(.delete([Data("blobs")], key: Data("blob-12000")))
        script.add(.nextSequence(v1))
        return script
    }

    @Test("the Swift reader sees what bbolt wrote", BoltCheck.required)
    func readsGoWrittenFile() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("go.db")
        let script = Self.goScript()
        try BoltCheck.apply(file, script)
        let goDump = try BoltCheck.dump(file)
        let stats = try BoltCheck.stats(file)

        let reader = try Bolt.Reader(contentsOf: file)
        let tree = try reader.tree()
        #expect(Dump.render(tree) == goDump)
        var expected = Bolt.Bucket()
        script.apply(to: &expected)
        #expect(tree == expected)
        #expect(String(reader.txid) == stats.meta["txid"])
        #expect(String(reader.pageSize) == stats.meta["pagesize"])
        #expect(String(try reader.freePages().count) == stats.meta["freepages"])
        try reader.verify()

        // Lookups through the branch pages find every key; misses return nil.
        let keys = try #require(try reader.root.bucket(at: ["v1", "keys"]))
        #expect(keys.rootPage != nil)
        let keyList = try keys.keys()
        #expect(keyList.count == 4000)
        for key in keyList {
            #expect(try keys.value(forKey: key) == expected.bucket(at: ["v1", "keys"])?.value(forKey: key))
        }
        #expect(try keys.value(forKey: Data("missing")) == nil)
        let small = try #require(try reader.root.bucket(at: ["v1", "buckets", "b3"]))
        #expect(small.isInline)
        #expect(small.sequence == 9)
        #expect(try reader.root.bucket(at: ["v1", "buckets", "b7"]) == nil)
        #expect(try reader.root.bucket(named: "v1")?.sequence == 1)
        #expect(try reader.root.bucket(named: "v1")?.value(forKey: "version") == Data([0x06]))
        #expect(try reader.root.bucket(named: "v1")?.value(forKey: "keys") == nil)
    }

    @Test("a tree read from a bbolt file and written again is the same database",
          BoltCheck.required)
    func rewriteGoWrittenFile() throws {
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let goFile = dir.url("go.db")
        let script = Self.goScript()
        try BoltCheck.apply(goFile, script)
        let rewritten = dir.url("rewritten.db")
        try Bolt.Writer().write(try Bolt.Reader(contentsOf: goFile).tree(), to: rewritten)
        #expect(try BoltCheck.dump(rewritten) == BoltCheck.dump(goFile))
    }

    @Test("Swift-written files read back as the tree written", arguments: Trees.all.map(\.name))
    func roundTrip(name: String) throws {
        let tree = try #require(Trees.all.first { $0.name == name }).tree
        let bytes = try Bolt.Writer().serialize(tree)
        let reader = try Bolt.Reader(data: bytes)
        #expect(reader.txid == 1)
        #expect(reader.pageSize == 4096)
        #expect(reader.pageCount * 4096 == UInt64(bytes.count))
        #expect(try reader.freePages().isEmpty)
        #expect(try reader.tree() == tree)
        try reader.verify()
        for key in tree.sortedKeys {
            let stored = try #require(try reader.root.bucket(named: key))
            let original = try #require(tree.bucket(named: key))
            #expect(try stored.keys() == original.sortedKeys)
            #expect(stored.sequence == original.sequence)
            for inner in original.sortedKeys {
                #expect(try stored.value(forKey: inner) == original.value(forKey: inner))
            }
        }
    }
}
