/// The htree (dir_index) name hashes: legacy, half-MD4 and TEA, signed or unsigned character variants.
extension EXT4 {
    struct DirectoryHash {
        var version: HashVersion
        /// True when the superblock says names hash as unsigned bytes (`EXT2_FLAGS_UNSIGNED_HASH`).
        var unsigned: Bool
        /// `s_hash_seed` as four little-endian words; all zero means the default MD4 constants.
        var seed: (UInt32, UInt32, UInt32, UInt32)

        /// The major hash (low bit clear) and the minor hash of `name`.
        func hash(_ name: [UInt8]) -> (major: UInt32, minor: UInt32) {
            var buf: [UInt32] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
            if seed.0 != 0 || seed.1 != 0 || seed.2 != 0 || seed.3 != 0 {
                buf = [seed.0, seed.1, seed.2, seed.3]
            }
            var major: UInt32
            var minor: UInt32 = 0
            switch version {
            case .legacy:
                major = Self.legacyHash(name, unsigned: unsigned)
            case .halfMD4:
                var p = 0
                var len = name.count
                var input = [UInt32](repeating: 0, count: 8)
                while len > 0 {
                    Self.stringToHashBuffer(name, from: p, length: len, into: &input, words: 8, unsigned: unsigned)
                    Self.halfMD4Transform(&buf, input)
                    len -= 32
                    p += 32
                }
                major = buf[1]
                minor = buf[2]
            case .tea:
                var p = 0
                var len = name.count
                var input = [UInt32](repeating: 0, count: 4)
                while len > 0 {
                    Self.stringToHashBuffer(name, from: p, length: len, into: &input, words: 4, unsigned: unsigned)
                    Self.teaTransform(&buf, input)
                    len -= 16
                    p += 16
                }
                major = buf[0]
                minor = buf[1]
            }
            return (major & ~1, minor)
        }

        private static func char(_ b: UInt8, unsigned: Bool) -> UInt32 {
            unsigned ? UInt32(b) : UInt32(bitPattern: Int32(Int8(bitPattern: b)))
        }

        private static func legacyHash(_ name: [UInt8], unsigned: Bool) -> UInt32 {
            var hash0: UInt32 = 0x12a3_fe2d
            var hash1: UInt32 = 0x37ab_e8f9
            for b in name {
                let c = char(b, unsigned: unsigned)
                var hash = hash1 &+ (hash0 ^ (c &* 7_152_373))
                if hash & 0x8000_0000 != 0 { hash = hash &- 0x7fff_ffff }
                hash1 = hash0
                hash0 = hash
            }
            return hash0 << 1
        }

        private static func stringToHashBuffer(
            _ msg: [UInt8], from start: Int, length: Int, into out: inout [UInt32], words: Int, unsigned: Bool
        ) {
            var pad = UInt32(truncatingIfNeeded: length) | UInt32(truncatingIfNeeded: length) << 8
            pad |= pad << 16
            var val = pad
            let len = min(length, words * 4)
            var num = words
            var o = 0
            for i in 0..<len {
                val = char(msg[start + i], unsigned: unsigned) &+ (val << 8)
                if i % 4 == 3 {
                    out[o] = val
                    o += 1
                    val = pad
                    num -= 1
                }
            }
            num -= 1
            if num >= 0 {
                out[o] = val
                o += 1
            }
            while num > 0 {
                num -= 1
                out[o] = pad
                o += 1
            }
        }

        private static func teaTransform(_ buf: inout [UInt32], _ input: [UInt32]) {
            var sum: UInt32 = 0
            var b0 = buf[0], b1 = buf[1]
            let a = input[0], b = input[1], c = input[2], d = input[3]
            for _ in 0..<16 {
                sum = sum &+ 0x9E37_79B9
                b0 = b0 &+ (((b1 << 4) &+ a) ^ (b1 &+ sum) ^ ((b1 >> 5) &+ b))
                b1 = b1 &+ (((b0 << 4) &+ c) ^ (b0 &+ sum) ^ ((b0 >> 5) &+ d))
            }
            buf[0] = buf[0] &+ b0
            buf[1] = buf[1] &+ b1
        }

        private static func halfMD4Transform(_ buf: inout [UInt32], _ x: [UInt32]) {
            @inline(__always) func f(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { z ^ (x & (y ^ z)) }
            @inline(__always) func g(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { (x & y) &+ ((x ^ y) & z) }
            @inline(__always) func h(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { x ^ y ^ z }
            @inline(__always) func rot(_ v: UInt32, _ s: UInt32) -> UInt32 { (v << s) | (v >> (32 - s)) }
            let k2: UInt32 = 0o13240474631
            let k3: UInt32 = 0o15666365641
            var a = buf[0], b = buf[1], c = buf[2], d = buf[3]

            a = rot(a &+ f(b, c, d) &+ x[0], 3)
            d = rot(d &+ f(a, b, c) &+ x[1], 7)
            c = rot(c &+ f(d, a, b) &+ x[2], 11)
            b = rot(b &+ f(c, d, a) &+ x[3], 19)
            a = rot(a &+ f(b, c, d) &+ x[4], 3)
            d = rot(d &+ f(a, b, c) &+ x[5], 7)
            c = rot(c &+ f(d, a, b) &+ x[6], 11)
            b = rot(b &+ f(c, d, a) &+ x[7], 19)

            a = rot(a &+ g(b, c, d) &+ (x[1] &+ k2), 3)
            d = rot(d &+ g(a, b, c) &+ (x[3] &+ k2), 5)
            c = rot(c &+ g(d, a, b) &+ (x[5] &+ k2), 9)
            b = rot(b &+ g(c, d, a) &+ (x[7] &+ k2), 13)
            a = rot(a &+ g(b, c, d) &+ (x[0] &+ k2), 3)
            d = rot(d &+ g(a, b, c) &+ (x[2] &+ k2), 5)
            c = rot(c &+ g(d, a, b) &+ (x[4] &+ k2), 9)
            b = rot(b &+ g(c, d, a) &+ (x[6] &+ k2), 13)

            a = rot(a &+ h(b, c, d) &+ (x[3] &+ k3), 3)
            d = rot(d &+ h(a, b, c) &+ (x[7] &+ k3), 9)
            c = rot(c &+ h(d, a, b) &+ (x[2] &+ k3), 11)
            b = rot(b &+ h(c, d, a) &+ (x[6] &+ k3), 15)
            a = rot(a &+ h(b, c, d) &+ (x[1] &+ k3), 3)
            d = rot(d &+ h(a, b, c) &+ (x[5] &+ k3), 9)
            c = rot(c &+ h(d, a, b) &+ (x[0] &+ k3), 11)
            b = rot(b &+ h(c, d, a) &+ (x[4] &+ k3), 15)

            buf[0] = buf[0] &+ a
            buf[1] = buf[1] &+ b
            buf[2] = buf[2] &+ c
            buf[3] = buf[3] &+ d
        }
    }
}
