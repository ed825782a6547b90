import KilnCore
import KilnDigest
import KilnOCI

/// What one pass over a layer blob found: the digests it really has, its size, its entries and its faults.
public struct LayerReport: Sendable, Codable, Hashable {
    /// sha256 of the stored (compressed) bytes.
    public var digest: Digest
    /// Stored bytes.
    public var size: Int64
    /// sha256 of the decompressed tar stream.
    public var diffID: Digest
    public var uncompressedSize: Int64
    public var entryCount: Int
    /// Paths that appear more than once in the tar, byte for byte (at most ``LayerScanner/duplicateListLimit``
    /// listed, as text). They are not a fault: the last entry wins.
    public var duplicatePaths: [String]
    public var duplicateCount: Int
    /// The stored (compressed) stream ended early.
    public var undersized: Bool
    /// The tar archive ends inside an entry, or before its end-of-archive blocks where an entry promised data.
    public var tarTruncated: Bool = false
    /// Bytes follow the end of the compressed stream (gzip garbage: Go's reader, hence containerd, fails).
    public var trailingData: Bool
    public var decompressionError: String?
    public var tarError: String?
    /// The tar stops after its last entry without padding or end-of-archive blocks (accepted, as Go's
    /// archive/tar accepts it; the diffID covers the bytes as stored).
    public var missingEndOfArchive: Bool = false
    /// Decompression stopped at the caller's limit (``decompressionError`` says so too).
    public var exceededLimit: Bool = false

    /// True when the stream itself is sound (digests aside).
    public var streamIsSound: Bool {
        !undersized && !tarTruncated && !trailingData && decompressionError == nil && tarError == nil
    }

    /// What is sound but worth a word: paths the tar holds more than once (the last of each wins, as containerd
    /// applies them).
    public func warnings(against layer: ImageLayer, image: String) -> [String] {
        guard duplicateCount > 0 else { return [] }
        let listed = duplicatePaths.joined(separator: ", ") + (duplicateCount > duplicatePaths.count ? ", ..." : "")
        return ["\(image) layer \(layer.index) \(layer.descriptor.digest): \(duplicateCount) duplicate tar path\(duplicateCount == 1 ? "" : "s") (the last entry of each wins, as containerd applies them): \(listed)"]
    }

    /// Compares this report with what a manifest and config promise for `layer`.
    public func problems(against layer: ImageLayer, image: String) -> [Problem] {
        let subject = "layer \(layer.index)"
        let digestText = layer.descriptor.digest.description
        var out: [Problem] = []
        func add(_ message: String, _ expected: String? = nil, _ actual: String? = nil) {
            out.append(Problem(image: image, subject: subject, digest: digestText, message: message, expected: expected, actual: actual))
        }
        if size != layer.descriptor.size {
            add(size < layer.descriptor.size ? "undersized layer: size mismatch" : "size mismatch", "\(layer.descriptor.size)", "\(size)")
        }
        if digest != layer.descriptor.digest { add("digest mismatch", layer.descriptor.digest.description, digest.description) }
        if let e = decompressionError { add("decompression failed: \(e)") }
        if undersized { add("undersized layer: the \(layer.compression == .none ? "tar" : "\(layer.compression)") stream ends early") }
        if tarTruncated && !undersized { add("truncated tar: the archive ends inside an entry (an entry's size runs past the end of the layer)") }
        if trailingData { add("trailing data after the end of the layer stream") }
        if let e = tarError { add("tar error: \(e)") }
        // A diffID cannot be trusted when the stream is broken; still report it when it differs.
        if diffID != layer.diffID {
            add("diffID mismatch (config.rootfs.diff_ids[\(layer.index)])", layer.diffID.description, diffID.description)
        }
        return out
    }
}

/// The layer stream broke while a consumer was reading an entry.
public struct StreamFailure: Swift.Error, CustomStringConvertible {
    public var entry: BytePath
    public var detail: String
    /// The stream stopped at the caller's limit on its decompressed size.
    public var exceededLimit: Bool = false
    public var description: String { "tar entry '\(entry)': \(detail)" }
}

/// A tar entry's data, readable once while the consumer handles that entry.
public struct EntryContent {
    let reader: TarReader

    /// Calls `body` with each data block and its offset in the file; holes of sparse files are skipped.
    public func forEachBlock(_ body: (UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        try reader.readData(body)
    }
}

/// Streams layer blobs exactly once: stored digest, decompression, diffID and tar entries in one pass.
public enum LayerScanner {
    /// How many duplicate paths a report lists by name.
    public static let duplicateListLimit = 10

