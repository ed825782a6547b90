import KilnCore

extension UploadJournal.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .invalid = self { return .input }
        return .environment
    }
}

extension UploadPlan.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension SnapshotUploader.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .blockChanged = self { return .verificationFailed }
        return .environment
    }
}
