import Foundation
import KilnTestSupport
import Testing
@testable import KilnBolt

@Suite("Go encodings containerd stores")
struct GoEncodingTests {
    static let signed: [Int64] = [0, 1, -1, 3, 63, -64, 64, -65, 300, -300, 1 << 40, .max, .min, .min + 1]
    static let unsigned: [UInt64] = [0, 1, 127, 128, 300, 16383, 16384, 1 << 35, 1 << 63, .max]
    static let times: [(Int64, Int64)] = [
        (0, 0), (1_700_000_000, 123_456_789), (-62_135_596_800, 0), (1, 999_999_999),
        (-1, 5), (253_402_300_799, 999_999_999), (1_234_567_890, 1),
    ]

    /// Go's own encodings of the values above, from `boltcheck encode`.
    static func goEncodings() throws -> [String: String] {
        var lines: [String] = []
        lines += signed.map { "varint \($0)" }
        lines += unsigned.map { "uvarint \($0)" }
        lines += times.map { "time \($0.0) \($0.1)" }
        let dir = try TemporaryDirectory(prefix: "kiln-bolt")
        defer { dir.remove() }
        let script = dir.url("encode.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: script, atomically: true, encoding: .utf8)
        var result: [String: String] = [:]
        for line in try BoltCheck.tool(["encode", script.path]).split(separator: "\n") {
            let parts = line.components(separatedBy: " => ")
            if parts.count == 2 { result[parts[0]] = parts[1] }
        }
        #expect(result.count == lines.count)
        return result
    }

    @Test("varints and times match Go byte for byte", BoltCheck.required)
    func matchGo() throws {
        let go = try Self.goEncodings()
        for value in Self.signed {
            let hex = try #require(go["varint \(value)"])
            #expect(GoVarint.encode(value).hex == hex, "varint \(value)")
            let decoded = try GoVarint.decode(Data(hexString: hex))
            #expect(decoded.value == value)
            #expect(decoded.length == hex.count / 2)
        }
        for value in Self.unsigned {
            let hex = try #require(go["uvarint \(value)"])
            #expect(GoVarint.encodeUnsigned(value).hex == hex, "uvarint \(value)")
            #expect(try GoVarint.decodeUnsigned(Data(hexString: hex) + Data([0x55])) == (value, hex.count / 2))
        }
        for (seconds, nanos) in Self.times {
            let hex = try #require(go["time \(seconds) \(nanos)"])
            let time = GoTime(unixSeconds: seconds, nanoseconds: nanos)
            #expect(time.marshalBinary().hex == hex, "time \(seconds) \(nanos)")
            #expect(hex.count == 30)
            #expect(try GoTime(marshalledBinary: Data(hexString: hex)) == time)
        }
    }

    @Test("containerd's schema version is the single byte 0x06")
    func schemaVersion() {
        // Stated in containerd's metadata package: dbVersion 3 through binary.PutVarint.
        #expect(GoVarint.encode(3) == Data([0x06]))
    }

    @Test("malformed varints and times are errors")
    func malformed() throws {
        #expect(throws: GoVarint.Error.truncated) { try GoVarint.decodeUnsigned(Data()) }
        #expect(throws: GoVarint.Error.truncated) { try GoVarint.decodeUnsigned(Data([0x80, 0x80])) }
        #expect(throws: GoVarint.Error.overflow) { try GoVarint.decodeUnsigned(Data(repeating: 0xFF, count: 11)) }
        #expect(throws: GoVarint.Error.overflow) {
            try GoVarint.decodeUnsigned(Data(repeating: 0xFF, count: 9) + Data([0x02]))
        }
        #expect(throws: GoTime.Error.empty) { try GoTime(marshalledBinary: Data()) }
        #expect(throws: GoTime.Error.unsupportedVersion(3)) { try GoTime(marshalledBinary: Data([3])) }
        #expect(throws: GoTime.Error.invalidLength(14, expected: 15)) {
            try GoTime(marshalledBinary: Data(repeating: 1, count: 14))
        }
    }

    @Test("times convert from and to Date and normalise nanoseconds like time.Unix")
    func dates() {
        let time = GoTime(Date(timeIntervalSince1970: 1_700_000_000.25))
        #expect(time == GoTime(unixSeconds: 1_700_000_000, nanoseconds: 250_000_000))
        #expect(time.date == Date(timeIntervalSince1970: 1_700_000_000.25))
        #expect(GoTime(unixSeconds: 10, nanoseconds: -1) == GoTime(unixSeconds: 9, nanoseconds: 999_999_999))
        #expect(
            GoTime(unixSeconds: 10, nanoseconds: 2_500_000_000) == GoTime(unixSeconds: 12, nanoseconds: 500_000_000)
        )
        #expect(GoTime(Date(timeIntervalSince1970: -0.5)) == GoTime(unixSeconds: -1, nanoseconds: 500_000_000))
    }
}

extension Data {
    init(hexString: String) throws {
        var bytes: [UInt8] = []
        var high: UInt8? = nil
        for character in hexString.utf8 {
            guard let nibble = UInt8(String(UnicodeScalar(character)), radix: 16) else {
                throw BoltCheck.Failure(description: "bad hex \(hexString)")
            }
            if let h = high { bytes.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        self.init(bytes)
    }
}
