import Foundation
import KilnTestSupport
import Testing
@testable import KilnBolt

@Suite("Corrupt files give errors")
struct CorruptionTests {
    typealias ReaderError = Bolt.Reader.Error

    static let pageSize = 4096

    /// containerd's shape plus a bucket `big` large enough for a branch page over 20 leaves.
    static let file: [UInt8] = {
        var tree = Trees.containerd()
        tree.withBucket("big") { big in
            for index in 0..<800 {
                let value = Data(repeating: UInt8(index % 251), count: index % 40)
                big.put(value, forKey: Data(String(format: "key-%06d", index * 7)))
            }
        }
        return (try? [UInt8](Bolt.Writer().serialize(tree))) ?? []
    }()

    static func written() throws -> [UInt8] {
        try #require(!file.isEmpty, "the fixture could not be written")
        return file
    }

    static func reread(_ bytes: [UInt8]) throws -> Bolt.Bucket {
        try Bolt.Reader(data: Data(bytes)).tree()
    }

    static func storeLE<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) {
            bytes.replaceSubrange(offset..<(offset + MemoryLayout<T>.size), with: $0)
        }
    }

    /// Rewrites a meta page's checksum after editing it, so the edit itself is what the reader sees.
    static func reseal(_ bytes: inout [UInt8], meta page: Int) {
        let base = page * pageSize + 16
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes[base..<(base + 56)] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        storeLE(hash, in: &bytes, at: base + 56)
    }

    @Test("bad magic in both meta pages")
    func badMagic() throws {
        var bytes = try Self.written()
        bytes[16] ^= 0xFF
        bytes[Self.pageSize + 16] ^= 0xFF
        let error = #expect(throws: ReaderError.self) { try Self.reread(bytes) }
        guard case .noValidMeta(.badMagic, .badMagic) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("not a bbolt file") == true)
    }

    @Test("a damaged meta page falls back to the other one, as bbolt does")
    func metaFallback() throws {
        var bytes = try Self.written()
        bytes[Self.pageSize + 40] ^= 0x01  // meta 1's root sequence: its checksum no longer matches
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(reader.txid == 0)
        bytes[40] ^= 0x01
        let error = #expect(throws: ReaderError.self) { try Self.reread(bytes) }
        guard case .noValidMeta(.badChecksum, .badChecksum) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
    }

    @Test("files cut short are rejected")
    func truncated() throws {
        let bytes = try Self.written()
        let error = #expect(throws: ReaderError.self) { try Self.reread(Array(bytes.prefix(bytes.count / 2))) }
        guard case .noValidMeta(.fileShorterThanPages, .fileShorterThanPages) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(throws: ReaderError.noValidMeta(first: .truncated, second: .truncated)) {
            try Self.reread(Array(bytes.prefix(40)))
        }
        #expect(throws: ReaderError.self) { try Self.reread([]) }
    }

    @Test("a root page beyond the high-water mark makes the meta page invalid")
    func rootOutOfRange() throws {
        var bytes = try Self.written()
        for page in 0..<2 {
            Self.storeLE(UInt64(1_000_000), in: &bytes, at: page * Self.pageSize + 32)
            Self.reseal(&bytes, meta: page)
        }
        let error = #expect(throws: ReaderError.self) { try Self.reread(bytes) }
        guard case .noValidMeta(.rootOutOfRange(1_000_000, _), .rootOutOfRange) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
    }

    /// The root page of the bucket `big`, a branch page.
    static func bigRoot(_ bytes: [UInt8]) throws -> Int {
        let reader = try Bolt.Reader(data: Data(bytes))
        let big = try #require(try reader.root.bucket(named: "big"))
        return Int(try #require(big.rootPage))
    }

    @Test("a branch pointing past the high-water mark")
    func branchOutOfRange() throws {
        var bytes = try Self.written()
        let root = try Self.bigRoot(bytes) * Self.pageSize
        #expect(bytes[root + 8] == 0x01)  // branch page
        Self.storeLE(UInt64(999_999), in: &bytes, at: root + 16 + 8)
        let reader = try Bolt.Reader(data: Data(bytes))
        let error = #expect(throws: ReaderError.self) { try reader.tree() }
        guard case .childOutOfRange(.page(UInt64(root / Self.pageSize)), index: 0, child: 999_999, _) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("branch element 0 of page \(root / Self.pageSize) names page 999999") == true)
        #expect(throws: ReaderError.self) { try reader.root.bucket(named: "big")?.keys() }
    }

    @Test("elements sharing bytes are refused: a few bytes cannot stand for many keys or buckets")
    func overlappingElements() throws {
        var bytes = try Self.written()
        let branch = try Self.bigRoot(bytes) * Self.pageSize
        // The branch's first child, a leaf: element 1's key is moved onto element 0's.
        let leafID = Int(bytes[branch + 16 + 8]) | Int(bytes[branch + 16 + 9]) << 8
        let leaf = leafID * Self.pageSize
        try #require(bytes[leaf + 8] == 0x02)
        let pos0 = Int(bytes[leaf + 16 + 4]) | Int(bytes[leaf + 16 + 5]) << 8
        Self.storeLE(UInt32(pos0 - 16), in: &bytes, at: leaf + 32 + 4)
        let reader = try Bolt.Reader(data: Data(bytes))
        let error = #expect(throws: ReaderError.self) { try reader.tree() }
        guard case .elementsOverlap(.page(UInt64(leafID)), index: 1) = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(throws: ReaderError.self) { try reader.root.bucket(named: "big")?.value(forKey: Data("key-000007".utf8)) }
    }

    @Test("with meta page 0 valid, meta page 1 is looked for only where page 0 says, not wherever one appears")
    func forgedMetaElsewhereIsIgnored() throws {
        var bytes = try Self.written()
        let good = try Bolt.Reader(data: Data(bytes))
        let offset = 2 * Self.pageSize
        try #require(bytes.count >= offset + Self.pageSize, "the fixture is \(bytes.count) bytes")
        bytes[Self.pageSize + 40] ^= 0x01  // meta 1 torn
        // A copy of meta 0 at 8 KiB (page 2) claiming 8 KiB pages and a later transaction, sealed.
        bytes.replaceSubrange(offset..<(offset + 128), with: bytes[0..<128])
        Self.storeLE(UInt64(offset / Self.pageSize), in: &bytes, at: offset)
        Self.storeLE(UInt32(offset), in: &bytes, at: offset + 16 + 8)
        Self.storeLE(UInt64(2), in: &bytes, at: offset + 16 + 16)
        Self.storeLE(Bolt.Format.noFreelist, in: &bytes, at: offset + 16 + 32)
        Self.storeLE(UInt64(bytes.count / offset), in: &bytes, at: offset + 16 + 40)
        Self.storeLE(UInt64(99), in: &bytes, at: offset + 16 + 48)
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes[(offset + 16)..<(offset + 16 + 56)] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        Self.storeLE(hash, in: &bytes, at: offset + 16 + 56)
        try #require(Bolt.Reader.parseMeta(bytes, at: offset).isSuccess, "the forged meta page is itself valid")
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(reader.pageSize == Self.pageSize && reader.txid == 0 && reader.pageCount == good.pageCount, "meta 0 (txid 0) is the one in use")
    }

    @Test("a branch pointing at itself is a cycle, not endless recursion")
    func branchCycle() throws {
        var bytes = try Self.written()
        let rootPage = try Self.bigRoot(bytes)
        Self.storeLE(UInt64(rootPage), in: &bytes, at: rootPage * Self.pageSize + 16 + 8)
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(throws: ReaderError.pageReferencedTwice(page: UInt64(rootPage))) { try reader.tree() }
        // A lookup that descends into the looping child stops at the depth limit.
        let big = try #require(try reader.root.bucket(named: "big"))
        #expect(throws: ReaderError.self) { try big.value(forKey: Data("key-000000")) }
    }

    @Test("an element whose key lies past its page")
    func elementOutOfBounds() throws {
        var bytes = try Self.written()
        let root = try Self.bigRoot(bytes) * Self.pageSize
        let firstLeaf = Int(bytes[root + 24]) | Int(bytes[root + 25]) << 8 | Int(bytes[root + 26]) << 16
        let element = firstLeaf * Self.pageSize + 16
        Self.storeLE(UInt32(0x7FFF_0000), in: &bytes, at: element + 4)
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(throws: ReaderError.elementOutOfBounds(.page(UInt64(firstLeaf)), index: 0)) { try reader.tree() }
    }

    @Test("keys out of order are reported")
    func keysOutOfOrder() throws {
        var bytes = try Self.written()
        let root = try Self.bigRoot(bytes) * Self.pageSize
        let firstLeaf = (Int(bytes[root + 24]) | Int(bytes[root + 25]) << 8) * Self.pageSize
        // Make the second key sort before the first: "key-..." becomes "aey-...".
        let element = firstLeaf + 16 + 16
        let pos = Int(bytes[element + 4]) | Int(bytes[element + 5]) << 8
        bytes[element + pos] = UInt8(ascii: "a")
        #expect(throws: ReaderError.self) { try Self.reread(bytes) }
    }

    @Test("a page whose header names another page")
    func pageIDMismatch() throws {
        var bytes = try Self.written()
        let rootPage = try Self.bigRoot(bytes)
        Self.storeLE(UInt64(rootPage + 1), in: &bytes, at: rootPage * Self.pageSize)
        #expect(throws: ReaderError.pageIDMismatch(page: UInt64(rootPage), stored: UInt64(rootPage + 1))) {
            try Self.reread(bytes)
        }
    }

    @Test("a freelist that claims more ids than fit its page")
    func badFreelist() throws {
        var bytes = try Self.written()
        Self.storeLE(UInt16(0xFFFF), in: &bytes, at: 2 * Self.pageSize + 10)
        Self.storeLE(UInt64(1 << 40), in: &bytes, at: 2 * Self.pageSize + 16)
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(throws: ReaderError.self) { try reader.freePages() }
        #expect(throws: ReaderError.self) { try reader.verify() }
    }

    @Test("random damage gives errors or a tree, never a crash", arguments: 0..<4)
    func randomDamage(seed: UInt64) throws {
        let original = try Self.written()
        var random = SeededGenerator(seed: seed)
        for _ in 0..<100 {
            var bytes = original
            let page = 2 + random.below(original.count / Self.pageSize - 2)
            if random.below(4) == 0 {
                // Scramble a whole page.
                let noise = random.bytes(Self.pageSize)
                bytes.replaceSubrange((page * Self.pageSize)..<((page + 1) * Self.pageSize), with: noise)
            } else {
                for _ in 0..<(1 + random.below(8)) {
                    // Headers and element tables are where damage matters most.
                    let offset = page * Self.pageSize + random.below(random.below(2) == 0 ? 96 : Self.pageSize)
                    bytes[offset] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            guard let reader = try? Bolt.Reader(data: Data(bytes)) else { continue }
            _ = try? reader.tree()
            _ = try? reader.verify()
            _ = try? reader.freePages()
            if let big = try? reader.root.bucket(named: "big") {
                _ = try? big.value(forKey: Data("key-001400"))
                _ = try? big.value(forKey: Data("key-005593"))
                _ = try? big.entries()
            }
        }
    }

    @Test("nested inline buckets deeper than the limit are an error, not a stack overflow")
    func nestingLimit() throws {
        // An inline bucket holding an inline bucket holding ... 300 levels, built by hand.
        func inlineBucket(containing child: [UInt8]?) -> [UInt8] {
            var value = [UInt8](repeating: 0, count: 16)  // root 0, sequence 0
            var page = [UInt8](repeating: 0, count: 16)
            page[8] = 0x02
            if let child {
                page[10] = 1
                var element = [UInt8](repeating: 0, count: 16)
                element[0] = 0x01
                element[4] = 16
                element[8] = 1
                Self.storeLE(UInt32(child.count), in: &element, at: 12)
                page += element + [UInt8(ascii: "n")] + child
            }
            value += page
            return value
        }
        var nested = inlineBucket(containing: nil)
        for _ in 0..<300 { nested = inlineBucket(containing: nested) }
        var root = Bolt.Bucket()
        root.put(bucket: Bolt.Bucket(), named: "top")
        var bytes = [UInt8](try Bolt.Writer().serialize(root))
        // Replace the empty "top" bucket's value by the hand-built chain on a new page.
        let rootPage = 3
        let pages = (16 + 16 + 3 + nested.count + Self.pageSize - 1) / Self.pageSize
        var leaf = [UInt8](repeating: 0, count: pages * Self.pageSize)
        Self.storeLE(UInt64(rootPage), in: &leaf, at: 0)
        leaf[8] = 0x02
        leaf[10] = 1
        Self.storeLE(UInt32(pages - 1), in: &leaf, at: 12)
        leaf[16] = 0x01
        leaf[20] = 16
        leaf[24] = 3
        Self.storeLE(UInt32(nested.count), in: &leaf, at: 28)
        leaf.replaceSubrange(32..<35, with: Array("top".utf8))
        leaf.replaceSubrange(35..<(35 + nested.count), with: nested)
        bytes.replaceSubrange((rootPage * Self.pageSize)..<((rootPage + 1) * Self.pageSize), with: leaf)
        for page in 0..<2 {
            Self.storeLE(UInt64(rootPage + pages), in: &bytes, at: page * Self.pageSize + 56)
            Self.reseal(&bytes, meta: page)
        }
        let reader = try Bolt.Reader(data: Data(bytes))
        #expect(throws: ReaderError.bucketsNestedTooDeep(limit: 256)) { try reader.tree() }
        // Lazy navigation still works a few levels down.
        let top = try #require(try reader.root.bucket(named: "top"))
        #expect(try top.bucket(at: [Data("n"), Data("n")])?.isInline == true)
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
