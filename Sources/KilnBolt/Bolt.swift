import Foundation

/// bbolt database files (go.etcd.io/bbolt, format version 2) written and read without Go.
///
/// ``Bolt/Bucket`` holds a database in memory, ``Bolt/Writer`` lays it out as a file that
/// bbolt (and therefore containerd) opens and keeps writing to, and ``Bolt/Reader`` opens an
/// existing file and walks its buckets.
public enum Bolt {}

extension Bolt {
    /// Constants of the on-disk format; the names follow bbolt's `page.go`, `db.go` and `bucket.go`.
    enum Format {
        static let magic: UInt32 = 0xED0C_DAED
        static let version: UInt32 = 2

        static let pageHeaderSize = 16
        static let leafElementSize = 16
        static let branchElementSize = 16
        static let bucketHeaderSize = 16
        /// Bytes of the meta structure hashed into its checksum (magic through txid).
        static let metaChecksummedSize = 56
        static let metaSize = 64

        static let branchPageFlag: UInt16 = 0x01
        static let leafPageFlag: UInt16 = 0x02
        static let metaPageFlag: UInt16 = 0x04
        static let freelistPageFlag: UInt16 = 0x10
        static let bucketLeafFlag: UInt32 = 0x01

        static let maxKeySize = 32768
        static let maxValueSize = (1 << 31) - 2
        static let minKeysPerPage = 2
        /// The freelist pgid bbolt stores when the freelist is not synced to disk.
        static let noFreelist = UInt64.max
        /// A page's `count` field saturates here; the real count then sits in the first u64.
        static let freelistCountOverflow = 0xFFFF
    }

    /// Renders a bucket path for messages: printable names as text, others as hex.
    public static func describe(path: [Data]) -> String {
        path.isEmpty ? "the root bucket" : "bucket '" + path.map(describe(key:)).joined(separator: "/") + "'"
    }

    /// Renders a key for messages: printable ASCII as text, anything else as `0x` hex.
    public static func describe(key: Data) -> String {
        if !key.isEmpty, key.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) {
            return String(decoding: key, as: UTF8.self)
        }
        return "0x" + key.map { String(format: "%02x", $0) }.joined()
    }

    /// FNV-1a, 64 bit: the meta page checksum (Go's `hash/fnv` New64a).
    static func fnv1a64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// bbolt orders keys like `bytes.Compare`: unsigned bytes, shorter prefix first.
    static func precedes(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in
                let common = min(left.count, right.count)
                if common > 0, let l = left.baseAddress, let r = right.baseAddress {
                    let order = memcmp(l, r, common)
                    if order != 0 { return order < 0 }
                }
                return left.count < right.count
            }
        }
    }
}

extension Array where Element == UInt8 {
    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeMutableBytes { raw in
            raw.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        }
    }

    /// Reads a little-endian integer; callers check bounds first.
    func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { raw in
            T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
    }
}
