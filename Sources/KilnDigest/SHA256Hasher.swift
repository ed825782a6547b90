import COpenSSL
import Foundation

/// Streaming SHA-256 over OpenSSL's EVP interface (uses SHA-NI / AVX2 where the CPU has them).
///
/// Not thread-safe: one hasher per stream.
public final class SHA256Hasher {
    private let context: OpaquePointer
    private var finished = false
    /// Number of bytes hashed so far.
    public private(set) var count: UInt64 = 0

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("out of memory allocating a SHA-256 context") }
        context = ctx
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Adds bytes to the hash.
    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        EVP_DigestUpdate(context, base, buffer.count)
        count += UInt64(buffer.count)
    }

    /// Adds bytes to the hash.
    public func update(_ bytes: some ContiguousBytes) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Finishes the hash and returns the 32 raw digest bytes. The hasher cannot be used afterwards.
    public func finalizeBytes() -> [UInt8] {
        precondition(!finished, "SHA256Hasher finalized twice")
        finished = true
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        _ = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &len) }
        return out
    }

    /// Finishes the hash and returns it as a ``Digest``.
    public func finalize() -> Digest { Digest(sha256: finalizeBytes()) }

    /// SHA-256 of a whole buffer.
    public static func hash(_ bytes: some ContiguousBytes) -> Digest {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalize()
    }

    /// Raw SHA-256 bytes of a whole buffer (one-shot, no context allocation).
    public static func hashBytes(_ buffer: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        out.withUnsafeMutableBufferPointer { o in
            _ = EVP_Digest(buffer.baseAddress, buffer.count, o.baseAddress, &len, EVP_sha256(), nil)
        }
        return out
    }
}

extension Digest {
    /// chainID of a layer stack: chainID(L0) = diffID(L0), chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
    public static func chainIDs(diffIDs: [Digest]) -> [Digest] {
        var out: [Digest] = []
        for d in diffIDs {
            if let prev = out.last {
                out.append(SHA256Hasher.hash(Array("\(prev) \(d)".utf8)))
            } else {
                out.append(d)
            }
        }
        return out
    }
}
