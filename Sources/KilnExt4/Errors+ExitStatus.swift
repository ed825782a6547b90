import KilnCore

extension EXT4Writer.Error: KilnError {
    /// Failing to open or write the image is the system's; a filesystem that cannot hold what it is given
    /// (too small, too many inodes) and entries it cannot represent are input.
    public var exitStatus: ExitStatus {
        switch self {
        case .cannotOpen, .io, .closed, .fileStillOpen, .noOpenFile, .unknownNode: return .environment
        default: return .input
        }
    }
}

extension EXT4ReservedFile.Error: KilnError {
    public var exitStatus: ExitStatus {
        switch self {
        case .io: return .environment
        case .beyondEnd: return .input
        }
    }
}

extension EXT4Reader.Error: KilnError {
    /// A filesystem that cannot be opened or read is the system's problem; one that does not hold what it
    /// should, or holds damaged structures, is input.
    public var exitStatus: ExitStatus {
        switch self {
        case .cannotOpen, .io: return .environment
        default: return .input
        }
    }
}
