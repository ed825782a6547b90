import KilnCore

extension ContainerdInventory.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ContainerdRoot.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}
