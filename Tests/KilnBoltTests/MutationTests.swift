import Foundation
import KilnTestSupport
import Testing
@testable import KilnBolt

@Suite("bbolt keeps writing to Swift-written files")
struct MutationTests {
    /// Puts, deletes, new and deleted buckets and sequence changes over several transactions,
    /// touching branch pages, overflow values and inline buckets.
    static func script() -> BoltScript {
        var random = SeededGenerator(seed: 42)
        var script = BoltScript()
        let big = [Data("big")]
        for index in 0..<2500 {
            let key = Data(String(format: "key-%06d", index * 7 + 3))
            script.add(.put(big, key: key, value: random.data(random.below(30))))
        }
        script.add(.commit)
        for index in stride(from: 0, to: 5000, by: 3) {
            script.add(.delete(big, key: Data(String(format: "key-%06d", index * 7))))
        }
        script.add(.put([Data("large")], key: Data("value-70000"), value: Data("now small")))
        script.add(.delete([Data("large")], key: Data("value-300000")))
        script.add(.put([Data("large")], key: Data("value-new"), value: random.data(20000)))
        script.add(.commit)
        script.add(.deleteBucket([Data("tenants"), Data("tenant-0500")]))
        script.add(.deleteBucket([Data("tenants"), Data("tenant-0097")]))
        script.add(.bucket([Data("tenants"), Data("tenant-0001"), Data("grown")]))
        for index in 0..<50 {
            let tenant = [Data("tenants"), Data("tenant-0001")]
            script.add(.put(tenant, key: Data("more-\(index)"), value: random.data(40)))
        }
        script.add(.put([Data("limits"), Data("at-limit")], key: Data("w"), value: Data("tips it over")))
        script.add(.sequence([Data("tenants")], 99))
        script.add(.nextSequence([Data("tenants"), Data("tenant-0002")]))
        script.add(.nextSequence([Data("v1"), Data("k8s.io"), Data("snapshots"), Data("overlayfs")]))
        script.add(.bucket([Data("v1"), Data("k8s.io"), Data("leases"), Data("lease-1")]))
        script.add(.put([Data("v1"), Data("k8s.io"), Data("leases"), Data("lease-1")], key: Data("createdat"),
                        value: GoTime(unixSeconds: 1_800_000_000).marshalBinary()))
        script.add(.commit)
        script.add(.bucket([Data("fresh")]))
        for _ in 0..<300 {
            script.add(.put([Data("fresh")], key: random.data(16), value: random.data(random.below(200))))
        }
        return script
    }

    @Test("bbolt adds and deletes keys in a Swift-written file and it still checks clean",
          BoltCheck.required)
    func bboltModifiesWrittenFile() throws {
        var tree = Trees.containerd()
        for part in [Trees.manyKeys(), Trees.overflow(), Trees.manyBuckets()] {
            tree.entries.merge(part.entries) { a, _ in a }
        }
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let file = dir.url("containerd.db")
        try Bolt.Writer().write(tree, to: file)
        let script = Self.script()
        try BoltCheck.apply(file, script)

        var expected = tree
        script.apply(to: &expected)
        #expect(try BoltCheck.dump(file) == Dump.render(expected))
        // The Swift reader follows what bbolt made of the file, freelist included.
        let reader = try Bolt.Reader(contentsOf: file)
        #expect(try reader.tree() == expected)
        try reader.verify()
        let stats = try BoltCheck.stats(file)
        // Written at txid 1, then four commits.
        #expect(reader.txid == 5)
        #expect(stats.meta["txid"] == String(reader.txid))
        #expect(stats.meta["freepages"] == String(try reader.freePages().count))
        #expect(try reader.freePages().count > 0)
    }
}
