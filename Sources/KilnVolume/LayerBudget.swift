import KilnCore

/// What one bake lets layers it did not build cost, so that a hostile or broken layer stops with a refusal that
/// names the limit instead of exhausting memory, time or the volume.
///
/// Decompressed bytes are bounded separately (``Bake/uncompressedLimit``: the explicit volume size, or 1 TiB).
/// Extended attributes are bounded by what ext4 stores (the inode's spare space and one 4 KiB block).
public struct LayerBudget: Sendable, Hashable {
    /// Tar entries in one layer.
    public var entriesPerLayer: Int
    /// Tar entries over all the layers of a bake (each costs memory until the filesystem is written).
    public var entriesPerBake: Int
    /// Bytes of one entry's path, and of a symlink or hard-link target (Linux's PATH_MAX).
    public var pathBytes: Int
    /// Directories one entry's path may resolve through, symlinks followed (no recursion depends on it; it
    /// bounds the work and what a reader of the volume must walk).
    public var depth: Int
    /// Extended attributes on one entry.
    public var xattrsPerEntry: Int

    public init(entriesPerLayer: Int = 4_000_000, entriesPerBake: Int = 8_000_000, pathBytes: Int = 4096,
                depth: Int = 1024, xattrsPerEntry: Int = 128) {
        self.entriesPerLayer = entriesPerLayer
        self.entriesPerBake = entriesPerBake
        self.pathBytes = pathBytes
        self.depth = depth
        self.xattrsPerEntry = xattrsPerEntry
    }

    /// The limits every bake uses unless told otherwise.
    public static let standard = LayerBudget()
}
