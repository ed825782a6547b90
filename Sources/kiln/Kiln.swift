import ArgumentParser
import Foundation

/// The `kiln` command line: a thin layer over the Kiln* libraries.
struct Kiln: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Bake container images into pre-populated data volumes for fast node cold starts.",
        discussion: """
            Exit codes: 0 ok, 1 verification failed or plan infeasible, 2 usage or input error, \
            3 I/O or environment error.
            """,
        version: version,
        subcommands: [Bake.self, Verify.self, Inspect.self, Plan.self, Emit.self, ManifestFor.self]
    )

    /// Runs the command and maps every failure onto kiln's exit codes (usage errors are 2, not 64).
    static func runMain() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            Console.error(failure.message)
            Foundation.exit(failure.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if code.rawValue == 1 || code.rawValue == 2 || code.rawValue == 3 {
                // Commands throw ExitCode after reporting on their own.
                let message = fullMessage(for: error)
                if !message.isEmpty { Console.error(message) }
                Foundation.exit(code.rawValue)
            }
            let message = fullMessage(for: error)
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// A failure already phrased for the user, with the exit code it maps to.
struct CLIFailure: Error {
    var message: String
    var code: Int32

    static func input(_ message: String) -> CLIFailure { CLIFailure(message: message, code: 2) }
    static func io(_ message: String) -> CLIFailure { CLIFailure(message: message, code: 3) }
    static func failed(_ message: String) -> CLIFailure { CLIFailure(message: message, code: 1) }
}

/// Writes to stderr; stdout is reserved for reports.
enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("kiln: error: \(message)\n".utf8))
    }

    static func warning(_ message: String) {
        FileHandle.standardError.write(Data("kiln: warning: \(message)\n".utf8))
    }

    static func progress(_ message: String, quiet: Bool) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }
}

/// Options every reporting command shares.
struct ReportOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a machine-readable JSON report on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "No progress output on stderr.")
    var quiet = false
}

extension JSONEncoder {
    /// The encoder for every `--json` report: stable key order, readable.
    static var report: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let data = try JSONEncoder.report.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
