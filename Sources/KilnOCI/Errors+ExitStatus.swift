import KilnCore

extension BlobError: KilnError {
    /// A blob the image references but does not hold, or holds cut short, is a failed check of the image (as
    /// `kiln verify` reports it); a blob over a size cap is input kiln refuses; a read failure is the system's.
    public var exitStatus: ExitStatus {
        switch self {
        case .missing, .truncated: return .verificationFailed
        case .tooLarge, .symlink, .badRange: return .input
        case .io: return .environment
        }
    }
}

extension Platform.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension TarIndex.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ImageSource.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension SourceReader.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}

extension ImageName.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}
