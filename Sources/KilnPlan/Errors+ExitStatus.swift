import KilnCore

extension PlanError: KilnError {
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}

extension Arrivals.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension DataVolumeMapping.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension FastSnapshotRestore.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ManifestSummary.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}

extension ModelSet.Error: KilnError {
    public var exitStatus: ExitStatus {
        if case .unreadable = self { return .environment }
        return .input
    }
}

extension ProvisionedRate.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}
