/// How a failed command ends: kiln's exit codes, the same for every command.
///
/// - `1`: the input was read and found wrong (a digest or block mismatch), or a plan cannot meet its deadline.
/// - `2`: usage or input error: a recipe, option, source or file that kiln cannot take as it is.
/// - `3`: I/O or environment error: a file that cannot be read or written, a disk that is full, a missing tool.
public enum ExitStatus: Int32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case verificationFailed = 1
    case input = 2
    case environment = 3

    public var description: String {
        switch self {
        case .verificationFailed: return "verification failed"
        case .input: return "input error"
        case .environment: return "I/O or environment error"
        }
    }
}

/// An error that knows which exit code it ends the command with.
///
/// Every error a kiln library throws conforms, so the command line maps failures to exit codes by type, never
/// by reading messages. `description` is the message users see: lowercase, naming the file, image, layer and
/// entry involved.
public protocol KilnError: Swift.Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}

extension ExitStatus {
    /// The exit status of any error: its own when it is a ``KilnError``; otherwise an environment error, since
    /// errors kiln does not define come from the system (Foundation file I/O, the C libraries).
    public static func of(_ error: Swift.Error) -> ExitStatus {
        (error as? KilnError)?.exitStatus ?? .environment
    }
}
