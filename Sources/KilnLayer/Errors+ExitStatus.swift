import KilnCore

extension StreamFailure: KilnError {
    /// The layer's bytes broke while being read: they are not what the image promises.
    public var exitStatus: ExitStatus { .verificationFailed }
}

extension DecompressionError: KilnError {
    public var exitStatus: ExitStatus { .verificationFailed }
}
