import Foundation
import KilnCore

/// Every input of `kiln plan` that a user can set, with the command-line flag and the recipe key (`plan.<key>`)
/// that set it.
public enum PlanOption: String, Sendable, Hashable, CaseIterable, Codable {
    case manifest, writtenBytes, snapshotSize, rate, deadline, volumesPerMinute, burst, nodes, arrivals
    case instanceStart, modelBytes, models, streams, streamLimit, schedule, efsMode, efsReadLimit, clientLimit
    case efsStored, preloadAfter, lazyRate, launchBucket, launchRefill, launchTokens, azs, ratePrice
    case efsReadPrice, fsrPrice

    /// The command-line flag: the key in kebab case (`writtenBytes` is `--written-bytes`).
    public var flag: String {
        var out = "--"
        for c in rawValue {
            if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// What the value is, which decides how it is read.
    public enum Kind: Sendable, Hashable {
        case size, rate, duration, number, path
        case integer(ClosedRange<Int>)
        /// One word of a fixed set.
        case choice([String])
        /// `auto`, `default`, or a provisioned rate 100..300 (MiB/s).
        case initializationRate
        /// A rate or `none`.
        case rateOrNone
        /// `LOW..HIGH` rates.
        case rateRange
    }

    public var kind: Kind {
        switch self {
        case .manifest, .arrivals, .models: return .path
        case .writtenBytes, .snapshotSize, .modelBytes, .efsStored: return .size
        case .efsReadLimit, .clientLimit: return .rate
        case .streamLimit: return .rateOrNone
        case .lazyRate: return .rateRange
        case .rate: return .initializationRate
        case .deadline, .burst, .instanceStart: return .duration
        case .volumesPerMinute, .launchBucket, .launchRefill, .launchTokens, .ratePrice, .efsReadPrice, .fsrPrice: return .number
        case .nodes: return .integer(1...1_000_000)
        case .streams: return .integer(1...1024)
        case .azs: return .integer(1...64)
        case .schedule: return .choice(StreamSchedule.Kind.allCases.map(\.rawValue))
        case .efsMode: return .choice(EFSMode.allCases.map(\.rawValue))
        case .preloadAfter: return .choice(PreloadStart.allCases.map(\.rawValue))
        }
    }

    /// The option a recipe key names, or nil.
    public init?(key: String) { self.init(rawValue: key) }
}

/// One value of a plan option, as given, and where it was given (so a bad value is reported where it was written).
public struct PlanSetting: Sendable, Hashable {
    public enum Origin: Sendable, Hashable {
        case commandLine
        /// `plan.<key>` in the recipe at this path.
        case recipe(String)
    }

    public var text: String
    public var origin: Origin

    public init(_ text: String, origin: Origin) {
        self.text = text
        self.origin = origin
    }
}

/// What `kiln plan` was given: command-line options, a recipe's `plan:` section, or both merged. Values are
/// kept as written and read by ``resolve()`` (or checked by ``validate()``) with the one quantity parser, so a
/// bad value is named by the flag or recipe key it came from.
public struct PlanOptions: Sendable, Hashable {
    public private(set) var settings: [PlanOption: PlanSetting] = [:]
    /// The recipe's name, for the report's title.
    public var name: String?

    public init(name: String? = nil) { self.name = name }

    public subscript(option: PlanOption) -> PlanSetting? {
        get { settings[option] }
        set { settings[option] = newValue }
    }

    /// Sets `option` when `text` is non-nil.
    public mutating func set(_ option: PlanOption, _ text: String?, origin: PlanSetting.Origin) {
        guard let text else { return }
        settings[option] = PlanSetting(text, origin: origin)
    }

    /// These options over `lower`: a value set here wins, including for options that exclude each other (a
    /// `--written-bytes` on the command line replaces the recipe's `manifest`).
    public func merged(over lower: PlanOptions) -> PlanOptions {
        var out = lower
        out.name = name ?? lower.name
        let exclusive: [[PlanOption]] = [[.manifest, .writtenBytes], [.models, .modelBytes]]
        for group in exclusive where group.contains(where: { settings[$0] != nil }) {
            for option in group { out.settings[option] = nil }
        }
        for (option, setting) in settings { out.settings[option] = setting }
        return out
    }

    /// Where a setting was given, for messages: `--deadline`, or `plan.deadline in recipe.yaml`.
    public static func label(_ option: PlanOption, _ origin: PlanSetting.Origin) -> String {
        switch origin {
        case .commandLine: return option.flag
        case .recipe(let path): return "plan.\(option.rawValue) in \(path)"
        }
    }

    /// Checks that every value reads as its kind, without loading any file, with the same readers
    /// ``resolve()`` uses.
    public func validate() throws(PlanError) {
        for option in PlanOption.allCases where settings[option] != nil {
            do { try check(option) } catch let e as PlanError { throw e } catch { throw .invalidInput("\(Self.label(option, settings[option]?.origin ?? .commandLine)): \(error)") }
        }
    }

    private func check(_ option: PlanOption) throws {
        switch option.kind {
        case .size: _ = try size(option)
        case .rate, .rateOrNone: _ = try rate(option)
        case .rateRange: _ = try rateRange(option)
        case .duration: _ = try duration(option)
        case .number: _ = try number(option)
        case .integer: _ = try integer(option)
        case .path: if settings[option]?.text.isEmpty == true { throw QuantityError.empty }
        case .choice(let words): _ = try word(option, in: words)
        case .initializationRate: _ = try initializationRate()
        }
    }
}

extension String {
    func replacingLast(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target, options: .backwards) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
