import Foundation
import KilnBolt
import KilnContainerd
import KilnDigest
import KilnExt4
import KilnLayer
import KilnOCI

extension Bake {
    /// The containerd root inside the filesystem: Bottlerocket mounts the data partition at /local and
    /// bind-mounts /local/var at /var, so containerd's root is `var/lib/containerd` there.
    public static let containerdRoot = "var/lib/containerd"

    /// Writes content blobs, one unpacked snapshot per distinct chainID and both databases.
    func bakeContainerdRoot(_ images: [(ResolvedImage, [String])], into writer: EXT4Writer, clock: inout PhaseClock) throws -> [BakedImage] {
        var model = ContainerdRoot(namespace: recipe.namespace, createdAt: GoTime(unixSeconds: sourceDateEpoch))
        for (image, names) in images {
            do {
                try model.add(image, names: names, keepLayerBlobs: recipe.keepLayerBlobs)
            } catch {
                throw Error.input("\(image.displayName): \(error)")
            }
        }

        let t = EXT4.Timestamp(seconds: sourceDateEpoch)
        @discardableResult
        func dir(_ path: String, _ mode: UInt16, under root: EXT4.NodeID = .root) throws -> EXT4.NodeID {
            try writer.makeDirectory(path, metadata: EXT4.Metadata(permissions: mode, time: t), under: root)
        }
        try dir("var", 0o755)
        try dir("var/lib", 0o755)
        // containerd 1.6 sets its root to 0700 at every start.
        let root = try dir(Self.containerdRoot, 0o700)
        try dir(ContainerdRoot.Paths.content, 0o755, under: root)
        try dir("io.containerd.content.v1.content/blobs", 0o755, under: root)
        try dir(ContainerdRoot.Paths.blobs, 0o755, under: root)
        try dir(ContainerdRoot.Paths.ingest, 0o755, under: root)
        try dir(ContainerdRoot.Paths.metadata, 0o711, under: root)
        try dir(ContainerdRoot.Paths.overlayfs, 0o700, under: root)
        try dir(ContainerdRoot.Paths.snapshots, 0o700, under: root)

        // A layer blob the content store keeps is copied into it while the layer streams: the bytes placed are
        // the bytes hashed, and the blob is read once.
        let blobMeta = EXT4.Metadata(permissions: 0o444, time: t)
        var copied: Set<Digest> = []
        func blobCopy(for layer: ImageLayer) throws -> BlobCopy? {
            let digest = layer.descriptor.digest
            guard !copied.contains(digest), let blob = model.blobs[digest], blob.bytes == nil,
                  let location = blob.location, location.length == blob.size, blob.size >= 0 else { return nil }
            copied.insert(digest)
            do {
                return BlobCopy(file: try writer.reserveFile(ContainerdRoot.Paths.blob(digest), size: UInt64(blob.size), metadata: blobMeta, under: root))
            } catch let e as EXT4Writer.Error {
                if case .doesNotFit = e { throw Error.input("volume.size: \(e)") }
                throw Error.io("\(ContainerdRoot.Paths.blob(digest)): \(e)")
            }
        }

        // Unpack each distinct chainID once, from the first image that has it, verifying that layer as it streams.
        var reports: [String: LayerReport] = [:]  // key: image index / layer index
        var reportOfBlob: [Digest: LayerReport] = [:]
        var sourceOf: [Digest: (Int, Int)] = [:]
        for (i, (image, _)) in images.enumerated() {
            for (j, chainID) in image.chainIDs.enumerated() where sourceOf[chainID] == nil { sourceOf[chainID] = (i, j) }
        }
        for snapshot in model.orderedSnapshots {
            guard let (i, j) = sourceOf[snapshot.chainID] else { continue }
            let image = images[i].0
            let layer = image.layers[j]
            let copy = try blobCopy(for: layer)
            _ = try dir("\(ContainerdRoot.Paths.snapshots)/\(snapshot.id)", 0o700, under: root)
            let fs = try dir(ContainerdRoot.Paths.snapshotFS(snapshot.id), 0o755, under: root)
            let applier = LayerApplier(writer: writer, root: fs, mode: .overlay)
            let report = try streamLayer(layer, of: image, into: applier, storedSink: copy?.sink)
            try copy?.check()
            reports["\(i)/\(j)"] = report
            reportOfBlob[layer.descriptor.digest] = report
            model.setUsage(snapshot.chainID, inodes: applier.inodes, size: applier.usedBytes)
        }
        // Layers whose snapshot came from another image (the same content, perhaps compressed differently) are
        // still checked against their own digests. A blob already read in this bake is not read again: what that
        // pass found is compared with what this image's manifest and config promise.
        for (i, (image, _)) in images.enumerated() {
            for (j, layer) in image.layers.enumerated() where reports["\(i)/\(j)"] == nil {
                if let known = reportOfBlob[layer.descriptor.digest] {
                    let problems = known.problems(against: layer, image: image.displayName)
                    if !problems.isEmpty { throw Error.verification(problems) }
                    reports["\(i)/\(j)"] = known
                    continue
                }
                let copy = try blobCopy(for: layer)
                let report = try verifyOnly(layer, of: image, storedSink: copy?.sink)
                try copy?.check()
                reports["\(i)/\(j)"] = report
                reportOfBlob[layer.descriptor.digest] = report
            }
        }

        clock.end("layers")

        // The remaining content blobs in digest order, so the same inputs lay out the same way.
        for blob in model.blobs.values.sorted(by: { $0.digest < $1.digest }) where !copied.contains(blob.digest) {
            let path = ContainerdRoot.Paths.blob(blob.digest)
            if let bytes = blob.bytes {
                try writer.writeFile(path, contents: bytes, metadata: blobMeta, under: root)
            } else if blob.location != nil {
                // Every layer blob the store keeps was placed while its layer was read; one that was not would
                // leave containerd a manifest whose layer is missing.
                throw Error.io("\(path): layer blob \(blob.digest) was not placed in the content store")
            }
        }

        let metaDB: Data
        let snapshotterDB: Data
        do {
            metaDB = try model.metaDB()
            snapshotterDB = try model.snapshotterDB()
        } catch {
            throw Error.io("cannot build containerd's databases: \(error)")
        }
        try writer.writeFile(ContainerdRoot.Paths.metaDB, contents: Array(metaDB), metadata: EXT4.Metadata(permissions: 0o644, time: t), under: root)
        try writer.writeFile(ContainerdRoot.Paths.snapshotterDB, contents: Array(snapshotterDB), metadata: EXT4.Metadata(permissions: 0o600, time: t), under: root)

        return images.enumerated().map { i, pair in
            let (image, names) = pair
            return BakedImage(
                image: image, names: names,
                layerReports: image.layers.indices.compactMap { reports["\(i)/\($0)"] },
                snapshotIDs: image.chainIDs.map { model.snapshots[$0]?.id ?? 0 })
        }
    }

