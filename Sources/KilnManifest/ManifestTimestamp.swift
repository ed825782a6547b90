/// RFC 3339 timestamps for ``SnapshotManifest/createdAt``, computed from seconds since the epoch without the
/// clock, the time zone or the locale of the machine.
public enum ManifestTimestamp {
    /// Errors raised when `SOURCE_DATE_EPOCH` is malformed.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case malformedSourceDateEpoch(String)

        public var description: String {
            switch self {
            case .malformedSourceDateEpoch(let s):
                return "SOURCE_DATE_EPOCH '\(s)' is not a non-negative integer number of seconds"
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` for `seconds` since 1970-01-01T00:00:00Z.
    public static func rfc3339(epochSeconds seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (y, m, d) = civilDate(daysSinceEpoch: days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// The `SOURCE_DATE_EPOCH` of `environment`, or nil when it is unset or empty.
    public static func sourceDateEpoch(environment: [String: String]) throws -> Int64? {
        guard let text = environment["SOURCE_DATE_EPOCH"], !text.isEmpty else { return nil }
        guard let value = Int64(text), value >= 0 else { throw Error.malformedSourceDateEpoch(text) }
        return value
    }

    /// Proleptic Gregorian date of a day count (Howard Hinnant's days-to-civil algorithm).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
