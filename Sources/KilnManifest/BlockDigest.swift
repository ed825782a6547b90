import Foundation
import KilnDigest

/// 32 raw SHA-256 bytes held inline (no heap allocation), so a list of block digests costs 40 bytes a block.
public struct SHA256Sum: Sendable, Hashable, Comparable, CustomStringConvertible {
    // The bytes in order, packed little-endian into four words.
    private var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// The byte count of a digest.
    public static let byteCount = 32

    /// Copies 32 bytes starting at `pointer`.
    public init(bytesAt pointer: UnsafeRawPointer) {
        w0 = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        w1 = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        w3 = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    /// The digest made of `bytes`, or nil unless there are exactly 32.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self = bytes.withUnsafeBytes { SHA256Sum(bytesAt: $0.baseAddress!) }
    }

    /// The digest of a ``Digest`` (`sha256:hex`).
    public init?(_ digest: Digest) {
        guard digest.algorithm == "sha256" else { return nil }
        self.init(bytes: digest.bytes)
    }

    /// SHA-256 of `buffer`.
    public static func hashing(_ buffer: UnsafeRawBufferPointer) -> SHA256Sum {
        // hashBytes always returns 32 bytes.
        let raw = SHA256Hasher.hashBytes(buffer)
        return raw.withUnsafeBytes { SHA256Sum(bytesAt: $0.baseAddress!) }
    }

    /// Writes the 32 bytes at `pointer`.
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: w0.littleEndian, toByteOffset: 0, as: UInt64.self)
        pointer.storeBytes(of: w1.littleEndian, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: w2.littleEndian, toByteOffset: 16, as: UInt64.self)
        pointer.storeBytes(of: w3.littleEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// The 32 raw bytes.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.byteCount) { buffer, count in
            store(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = Self.byteCount
        }
    }

    /// Lowercase hex.
    public var hex: String { bytes.hexString }
    /// base64, as the EBS direct APIs carry block checksums.
    public var base64: String { Data(bytes).base64EncodedString() }
    /// As a ``Digest``.
    public var digest: Digest { Digest(sha256: bytes) }
    public var description: String { "sha256:\(hex)" }

    public static func < (lhs: SHA256Sum, rhs: SHA256Sum) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// The digest of one written block.
public struct BlockDigest: Sendable, Hashable {
    /// The sha256 of a block of `size` zero bytes: what an unwritten block reads as.
    public static func zeroBlockSHA256(size: Int) -> SHA256Sum {
        [UInt8](repeating: 0, count: size).withUnsafeBytes { SHA256Sum.hashing($0) }
    }

    /// The block's index: byte `index * blockSize` of the image file.
    public var index: UInt64
    /// SHA-256 of the block's bytes (a partial last block is padded with zeros, as EBS stores it).
    public var sha256: SHA256Sum

    public init(index: UInt64, sha256: SHA256Sum) {
        self.index = index
        self.sha256 = sha256
    }
}

/// The EBS LINEAR aggregate checksum: the raw sha256 digests of the written blocks in ascending block index,
/// concatenated, hashed with sha256, base64 encoded. This is what `CompleteSnapshot` takes in `x-amz-Checksum`
/// with `x-amz-Checksum-Aggregation-Method: LINEAR`, and what coldsnap sends.
///
/// Not thread-safe: one aggregate per thread.
public final class LinearChecksum {
    private let hasher = SHA256Hasher()
    // Digests are batched so that OpenSSL sees a few large updates rather than one call per block.
    private let batch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048 * SHA256Sum.byteCount, alignment: 16)
    private var filled = 0
    private var finished = false
    /// Digests added so far.
    public private(set) var count: UInt64 = 0

    public init() {}

    deinit { batch.deallocate() }

    /// Adds the next written block's digest (callers add them in ascending block index).
    public func add(_ sum: SHA256Sum) {
        if filled == batch.count { flush() }
        sum.store(to: batch.baseAddress! + filled)
        filled += SHA256Sum.byteCount
        count += 1
    }

    private func flush() {
        hasher.update(UnsafeRawBufferPointer(rebasing: batch[0..<filled]))
        filled = 0
    }

    /// The base64 checksum. Call once.
    public func finalize() -> String {
        precondition(!finished, "LinearChecksum finalized twice")
        finished = true
        flush()
        return Data(hasher.finalizeBytes()).base64EncodedString()
    }

    /// The LINEAR checksum of `digests`, which must be in ascending block index.
    public static func compute(_ digests: some Sequence<BlockDigest>) -> String {
        let linear = LinearChecksum()
        for d in digests { linear.add(d.sha256) }
        return linear.finalize()
    }
}
