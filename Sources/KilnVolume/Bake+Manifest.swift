import Foundation
import KilnContainerd
import KilnCore
import KilnDisk
import KilnDigest
import KilnManifest
import KilnOCI

extension Bake {
    /// Hashes what is left of the finished image (the 512 KiB blocks not in `hashed`, on all cores; the whole file
    /// when asked for) and writes `manifest.json` and its block-digest sidecar beside it, atomically. Returns the
    /// number of written blocks.
    func writeManifest(_ result: Result, partialImage: String, hashed: HashedBlocks?, placement: [UInt8],
                       commit: @escaping () throws -> Void) throws(Error) -> (written: UInt64, changes: ManifestBase?) {
        let fs = result.filesystem
        var images: [ManifestImage] = []
        for b in result.images {
            let chain = b.image.chainIDs
            func descriptor(_ d: Descriptor) -> ManifestDescriptor { ManifestDescriptor(mediaType: d.mediaType, digest: d.digest, size: d.size) }
            images.append(ManifestImage(
                names: b.names, platform: b.image.platform.description,
                indexes: b.image.indexChain.map(descriptor),
                manifest: descriptor(b.image.manifestDescriptor),
                config: descriptor(b.image.manifest.config),
                layers: b.image.layers.enumerated().map { i, l in
                    ManifestLayer(digest: l.descriptor.digest, mediaType: l.descriptor.mediaType, size: l.descriptor.size,
                                  diffID: l.diffID, chainID: chain[i],
                                  uncompressedSize: i < b.layerReports.count ? b.layerReports[i].uncompressedSize : 0,
                                  entries: i < b.layerReports.count ? b.layerReports[i].entryCount : 0,
                                  snapshotId: i < b.snapshotIDs.count ? String(b.snapshotIDs[i]) : nil)
                }))
        }
        var partition: ManifestPartition? = nil
        if let gpt = result.partitionTable {
            partition = ManifestPartition(start: gpt.partitionStart, size: gpt.partitionSize, typeGUID: gpt.partitionType.description,
                                          uniqueGUID: gpt.partitionGUID.description, name: gpt.partitionName,
                                          diskGUID: gpt.diskGUID.description)
        }
        let filesystem = ManifestFilesystem(
            offset: fs.byteOffset, uuid: fs.uuid, label: String(recipe.name.prefix(16)), blockSize: fs.blockSize,
            blockCount: fs.blockCount, inodeCount: UInt64(fs.inodeCount), usedBlocks: fs.usedBlocks,
            usedInodes: UInt64(fs.inodeCount - fs.freeInodes))
        var inputs = SnapshotInputs(
            kilnVersion: KilnVersion.current, recipe: SnapshotManifest.Recipe(name: recipe.name, digest: recipe.digest),
            createdAt: ManifestTimestamp.rfc3339(epochSeconds: sourceDateEpoch), images: images,
            layout: recipe.layout.rawValue, partition: partition, filesystem: filesystem,
            fileMap: fileMap(result))
        inputs.placement = placement
        if let b = result.base {
            inputs.base = BaseInput(manifestDigest: b.manifestDigest, manifest: b.manifest, blocks: b.blocks, keptInodes: result.keptInodes)
        }
        do {
            // The partial image is kiln's own until it is renamed: nothing truncates it while it is mapped.
            var hasher = BlockHasher(fileDigest: recipe.fileDigest, memoryMapped: true)
            hasher.known = hashed
            let manifest = try ManifestWriter.writeSnapshot(image: partialImage, imageFileName: "data.img", outputDirectory: outputDirectory,
                                                            inputs: inputs, hasher: hasher, commit: commit)
            return (manifest.blocks.written, manifest.base)
        } catch let e as Error {
            throw e
        } catch ManifestWriter.Error.io(let path, let why) {
            // It names the file that could not be written (a sidecar, maybe), not the manifest.
            throw .io("\(path): cannot write: \(why)")
        } catch {
            throw .failed(result.manifestPath, error)
        }
    }

