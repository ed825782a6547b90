import Foundation

/// Finds command-line tools by name in a list of directories.
public struct ToolLocator: Sendable {
    /// Where to look, in order.
    public var directories: [String]
    /// Said when a tool is missing, e.g. which package to install.
    public var installHint: String?

    /// A locator for `directories`; `installHint` is added to the `ToolMissing` error.
    public init(directories: [String], installHint: String? = nil) {
        self.directories = directories
        self.installHint = installHint
    }

    /// This process's `PATH`, then /usr/sbin and /sbin: mke2fs, losetup and friends live there, and a non-login
    /// shell's `PATH` often leaves them out.
    public static var standard: ToolLocator {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return ToolLocator(directories: path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"])
    }

    /// The executable's path, or nil when no directory has it. A name with a slash is a path and is only checked.
    public func find(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        return directories.lazy.map { $0 + "/" + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The executable's path; throws `ToolMissing` when no directory has it.
    public func require(_ tool: String) throws -> String {
        guard let path = find(tool) else { throw ToolMissing(tool: tool, hint: installHint) }
        return path
    }

    /// The tools of `tools` that cannot be found, in the order given.
    public func missing(_ tools: [String]) -> [String] { tools.filter { find($0) == nil } }
}

/// The path of `tool` on `PATH`, /usr/sbin or /sbin; throws `ToolMissing` when it is nowhere.
public func which(_ tool: String) throws -> String { try ToolLocator.standard.require(tool) }

/// Whether `tool` is on `PATH`, /usr/sbin or /sbin.
public func hasTool(_ tool: String) -> Bool { ToolLocator.standard.find(tool) != nil }

/// A tool a test or helper needs is not installed.
public struct ToolMissing: Error, CustomStringConvertible, Sendable {
    /// The tool's name.
    public var tool: String
    /// What to do about it, e.g. which package to install.
    public var hint: String?

    /// `tool` is missing; `hint` says what to do about it.
    public init(tool: String, hint: String? = nil) {
        self.tool = tool
        self.hint = hint
    }

    public var description: String { "\(tool) is not installed" + (hint.map { " (\($0))" } ?? "") }
}
