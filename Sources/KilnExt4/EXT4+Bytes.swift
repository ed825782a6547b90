import CISAL

/// Little- and big-endian field access on byte buffers, the way on-disk structures are laid out.
extension Array where Element == UInt8 {
    @inline(__always) mutating func putLE16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    @inline(__always) mutating func putLE32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    @inline(__always) mutating func putLE64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    @inline(__always) mutating func putBE32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(3 - i))) }
    }

    @inline(__always) mutating func putBytes(_ bytes: some Collection<UInt8>, at offset: Int) {
        var i = offset
        for b in bytes {
            self[i] = b
            i += 1
        }
    }

    @inline(__always) func le16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    @inline(__always) func le32(at offset: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(self[offset + i]) << (8 * UInt32(i)) }
        return v
    }

    @inline(__always) func le64(at offset: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(self[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    @inline(__always) func be32(at offset: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(self[offset + i]) }
        return v
    }

    /// True when every byte is zero.
    var isAllZero: Bool {
        withUnsafeBytes { EXT4.isAllZero($0) }
    }
}

extension EXT4 {
    /// True when every byte of `buffer` is zero (word at a time).
    static func isAllZero(_ buffer: UnsafeRawBufferPointer) -> Bool {
        let count = buffer.count
        var i = 0
        if let base = buffer.baseAddress {
            while i + 8 <= count {
                if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
                i += 8
            }
        }
        while i < count {
            if buffer[i] != 0 { return false }
            i += 1
        }
        return true
    }

    /// Raw CRC32C (Castagnoli) continuing from `crc`, without pre- or post-inversion: the form ext4's
    /// metadata_csum uses (`ext2fs_crc32c_le`).
    static func crc32c(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return crc32_iscsi(
            UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)), Int32(bytes.count), crc)
    }

    static func crc32c(_ crc: UInt32, _ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32c(crc, $0) }
    }

    static func crc32c(_ crc: UInt32, _ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { crc32c(crc, $0) }
    }

    static func crc32c(_ crc: UInt32, le32 value: UInt32) -> UInt32 {
        withUnsafeBytes(of: value.littleEndian) { crc32c(crc, $0) }
    }

    static func crc32c(_ crc: UInt32, le64 value: UInt64) -> UInt32 {
        withUnsafeBytes(of: value.littleEndian) { crc32c(crc, $0) }
    }
}
