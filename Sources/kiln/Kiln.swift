import ArgumentParser
import Foundation
import KilnCore

/// The `kiln` command line: a thin layer over the Kiln* libraries.
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Bake container images into pre-populated data volumes for fast node cold starts.",
        discussion: """
            Exit codes: 0 ok, 1 verification failed or plan infeasible, 2 usage or input error, \
            3 I/O or environment error.
            """,
        version: KilnVersion.current,
        subcommands: [Bake.self, Verify.self, Inspect.self, Upload.self, Plan.self, Emit.self, ManifestFor.self]
    )

    /// Runs the command and maps every failure onto kiln's exit codes by its type: a ``KilnError`` carries its
    /// own; argument-parsing errors are usage errors (2, not 64); anything else comes from the system (3).
    static func runMain() async {
        // SIGINT and SIGTERM remove the partial files of a bake and exit 130 and 143.
        Interruption.installHandlers()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as KilnError {
            Console.error(failure.description)
            Foundation.exit(failure.exitStatus.rawValue)
        } catch let code as ExitCode {
            // Commands throw ExitCode after reporting on their own.
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                // --help, --version.
                print(message)
                Foundation.exit(0)
            }
            if code == .validationFailure {
                FileHandle.standardError.write(Data((message + "\n").utf8))
                Foundation.exit(ExitStatus.input.rawValue)
            }
            Console.error(message.isEmpty ? "\(error)" : message)
            Foundation.exit(ExitStatus.environment.rawValue)
        }
    }
}

/// A failure the command line itself found, phrased for the user, with its exit status.
struct CLIFailure: KilnError {
    var message: String
    var exitStatus: ExitStatus

    var description: String { message }

    static func input(_ message: String) -> CLIFailure { CLIFailure(message: message, exitStatus: .input) }
    static func io(_ message: String) -> CLIFailure { CLIFailure(message: message, exitStatus: .environment) }
    static func failed(_ message: String) -> CLIFailure { CLIFailure(message: message, exitStatus: .verificationFailed) }

    /// `error` with what the command was doing in front of its message; its exit status is kept.
    static func wrapping(_ context: String, _ error: any Swift.Error) -> CLIFailure {
        CLIFailure(message: "\(context): \(error)", exitStatus: ExitStatus.of(error))
    }
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