    /// Reads a layer only to check it (its snapshot was unpacked from another image's identical layer).
    func verifyOnly(_ layer: ImageLayer, of image: ResolvedImage, storedSink: StoredBytesSink? = nil) throws -> LayerReport {
        guard let location = try image.store.locate(layer.descriptor.digest) else {
            throw Error.verification([Problem(image: image.displayName, subject: "layer \(layer.index)",
                                              digest: layer.descriptor.digest.description, message: "blob is missing from \(image.store.displayName)")])
        }
        let report = try LayerScanner.scan(location, compression: layer.compression, uncompressedLimit: effectiveUncompressedLimit,
                                           storedSink: storedSink)
        if report.exceededLimit, let tooLarge = volumeTooSmall(for: layer, of: image) { throw tooLarge }
        let problems = report.problems(against: layer, image: image.displayName)
        if !problems.isEmpty { throw Error.verification(problems) }
        return report
    }
}

/// Places a layer blob's stored bytes into its reserved content-store file as the layer streams.
///
/// Called on the layer's reading thread; read by the bake only after the scan has finished.
final class BlobCopy: @unchecked Sendable {
    let file: EXT4ReservedFile
    /// Stored bytes received, including any beyond the reserved size.
    private(set) var received: UInt64 = 0
    private(set) var failure: Swift.Error?

    init(file: EXT4ReservedFile) {
        self.file = file
    }

    var sink: StoredBytesSink {
        StoredBytesSink { [self] bytes in receive(bytes) }
    }

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        defer { received += UInt64(bytes.count) }
        // Bytes beyond the reserved size make the layer's size differ from its descriptor, which the scan reports.
        guard failure == nil, received < file.size else { return }
        let n = Int(min(UInt64(bytes.count), file.size - received))
        do { try file.write(UnsafeRawBufferPointer(rebasing: bytes[0..<n]), at: received) } catch { failure = error }
    }

    /// Throws when the copy could not be written (the scan itself has already vouched for the bytes).
    func check() throws {
        if let failure { throw Bake.Error.io("\(failure)") }
        guard received == file.size else {
            throw Bake.Error.io("\(file.path): received \(received) of \(file.size) bytes while copying the blob")
        }
    }
}
