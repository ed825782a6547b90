import KilnCore

extension Bolt.Reader.MetaProblem: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension Bolt.Reader.Error: KilnError {
    /// A database that cannot be read is the system's problem; one whose pages do not check out is damaged input.
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}

extension Bolt.Writer.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .writeFailed = self { return .environment }
        return .input
    }
}

extension GoTime.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension GoVarint.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}
