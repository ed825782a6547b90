import KilnDigest

/// The outcome of verifying an image file against its manifest.
public struct VolumeVerification: Sendable, Hashable, Codable {
    /// How a block differs from the manifest.
    public enum BlockProblem: String, Sendable, Hashable, Codable, CustomStringConvertible {
        /// Written in both, with different bytes.
        case digestMismatch
        /// All zeros (or absent) in the manifest, data in the image.
        case unexpectedData
        /// Written in the manifest, all zeros (or past the end) in the image.
        case missingData

        public var description: String {
            switch self {
            case .digestMismatch: return "digest mismatch"
            case .unexpectedData: return "data where the manifest has zeros"
            case .missingData: return "zeros where the manifest has data"
            }
        }
    }

    /// Adjacent bad blocks with the same problem.
    public struct BadRange: Sendable, Hashable, Codable {
        public var firstBlock: UInt64
        public var blockCount: UInt64
        /// Byte offset of the range in the image file.
        public var byteOffset: UInt64
        public var byteLength: UInt64
        public var problem: BlockProblem
        /// What the range belongs to, from the manifest's file map.
        public var owners: BlockOwners

        public init(firstBlock: UInt64, blockCount: UInt64, blockSize: Int, problem: BlockProblem, owners: BlockOwners) {
            self.firstBlock = firstBlock
            self.blockCount = blockCount
            // A hostile sidecar can name any block: the byte figures saturate rather than trap.
            let size = UInt64(max(0, blockSize))
            let offset = firstBlock.multipliedReportingOverflow(by: size)
            let length = blockCount.multipliedReportingOverflow(by: size)
            self.byteOffset = offset.overflow ? .max : offset.partialValue
            self.byteLength = length.overflow ? .max : length.partialValue
            self.problem = problem
            self.owners = owners
        }

        /// The blocks of the range.
        public var blocks: Range<UInt64> {
            let end = firstBlock.addingReportingOverflow(blockCount)
            return firstBlock..<(end.overflow ? .max : end.partialValue)
        }
    }

    /// Whether the whole-file sha256 was recomputed and how it compared.
    public enum FileDigestCheck: String, Sendable, Hashable, Codable {
        case matched, mismatched
        /// Not recomputed: every block matching implies it (the blocks cover every byte of the file).
        case notChecked
        /// Recomputed, but the manifest records none to compare with (baked with `--no-file-digest`).
        case notRecorded
    }

    /// True when the image is exactly what the manifest describes.
    public var ok: Bool
    public var image: String
    public var manifest: String
    public var expectedSize: UInt64
    public var actualSize: UInt64
    public var blockSize: Int
    /// Blocks in the image file.
    public var blockCount: UInt64
    /// Blocks actually read (the others are holes).
    public var blocksRead: UInt64
    public var expectedWritten: UInt64
    public var actualWritten: UInt64
    public var expectedChecksum: String
    public var actualChecksum: String
    public var fileDigest: FileDigestCheck
    public var expectedFileDigest: Digest?
    public var actualFileDigest: Digest?
    /// Bad blocks, ascending.
    public var badRanges: [BadRange]
    /// Files in the manifest's file map (0 when the manifest has none, so owners cannot be named).
    public var mappedFiles: Int
    /// Everything else that is wrong (size, aggregate, whole-file digest, manifest against sidecar).
    public var problems: [String]

    /// Total bad blocks.
    public var badBlocks: UInt64 { badRanges.reduce(0) { $0 + $1.blockCount } }
}

/// The outcome of checking a manifest against its sidecar, without the image.
public struct ManifestConsistency: Sendable, Hashable, Codable {
    public var ok: Bool { problems.isEmpty }
    public var manifest: String
    public var sidecar: String
    /// Written blocks the sidecar lists.
    public var entries: UInt64
    /// The LINEAR checksum recomputed from the sidecar.
    public var checksum: String
    public var problems: [String]
}
