import KilnCore
import Testing

/// The allocation-free paths of ``BytePath`` against the plain definitions they stand for, over every short
/// path of slashes, dots and letters (and random longer ones).
@Suite struct BytePathTests {
    // The definitions, written the obvious way.
    static func components(_ b: [UInt8]) -> [[UInt8]] {
        b.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init).filter { $0 != [0x2E] }
    }
    static func joined(_ c: [[UInt8]]) -> [UInt8] { Array(c.joined(separator: [0x2F])) }
    static func cleaned(_ b: [UInt8]) -> [UInt8] {
        var kept: [[UInt8]] = []
        for c in components(b) {
            if c == [0x2E, 0x2E] { if !kept.isEmpty { kept.removeLast() } } else { kept.append(c) }
        }
        return joined(kept)
    }

    static func allPaths(upTo length: Int) -> [[UInt8]] {
        let alphabet: [UInt8] = [0x2F, 0x2E, 0x61, 0xFF]
        var out: [[UInt8]] = [[]]
        var level: [[UInt8]] = [[]]
        for _ in 0..<length {
            level = level.flatMap { p in alphabet.map { p + [$0] } }
            out += level
        }
        return out
    }

    @Test func fastPathsAgreeWithTheDefinitions() {
        var paths = Self.allPaths(upTo: 6)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            paths.append((0..<Int.random(in: 0...40, using: &generator)).map { _ in [0x2F, 0x2E, 0x62, 0x5C, 0x0A][Int.random(in: 0..<5, using: &generator)] })
        }
        for b in paths {
            let p = BytePath(b)
            #expect(p.components.map(Array.init) == Self.components(b), "\(b)")
            #expect(p.normalized.bytes == Self.joined(Self.components(b)), "\(b)")
            #expect(p.cleaned.bytes == Self.cleaned(b), "\(b)")
            #expect(p.parent.bytes == Self.joined(Self.components(b).dropLast()), "\(b)")
        }
    }

    @Test func equalPathsHashAlikeAndDistinctBytesStayDistinct() {
        let nfc = BytePath([0x63, 0x61, 0x66, 0xC3, 0xA9])  // café, NFC
        let nfd = BytePath([0x63, 0x61, 0x66, 0x65, 0xCC, 0x81])  // café, NFD
        #expect(nfc != nfd)
        #expect(Set([nfc, nfd, BytePath(nfc.bytes)]).count == 2)
        #expect(BytePath("a/b").hashValue == BytePath([0x61, 0x2F, 0x62]).hashValue)
    }

    @Test func descriptionEscapesWhatIsNotPlainText() {
        #expect(BytePath("usr/lib/libc.so.6").description == "usr/lib/libc.so.6")
        #expect(BytePath([0x61, 0x5C, 0x62]).description == "a\\\\b")
        #expect(BytePath([0x61, 0x0A, 0xFF]).description == "a\\x0a\\xff")
        #expect(BytePath([0x63, 0x61, 0x66, 0xC3, 0xA9]).description == "caf\u{E9}")
    }
}
