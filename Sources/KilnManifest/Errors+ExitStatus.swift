import KilnCore

extension BlockDigestFile.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}

extension BlockHasher.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .io = self { return .environment }
        return .input
    }
}

extension BlockRuns.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ManifestTimestamp.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ManifestWriter.Error: KilnError {
    public var exitStatus: ExitStatus { .environment }
}

extension SnapshotManifest.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}
