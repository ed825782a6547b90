/// A path as a layer stores it: bytes, not text.
///
/// Two names that differ in any byte are two files, as they are to the kernel and to containerd: the NFC and
/// NFD spellings of `café`, or `a\xff` and `a\xfe`. Swift's `String` compares by canonical equivalence and
/// replaces invalid UTF-8 when decoding, so it would merge both pairs; paths from layers therefore stay bytes
/// from the tar reader to the filesystem writer, and become text only to be shown (``description``, escaped).
public struct BytePath: Hashable, Sendable, Comparable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The path's bytes, exactly as stored.
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init<S: Sequence>(bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }
    /// The UTF-8 bytes of `string` (for paths kiln itself composes).
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(stringInterpolation: DefaultStringInterpolation) { self.init(String(stringInterpolation: stringInterpolation)) }

    public static let slash: UInt8 = 0x2F
    public static let dot: UInt8 = 0x2E

    public var isEmpty: Bool { bytes.isEmpty }
    public var count: Int { bytes.count }

    /// Byte order, as directories are sorted on disk and in the manifest.
    public static func < (a: BytePath, b: BytePath) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public static func == (a: BytePath, b: BytePath) -> Bool { a.bytes == b.bytes }

    /// The bytes in one go: a layer of a million entries hashes every path more than once.
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        hasher.combine(bytes.count)
    }

    /// The components between slashes, empty ones and `.` left out; `..` is kept (the resolver contains it).
    public var components: [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        let n = bytes.count
        var i = 0
        while i <= n {
            if i == n || bytes[i] == Self.slash {
                let length = i - start
                if length > 0 && !(length == 1 && bytes[start] == Self.dot) { out.append(bytes[start..<i]) }
                start = i + 1
            }
            i += 1
        }
        return out
    }

    /// What a path holds besides plain components joined by single slashes, found in one pass without
    /// allocating: most paths in a layer are already clean, and then cleaning them is returning them.
    private var shape: (plain: Bool, climbs: Bool) {
        var plain = true
        var climbs = false
        var start = 0
        let n = bytes.count
        var i = 0
        while i <= n {
            if i == n || bytes[i] == Self.slash {
                let length = i - start
                if length == 0 {
                    // A leading, trailing or doubled slash (the empty path is plain).
                    if n > 0 { plain = false }
                } else if length == 1 && bytes[start] == Self.dot {
                    plain = false
                } else if length == 2 && bytes[start] == Self.dot && bytes[start + 1] == Self.dot {
                    climbs = true
                }
                start = i + 1
            }
            i += 1
        }
        return (plain, climbs)
    }

    /// The path cleaned the way OCI consumers compare paths: no leading `./` or `/`, no trailing `/`, no `.`
    /// components. `..` is kept.
    public var normalized: BytePath { shape.plain ? self : Self.joined(components) }

    /// `components` joined with single slashes.
    static func joined<C: Collection>(_ components: C) -> BytePath where C.Element == ArraySlice<UInt8> {
        var out: [UInt8] = []
        for c in components {
            if !out.isEmpty { out.append(slash) }
            out.append(contentsOf: c)
        }
        return BytePath(out)
    }

    /// The path as containerd applies an entry's name: cleaned lexically (Go's `filepath.Clean` of `/` + path),
    /// so `..` climbs the names written before it, never above the root, and never through a symlink. The
    /// result has no `.`, no `..`, and no leading or trailing slash; empty means the root itself.
    public var cleaned: BytePath {
        let shape = self.shape
        if shape.plain && !shape.climbs { return self }
        var kept: [ArraySlice<UInt8>] = []
        for c in components {
            if c.count == 2 && c.first == Self.dot && c.last == Self.dot {
                if !kept.isEmpty { kept.removeLast() }
            } else {
                kept.append(c)
            }
        }
        return Self.joined(kept)
    }

    /// The last component (empty for the root).
    public var lastComponent: BytePath { BytePath(components.last.map(Array.init) ?? []) }

    /// Everything before the last component, normalized (empty for top-level names and the root).
    public var parent: BytePath {
        if shape.plain {
            guard let slash = bytes.lastIndex(of: Self.slash) else { return BytePath([]) }
            return BytePath(Array(bytes[..<slash]))
        }
        return Self.joined(components.dropLast())
    }

    /// `self/component` (just `component` when `self` is empty).
    public func appending(_ component: BytePath) -> BytePath {
        if bytes.isEmpty { return component }
        return BytePath(bytes + [Self.slash] + component.bytes)
    }

    public func hasPrefix(_ prefix: BytePath) -> Bool { bytes.starts(with: prefix.bytes) }

    /// The path as text for people: valid UTF-8 is shown as it is; invalid bytes and control characters as
    /// `\xNN`, and a backslash as `\\`, so that distinct paths never print alike.
    public var description: String {
        // Printable ASCII without a backslash, as nearly every path is, reads as it is.
        if !bytes.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == 0x5C }) { return String(decoding: bytes, as: UTF8.self) }
        var out = ""
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x5C {
                out += "\\\\"
                i += 1
            } else if b >= 0x20 && b < 0x7F {
                out.unicodeScalars.append(Unicode.Scalar(b))
                i += 1
            } else if b >= 0x80, let (scalar, length) = Self.decodeScalar(bytes, at: i), scalar.value >= 0xA0 {
                out.unicodeScalars.append(scalar)
                i += length
            } else {
                out += "\\x" + String(b, radix: 16, uppercase: false).leftPadded(to: 2)
                i += 1
            }
        }
        return out
    }

    /// One well-formed UTF-8 scalar at `i` (no overlongs, no surrogates), or nil.
    static func decodeScalar(_ b: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        let lead = b[i]
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07)
        default: return nil
        }
        guard i + length <= b.count else { return nil }
        for k in 1..<length {
            let c = b[i + k]
            guard c & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(c & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
        guard value >= minimum, let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
