import Foundation
import KilnCore
import Testing

@Suite("One quantity parser: sizes, rates, durations")
struct QuantityTests {
    static let sizeCases: [(String, UInt64)] = [
        ("187GB", 187_000_000_000), ("187G", 187_000_000_000), ("187g", 187_000_000_000), ("187gb", 187_000_000_000),
        ("50GiB", 50 << 30), ("50Gi", 50 << 30), ("50gi", 50 << 30), ("50GIB", 50 << 30),
        ("64M", 64_000_000), ("64MB", 64_000_000), ("64Mi", 64 << 20), ("64MiB", 64 << 20),
        ("1k", 1000), ("1K", 1000), ("1KB", 1000), ("1Ki", 1024), ("1KiB", 1024),
        ("2T", 2_000_000_000_000), ("1TiB", 1 << 40), ("1P", 1_000_000_000_000_000), ("1Pi", 1 << 50),
        ("1048576", 1_048_576), ("1.5GiB", 1_610_612_736), ("1.5k", 1500), ("0.5Ki", 512), ("512 KiB", 524_288),
        ("0", 0), ("7B", 7), ("7 bytes", 7), ("  20Gi  ", 20 << 30), ("18446744073709551615", .max),
    ]

    @Test(arguments: sizeCases)
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try Quantity.bytes(text) == bytes)
        #expect(try ByteSize(parsing: text).bytes == bytes)
    }

    static let badSizes: [(String, QuantityError)] = [
        ("", .empty),
        ("-5GB", .negative("-5GB")),
        ("5e9", .exponent("5e9")),
        ("1,000", .grouped("1,000")),
        ("1_000", .grouped("1_000")),
        ("1.5", .fractionalBytes("1.5")),
        ("1.0001KiB", .fractionalBytes("1.0001KiB")),
        ("50 gigs", .unknownUnit("50 gigs", unit: "gigs", kind: .size)),
        ("18446744073709551616", .tooLarge("18446744073709551616")),
        ("99999999999999PB", .tooLarge("99999999999999PB")),
        ("12 34", .invalid("12 34", expected: .size)),
        ("GB", .invalid("GB", expected: nil)),
    ]

    @Test(arguments: badSizes)
    func refusedSizes(text: String, error: QuantityError) {
        #expect(throws: error) { try Quantity.bytes(text) }
        #expect(error.exitStatus == .input)
    }

    @Test func errorsNameTheTextAndTheUnits() {
        let unknown = QuantityError.unknownUnit("50 gigs", unit: "gigs", kind: .size)
        #expect(unknown.description.contains("'50 gigs'"))
        #expect(unknown.description.contains("Gi"))
        #expect(QuantityError.grouped("1,000").description.contains("ambiguous"))
    }

    static let rateCases: [(String, Double)] = [
        ("60GiB/s", 60.0 * 1_073_741_824), ("1500MiB/s", 1500.0 * 1_048_576), ("140MB/s", 140e6), ("140M/s", 140e6),
        ("500MiB", 500.0 * 1_048_576), ("0.5GiB/s", 536_870_912.0), ("100 MiB/s", 100.0 * 1_048_576),
        ("1.5B/s", 1.5), ("2G/sec", 2e9),
    ]

    @Test(arguments: rateCases)
    func rates(text: String, bytesPerSecond: Double) throws {
        #expect(try ByteRate(parsing: text).bytesPerSecond == bytesPerSecond)
    }

    @Test(arguments: ["", "fast", "0MiB/s", "/s", "-1MiB/s", "1e3MB/s", "5 parsecs/s"])
    func refusedRates(text: String) {
        #expect(throws: QuantityError.self) { try ByteRate(parsing: text) }
    }

    @Test func rateRange() throws {
        let range = try ByteRate.parseRange("50MB/s..140MB/s")
        #expect(range.lowerBound.bytesPerSecond == 50e6)
        #expect(range.upperBound.bytesPerSecond == 140e6)
        #expect(throws: QuantityError.self) { try ByteRate.parseRange("140MB/s..50MB/s") }
        #expect(throws: QuantityError.self) { try ByteRate.parseRange("1..2..3") }
    }

    static let durationCases: [(String, Double)] = [
        ("90s", 90), ("6m", 360), ("1h30m", 5400), ("7m30s", 450), ("1.5m", 90), ("250ms", 0.25), ("42", 42),
        ("0", 0), ("2h", 7200), ("1m1s", 61), ("1d", 86_400), ("7M", 420), ("1H 30M", 5400), ("90 sec", 90),
    ]

    @Test(arguments: durationCases)
    func durations(text: String, seconds: Double) throws {
        #expect(try TimeSpan(parsing: text).seconds == seconds)
    }

    @Test(arguments: ["", "m", "7 minutes later", "6x", "-5s", "1h30", "s90", "nan", "inf", "30s1m", "1m1m", "1e3s"])
    func refusedDurations(text: String) {
        #expect(throws: QuantityError.self) { try TimeSpan(parsing: text) }
    }

    @Test func plainNumbers() throws {
        #expect(try Quantity.number("0.0036") == 0.0036)
        #expect(try Quantity.integer("16", in: 1...1024) == 16)
        #expect(throws: QuantityError.notAnInteger("1.5")) { try Quantity.integer("1.5", in: 1...10) }
        #expect(throws: QuantityError.outOfRange("2000", 1...1024)) { try Quantity.integer("2000", in: 1...1024) }
        #expect(throws: QuantityError.negative("-1")) { try Quantity.number("-1") }
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
}

@Suite("Exit statuses")
struct ExitStatusTests {
    struct Foreign: Swift.Error {}

    @Test func codesAreKilnsConvention() {
        #expect(ExitStatus.verificationFailed.rawValue == 1)
        #expect(ExitStatus.input.rawValue == 2)
        #expect(ExitStatus.environment.rawValue == 3)
    }

    @Test func anErrorKilnDoesNotDefineIsTheEnvironments() {
        #expect(ExitStatus.of(Foreign()) == .environment)
        #expect(ExitStatus.of(QuantityError.empty) == .input)
    }
}
