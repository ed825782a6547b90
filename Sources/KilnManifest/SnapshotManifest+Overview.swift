extension SnapshotManifest {
    /// The numbers `kiln inspect` leads with.
    public struct Overview: Sendable, Hashable, Codable {
        public var images: Int
        /// Layers over all images, counting shared layers once.
        public var layers: Int
        /// Stored (compressed) bytes of those layers.
        public var layerBytes: Int64
        /// Uncompressed bytes of those layers.
        public var uncompressedBytes: Int64
        /// Tar entries in those layers.
        public var entries: Int
        public var volumeBytes: UInt64
        public var blocks: UInt64
        public var writtenBlocks: UInt64
        public var writtenBytes: UInt64
        public var checksum: String
        public var listedFiles: Int
        public var totalFiles: Int
    }

    /// Totals over the manifest.
    public var overview: Overview {
        var seen = Set<String>()
        var layers = 0
        var stored: Int64 = 0
        var uncompressed: Int64 = 0
        var entries = 0
        for image in images {
            for layer in image.layers where seen.insert(layer.digest.description).inserted {
                layers += 1
                // Wrapping: the numbers come from a file and must not trap, however absurd.
                stored &+= layer.size
                uncompressed &+= layer.uncompressedSize
                entries &+= layer.entries
            }
        }
        return Overview(
            images: images.count, layers: layers, layerBytes: stored, uncompressedBytes: uncompressed, entries: entries,
            volumeBytes: volume.size, blocks: blocks.count, writtenBlocks: blocks.written, writtenBytes: blocks.writtenBytes,
            checksum: blocks.checksum, listedFiles: files.entries.count, totalFiles: files.totalFiles)
    }
}