    /// Reads the blob at `location` once.
    ///
    /// - Parameters:
    ///   - compression: how the blob is compressed.
    ///   - uncompressedLimit: fail when the layer expands beyond this (decompression bombs).
    ///   - storedSink: receives every stored byte in order, on another thread, as the blob is read (all of it,
    ///     even when decompression fails part way).
    ///   - consumer: called for every tar entry in order; may read the entry's data. Errors it throws abort the
    ///     scan and are rethrown. Entry data the consumer does not read is still hashed.
    public static func scan(
        _ location: BlobLocation,
        compression: Compression,
        uncompressedLimit: Int64 = .max,
        storedSink: StoredBytesSink? = nil,
        consumer: ((TarEntry, EntryContent) throws -> Void)? = nil
    ) throws -> LayerReport {
        let stream = LayerStream(reader: try location.open(), compression: compression, uncompressedLimit: uncompressedLimit,
                                 storedSink: storedSink)
        defer { stream.close() }
        var entryCount = 0
        // Fingerprints, not paths: a layer of millions of entries must not hold every path twice. Two
        // independently salted 64-bit SipHashes (seeded per process, so a layer cannot be made to collide) make a
        // false duplicate a 1-in-2^100 event for a million entries.
        var seen = Set<PathFingerprint>()
        var duplicates: [String] = []
        var duplicateCount = 0
        var tarError: String? = nil
        var truncatedTar = false
        var missingEnd = false

        var reader: TarReader? = nil
        do {
            let tar = try TarReader(stream: stream)
            reader = tar
            while true {
                guard let (entry, _) = try tar.nextEntry() else { break }
                entryCount += 1
                let key = entry.path.cleaned
                if !seen.insert(PathFingerprint(key)).inserted {
                    duplicateCount += 1
                    if duplicates.count < duplicateListLimit { duplicates.append(key.isEmpty ? "/" : key.description) }
                }
                if let consumer {
                    do {
                        try consumer(entry, EntryContent(reader: tar))
                    } catch {
                        // When the stream itself broke (corrupt data, a bomb cut off at its limit), that is the
                        // cause worth naming, not the short read the consumer saw.
                        stream.close()
                        if let broken = stream.decompressionError {
                            throw StreamFailure(entry: entry.path, detail: "\(broken.error)", exceededLimit: stream.exceededLimit)
                        }
                        throw error
                    }
                }
            }
            missingEnd = tar.missingEndOfArchive
            // Bytes after the end-of-archive blocks are ignored, as containerd ignores them; the diffID covers them.
            _ = try stream.drain()
        } catch let e as TarReader.Failure where e.isRefusal {
            tarError = e.description
            _ = try stream.drain()
        } catch let e as TarReader.Failure {
            let before = stream.uncompressedBytes
            _ = try stream.drain()
            if !stream.failed {
                // A tar that fails after its stream ended, with nothing left to read, is cut short; one that fails
                // before libarchive saw the end is corrupt.
                if reader?.sawEndOfStream == true && stream.uncompressedBytes == before {
                    truncatedTar = true
                } else {
                    tarError = e.description
                }
            }
        }

        return LayerReport(
            digest: stream.storedHasher.finalize(),
            size: stream.storedBytes,
            diffID: stream.diffHasher.finalize(),
            uncompressedSize: stream.uncompressedBytes,
            entryCount: entryCount,
            duplicatePaths: duplicates,
            duplicateCount: duplicateCount,
            undersized: stream.undersized,
            tarTruncated: truncatedTar,
            trailingData: stream.trailingData,
            decompressionError: stream.decompressionError.map { "\($0.error) (within the first \($0.offset) stored bytes)" },
            tarError: tarError,
            missingEndOfArchive: missingEnd,
            exceededLimit: stream.exceededLimit
        )
    }
}

/// Two 64-bit hashes of a path's bytes, standing for the path in a duplicate check.
struct PathFingerprint: Hashable {
    let first: Int
    let second: Int

    init(_ path: BytePath) {
        var a = Hasher()
        var b = Hasher()
        b.combine(0x5DEE_CE66_D1CE_5EED as UInt64)
        path.bytes.withUnsafeBytes { raw in
            a.combine(bytes: raw)
            b.combine(bytes: raw)
        }
        first = a.finalize()
        second = b.finalize()
    }
}
