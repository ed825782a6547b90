import Foundation
import Testing

@testable import KilnPlan

@Suite("Size, rate and duration parsers")
struct ParserTests {
    static let sizeCases: [(String, UInt64)] = [
        ("187GB", UInt64(187_000_000_000)),
        ("50GiB", UInt64(50) << 30),
        ("50Gi", UInt64(50) << 30),
        ("1048576", UInt64(1_048_576)),
        ("1.5GiB", UInt64(1_610_612_736)),
        ("512 KiB", UInt64(524_288)),
        ("2TB", UInt64(2_000_000_000_000)),
        ("1TiB", UInt64(1) << 40),
        ("10mb", UInt64(10_000_000)),
        ("0", UInt64(0)),
        ("7B", UInt64(7)),
    ]

    @Test(arguments: sizeCases)
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try ByteSize(parsing: text).bytes == bytes)
    }

    @Test(arguments: ["", "GB", "50G", "50 gigs", "-5GB", "1.5", "5e9", "1..5GB", "12 34", "99999999999999PB"])
    func invalidSizes(text: String) {
        #expect(throws: ByteSize.Error.self) { try ByteSize(parsing: text) }
    }

    @Test func sizeErrorNamesTheText() {
        let error = ByteSize.Error.invalid("50G")
        #expect(error.description.contains("'50G'"))
        #expect(error.description.contains("GiB"))
    }

    static let rateCases: [(String, Double)] = [
        ("60GiB/s", 60.0 * 1_073_741_824),
        ("1500MiB/s", 1500.0 * 1_048_576),
        ("140MB/s", 140e6),
        ("500MiB", 500.0 * 1_048_576),
        ("0.5GiB/s", 536_870_912.0),
        ("100 MiB/s", 100.0 * 1_048_576),
    ]

    @Test(arguments: rateCases)
    func rates(text: String, bytesPerSecond: Double) throws {
        #expect(try ByteRate(parsing: text).bytesPerSecond == bytesPerSecond)
    }

    @Test(arguments: ["", "fast", "0MiB/s", "60G/s", "/s", "-1MiB/s"])
    func invalidRates(text: String) {
        #expect(throws: ByteRate.Error.self) { try ByteRate(parsing: text) }
    }

    @Test func rateRange() throws {
        let range = try ByteRate.parseRange("50MB/s..140MB/s")
        #expect(range.lowerBound.bytesPerSecond == 50e6)
        #expect(range.upperBound.bytesPerSecond == 140e6)
        #expect(throws: ByteRate.Error.self) { try ByteRate.parseRange("140MB/s..50MB/s") }
        #expect(throws: ByteRate.Error.self) { try ByteRate.parseRange("1..2..3") }
    }

    static let durationCases: [(String, Double)] = [
        ("90s", 90.0), ("6m", 360.0), ("1h30m", 5400.0), ("7m30s", 450.0), ("1.5m", 90.0),
        ("250ms", 0.25), ("42", 42.0), ("0", 0.0), ("2h", 7200.0), ("1m1s", 61.0),
    ]

    @Test(arguments: durationCases)
    func durations(text: String, seconds: Double) throws {
        #expect(try TimeSpan(parsing: text).seconds == seconds)
    }

    @Test(arguments: ["", "m", "7 minutes later", "6x", "-5s", "1h30", "s90", "nan", "inf"])
    func invalidDurations(text: String) {
        #expect(throws: TimeSpan.Error.self) { try TimeSpan(parsing: text) }
    }

    @Test func formatting() {
        #expect(TimeSpan.format(604.0) == "10m04s")
        #expect(TimeSpan.format(31.79) == "31.8s")
        #expect(TimeSpan.format(3723) == "1h02m03s")
        #expect(ByteRate.format(60 * Units.gib) == "60 GiB/s")
        #expect(ByteRate.format(1500 * Units.mib) == "1500 MiB/s")
        #expect(ByteSize.decimal(190e9) == "190.00 GB")
        #expect(ByteSize.binary(Double(UInt64(50) << 30)) == "50.00 GiB")
    }

    @Test func rateChoice() throws {
        #expect(try RateChoice(parsing: "auto") == .auto)
        #expect(try RateChoice(parsing: "default") == .lazy)
        #expect(try RateChoice(parsing: "250") == .provisioned(ProvisionedRate(mibPerSecond: 250)))
        #expect(throws: ProvisionedRate.Error.outOfRange(301)) { try RateChoice(parsing: "301") }
        #expect(throws: ProvisionedRate.Error.outOfRange(99)) { try RateChoice(parsing: "99") }
        #expect(throws: ProvisionedRate.Error.self) { try RateChoice(parsing: "fast") }
    }
}
