import KilnCore

extension Digest.Error: KilnError {
    /// A digest that cannot be parsed comes from the input.
    public var exitStatus: ExitStatus { .input }
}