    /// Which files (and layers) own which bytes of the image, and what the rest is.
    func fileMap(_ result: Result) -> FileMapInput {
        let fs = result.filesystem
        let blockSize = UInt64(fs.blockSize)
        var map = FileMapInput()
        // Snapshot directories name the layer they hold, by the name the image has on the volume (the same
        // whether it came from a registry or a layout).
        var layerOfSnapshot: [UInt64: String] = [:]
        for b in result.images {
            for (i, id) in b.snapshotIDs.enumerated() where id > 0 && layerOfSnapshot[UInt64(id)] == nil {
                layerOfSnapshot[UInt64(id)] = "\(b.names.first ?? b.image.displayName) layer \(i) \(b.image.layers[i].descriptor.digest)"
            }
        }
        let rootfsLayer = recipe.layout == .rootfs ? result.images.first.map { $0.names.first ?? $0.image.displayName } : nil
        let snapshotsPrefix = Array("/\(Self.containerdRoot)/\(ContainerdRoot.Paths.snapshots)/".utf8)
        // Runs grouped by file in one counting pass (a million small files must not cost a million arrays in a
        // dictionary, then a sort of it).
        let fileCount = fs.fileMap.fileCount
        var firstRun = [Int](repeating: 0, count: fileCount + 1)
        for run in fs.fileMap.runs { firstRun[run.file + 1] += 1 }
        for i in 0..<fileCount { firstRun[i + 1] += firstRun[i] }
        var grouped = [(offset: UInt64, length: UInt64)](repeating: (0, 0), count: fs.fileMap.runs.count)
        var fill = firstRun
        for run in fs.fileMap.runs {
            grouped[fill[run.file]] = (fs.byteOffset + run.start * blockSize, run.count * blockSize)
            fill[run.file] += 1
        }
        // The paths' text is shared with the filesystem's map, not copied: a million paths are tens of MB.
        map.reserveCapacity(files: fileCount, ranges: grouped.count)
        let shared = map.sharePathText(fs.fileMap.pathTextUTF8)
        for index in 0..<fileCount where firstRun[index + 1] > firstRun[index] {
            let bytes = fs.fileMap.pathUTF8(index)
            let absolute = bytes.first == UInt8(ascii: "/")
            var layer = rootfsLayer
            if absolute, bytes.starts(with: snapshotsPrefix) {
                // The snapshot directory's number, up to the next slash.
                var id: UInt64? = 0
                for b in bytes.dropFirst(snapshotsPrefix.count) {
                    if b == UInt8(ascii: "/") { break }
                    guard let n = id, b >= 0x30 && b <= 0x39, n < UInt64.max / 10 else {
                        id = nil
                        break
                    }
                    id = n * 10 + UInt64(b - 0x30)
                }
                layer = id.flatMap { layerOfSnapshot[$0] }
            }
            let ranges = grouped[firstRun[index]..<firstRun[index + 1]]
            if absolute && shared {
                map.addFile(pathSpan: fs.fileMap.pathSpan(index), layer: layer, ranges: ranges)
            } else {
                map.addFile(pathUTF8: (absolute ? [] : [UInt8(ascii: "/")]) + bytes, layer: layer, ranges: ranges)
            }
        }
        // Everything else in the filesystem is metadata: superblocks, group descriptors, bitmaps, inode tables,
        // directories, the journal, extent blocks.
        // The filesystem's map keeps its runs sorted by start block.
        let runs = fs.fileMap.runs
        var metadata: [(offset: UInt64, length: UInt64)] = []
        var next: UInt64 = 0
        for run in runs {
            if run.start > next { metadata.append((fs.byteOffset + next * blockSize, (run.start - next) * blockSize)) }
            next = max(next, run.start + run.count)
        }
        if next < fs.blockCount { metadata.append((fs.byteOffset + next * blockSize, (fs.blockCount - next) * blockSize)) }
        map.addRegion(name: "ext4 metadata", ranges: metadata)
        if let gpt = result.partitionTable {
            let end = gpt.partitionStart + gpt.partitionSize
            map.addRegion(name: "partition table", ranges: [(0, gpt.partitionStart), (end, gpt.diskSize - end)])
        }
        return map
    }
}
