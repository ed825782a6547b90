import Foundation

/// How long a child may run before coreutils `timeout` stops it.
public struct ProcessTimeout: Sendable, Equatable {
    /// Seconds until `timeout` sends TERM.
    public var seconds: Int
    /// Seconds after the TERM until a KILL, for children that ignore TERM; nil sends no KILL.
    public var killAfter: Int?

    /// A limit of `seconds`, then a KILL `killAfter` seconds later if the child is still there.
    public init(seconds: Int, killAfter: Int? = nil) {
        self.seconds = seconds
        self.killAfter = killAfter
    }

    /// `timeout`'s arguments before the command.
    var arguments: [String] { (killAfter.map { ["-k", String($0)] } ?? []) + [String(seconds)] }
}

/// What a finished child left: its exit status and everything it wrote.
public struct ProcessResult: Sendable, CustomStringConvertible {
    /// The exit status (the signal number when a signal ended it; 124 when `timeout` stopped it).
    public var status: Int32
    /// The bytes written to standard output.
    public var standardOutput: Data
    /// The bytes written to standard error.
    public var standardError: Data

    /// A result from its parts.
    public init(status: Int32, standardOutput: Data, standardError: Data) {
        self.status = status
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// Standard output as text (invalid UTF-8 replaced).
    public var stdout: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error as text (invalid UTF-8 replaced).
    public var stderr: String { String(decoding: standardError, as: UTF8.self) }
    /// Standard output followed by standard error.
    public var output: String { stdout + stderr }
    /// Whether the child exited with status 0.
    public var succeeded: Bool { status == 0 }

    /// The status and both outputs, for failure messages.
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
}

/// Runs a program (no shell) and waits for it, with output captured through temporary files rather than pipes:
/// a daemon the child leaves behind inherits the descriptors, and would keep a pipe open, and the reader waiting,
/// for as long as it lives. The wait is for the child alone, too (see `ChildProcess`). Standard input is /dev/null
/// unless `input` is given.
public struct ProcessRunner: Sendable {
    /// The child's working directory; nil keeps this process's.
    public var directory: String?
    /// Variables set for the child on top of this process's environment (overriding it).
    public var environment: [String: String]
    /// A time limit enforced by coreutils `timeout`; nil lets the child run as long as it takes.
    public var timeout: ProcessTimeout?
    /// Resolves program names without a slash.
    public var tools: ToolLocator

    /// A runner for children in `directory` with `environment` added, stopped after `timeout`, names found by `tools`.
    public init(directory: String? = nil, environment: [String: String] = [:], timeout: ProcessTimeout? = nil,
                tools: ToolLocator = .standard) {
        self.directory = directory
        self.environment = environment
        self.timeout = timeout
        self.tools = tools
    }

    /// Runs `executable` (a path, or a name looked up with `tools`) with `arguments`, feeding it `input`.
    /// Throws `ToolMissing` for a name that cannot be found, or when the program cannot be started; a non-zero
    /// exit is not an error but a `status`.
    @discardableResult
    public func run(_ executable: String, _ arguments: [String] = [], input: Data? = nil) throws -> ProcessResult {
        let program = try resolve(executable)
        let scratch = try TemporaryDirectory(prefix: "kiln-run")
        defer { scratch.remove() }
        let outPath = scratch.path("stdout"), errPath = scratch.path("stderr"), inPath = scratch.path("stdin")
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: scratch.path])
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? out.close()
            try? err.close()
        }
        var stdinPath = "/dev/null"
        if let input {
            // A file, not a pipe, for input too: a child that does not read all of it cannot block this process.
            try input.write(to: URL(fileURLWithPath: inPath))
            stdinPath = inPath
        }
        let stdin = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdinPath))
        defer { try? stdin.close() }

        var launchPath = program, launchArguments = arguments
        if let timeout {
            launchPath = tools.find("timeout") ?? "/usr/bin/timeout"
            launchArguments = timeout.arguments + [program] + arguments
        }
        let status = try ChildProcess.run(
            launchPath, launchArguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            directory: directory, stdin: stdin.fileDescriptor, stdout: out.fileDescriptor, stderr: err.fileDescriptor)
        return ProcessResult(
            status: status,
            standardOutput: (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(),
            standardError: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data())
    }

    /// An absolute path for `executable`: names are looked up, relative paths start at the child's directory.
    func resolve(_ executable: String) throws -> String {
        guard executable.contains("/") else { return try tools.require(executable) }
        if executable.hasPrefix("/") { return executable }
        let base = directory ?? FileManager.default.currentDirectoryPath
        return URL(fileURLWithPath: executable, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
    }
}
