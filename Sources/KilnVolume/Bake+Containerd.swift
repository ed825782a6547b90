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
    func bakeContainerdRoot(_ images: [(ResolvedImage, [String])], into writer: EXT4Writer) throws -> [BakedImage] {
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

        // Unpack each distinct chainID once, from the first image that has it, verifying that layer as it streams.
        var reports: [String: LayerReport] = [:]  // key: image index / layer index
        var sourceOf: [Digest: (Int, Int)] = [:]
        for (i, (image, _)) in images.enumerated() {
            for (j, chainID) in image.chainIDs.enumerated() where sourceOf[chainID] == nil { sourceOf[chainID] = (i, j) }
        }
        for snapshot in model.orderedSnapshots {
            guard let (i, j) = sourceOf[snapshot.chainID] else { continue }
            let image = images[i].0
            let layer = image.layers[j]
            _ = try dir("\(ContainerdRoot.Paths.snapshots)/\(snapshot.id)", 0o700, under: root)
            let fs = try dir(ContainerdRoot.Paths.snapshotFS(snapshot.id), 0o755, under: root)
            let applier = LayerApplier(writer: writer, root: fs, mode: .overlay)
            reports["\(i)/\(j)"] = try streamLayer(layer, of: image, into: applier)
            model.setUsage(snapshot.chainID, inodes: applier.inodes, size: applier.usedBytes)
        }
        // Layers whose snapshot came from another image (the same content, perhaps compressed differently) are
        // still checked against their own digests.
        for (i, (image, _)) in images.enumerated() {
            for (j, layer) in image.layers.enumerated() where reports["\(i)/\(j)"] == nil {
                reports["\(i)/\(j)"] = try verifyOnly(layer, of: image)
            }
        }

        // Content blobs in digest order, so the same inputs lay out the same way.
        let blobMeta = EXT4.Metadata(permissions: 0o444, time: t)
        for blob in model.blobs.values.sorted(by: { $0.digest < $1.digest }) {
            let path = ContainerdRoot.Paths.blob(blob.digest)
            if let bytes = blob.bytes {
                try writer.writeFile(path, contents: bytes, metadata: blobMeta, under: root)
            } else if let location = blob.location {
                try copyBlob(location, digest: blob.digest, to: path, metadata: blobMeta, under: root, writer: writer)
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
    func verifyOnly(_ layer: ImageLayer, of image: ResolvedImage) throws -> LayerReport {
        guard let location = try image.store.locate(layer.descriptor.digest) else {
            throw Error.verification([Problem(image: image.displayName, subject: "layer \(layer.index)",
                                              digest: layer.descriptor.digest.description, message: "blob is missing from \(image.store.displayName)")])
        }
        let report = try LayerScanner.scan(location, compression: layer.compression, uncompressedLimit: effectiveUncompressedLimit)
        let problems = report.problems(against: layer, image: image.displayName)
        if !problems.isEmpty { throw Error.verification(problems) }
        return report
    }

    /// Copies a layer blob into the content store, hashing it again on the way (the source could change
    /// between the unpacking pass and this copy).
    func copyBlob(_ location: BlobLocation, digest: Digest, to path: String, metadata: EXT4.Metadata, under root: EXT4.NodeID,
                  writer: EXT4Writer) throws {
        let reader = try RangeReader(location)
        let hasher = SHA256Hasher()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        try writer.beginFile(path, metadata: metadata, under: root)
        while true {
            let n = try reader.read(into: buffer)
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            hasher.update(chunk)
            try writer.appendFileData(chunk)
        }
        try writer.finishFile()
        let actual = hasher.finalize()
        if actual != digest {
            throw Error.verification([Problem(image: location.displayName, subject: "blob", digest: digest.description,
                                              message: "changed while baking", expected: digest.description, actual: actual.description)])
        }
    }
}
