#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An aligned scratch buffer owned by one thread.
final class ScratchBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
    }

    deinit { bytes.deallocate() }
}

/// Shared zeros for hashing holes and testing blocks for zero without allocating.
enum Zeros {
    static let count = 1 << 20
    nonisolated(unsafe) static let buffer: UnsafeRawBufferPointer = {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        b.initializeMemory(as: UInt8.self, repeating: 0)
        return UnsafeRawBufferPointer(b)
    }()

    /// True when every byte of `region` is zero.
    static func contains(_ region: UnsafeRawBufferPointer) -> Bool {
        guard var p = region.baseAddress else { return true }
        var left = region.count
        while left > 0 {
            let n = min(left, count)
            // memcmp is vectorised in libc and returns at the first difference.
            if memcmp(p, buffer.baseAddress!, n) != 0 { return false }
            p += n
            left -= n
        }
        return true
    }
}
