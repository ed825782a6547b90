import Foundation
import Testing

/// Something a test needs from the machine (a tool, root, a built binary), and whether it is there.
///
/// Used through `.requires(...)`, so that a test that cannot run here is reported as skipped, with what is missing
/// in the skip message, instead of passing without having checked anything.
public struct Requirement: Sendable {
    /// What is needed, as a skip message shows it: "umoci", "root", "python3-jsonschema".
    public var need: String
    /// Whether it is there.
    public var isMet: Bool

    /// A requirement worked out by the caller; probe expensive things once (in a `static let`), not per test.
    public init(_ need: String, isMet: Bool) {
        self.need = need
        self.isMet = isMet
    }

    /// A tool found by `locator` (`PATH`, /usr/sbin, /sbin by default); `install` says how to get it.
    public static func tool(_ name: String, install: String? = nil, in locator: ToolLocator = .standard) -> Requirement {
        Requirement(name + (install.map { " (\($0))" } ?? ""), isMet: locator.find(name) != nil)
    }

    /// An executable at exactly `path`.
    public static func executable(_ path: String, install: String? = nil) -> Requirement {
        Requirement(path + (install.map { " (\($0))" } ?? ""), isMet: FileManager.default.isExecutableFile(atPath: path))
    }

    /// Running as root (effective user id 0).
    public static var root: Requirement { Requirement("root", isMet: geteuid() == 0) }

    /// The built `kiln` binary (`KilnPackage.kilnBinary`).
    public static var kilnBinary: Requirement {
        Requirement("the kiln binary \(KilnPackage.kilnBinary) (swift build --product kiln, or set KILN_BIN)",
                    isMet: FileManager.default.isExecutableFile(atPath: KilnPackage.kilnBinary))
    }
}

extension Trait where Self == ConditionTrait {
    /// Enables a test or suite only when every requirement is met; otherwise it is skipped with a comment naming
    /// the missing ones ("needs umoci; root").
    public static func requires(_ requirements: Requirement...) -> Self { requires(requirements) }

    /// Enables a test or suite only when every requirement is met; otherwise it is skipped with a comment naming
    /// the missing ones.
    public static func requires(_ requirements: [Requirement]) -> Self {
        let missing = requirements.filter { !$0.isMet }.map(\.need)
        return .enabled(if: missing.isEmpty, Comment(rawValue: "needs " + missing.joined(separator: "; ")))
    }

    /// Enables a test or suite only when every tool is on `PATH`, /usr/sbin or /sbin; otherwise it is skipped with
    /// a comment naming the missing tools.
    public static func requires(tools: String...) -> Self { requires(tools.map { Requirement.tool($0) }) }
}
