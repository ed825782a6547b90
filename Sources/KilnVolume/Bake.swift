import Foundation
import KilnBolt
import KilnContainerd
import KilnCore
import KilnDigest
import KilnDisk
import KilnExt4
import KilnLayer
import KilnManifest
import KilnOCI

/// Bakes a recipe into `OUTDIR/data.img` and `OUTDIR/manifest.json`.
///
/// The pipeline, in the order ``run()`` takes it:
/// 1. resolve every image of the recipe for its platforms (``resolveImages()``);
/// 2. open the filesystem writer on `OUTDIR/.data.img.partial` (behind a 1 MiB gap for the GPT on a
///    Bottlerocket disk);
/// 3. stream each layer once: its digest and diffID are checked while its entries go into the filesystem,
///    flattened (`rootfs`) or one overlayfs snapshot per distinct chainID (containerd layouts), a kept layer blob
///    copied into the content store in the same pass;
/// 4. write containerd's JSON blobs and databases, close the filesystem, write the partition table;
/// 5. hash every block not hashed yet (most were hashed as they became final, by ``LiveBlockHasher``) and
///    write the manifest's sidecar;
/// 6. make the image durable, rename it into place and write the manifest.
///
/// The output directory is locked for the whole bake and its previous outputs removed first; new outputs are
/// written beside their final names and renamed at the end, so an interrupted, killed or failed bake never
/// leaves a `data.img` or `manifest.json` that looks complete (``OutputDirectory``).
public struct Bake {
    public var recipe: Recipe
    public var outputDirectory: String
    /// Seconds since the epoch for every time kiln makes up (SOURCE_DATE_EPOCH).
    public var sourceDateEpoch: Int64
    /// Refuse layers that expand beyond this many bytes (decompression bombs); nil: the explicit volume size, or 1 TiB.
    public var uncompressedLimit: Int64?
    /// What layers may cost (entries, path lengths, depth, attributes); refusals name the budget.
    public var budget: LayerBudget = .standard
    public var progress: (@Sendable (String) -> Void)?
    /// Filled as the bake goes (phase, layer, stored bytes read), for a display to read whenever it likes.
    public var counter: ProgressCounter?
    /// Opens registry (`docker://`) sources; without it a recipe naming one is refused.
    public var remote: (any RemoteImageOpener)?
    /// Told what is sound but worth a word (duplicate paths in a layer: the last wins).
    public var warn: (@Sendable (String) -> Void)?

    public init(recipe: Recipe, outputDirectory: String, sourceDateEpoch: Int64, progress: (@Sendable (String) -> Void)? = nil) {
        self.recipe = recipe
        self.outputDirectory = outputDirectory
        self.sourceDateEpoch = sourceDateEpoch
        self.progress = progress
    }

    /// Where Bottlerocket's data partition starts.
    public static let partitionStart: UInt64 = 1 << 20
    /// The containerd root inside the filesystem.
    public static let containerdRoot = ContainerdRootWriter.rootPath

    /// Why a bake stopped.
    public enum Error: KilnError {
        /// The input does not match its digests (exit 1).
        case verification([Problem])
        /// The recipe asks for something the inputs cannot give (exit 2).
        case input(String)
        /// The volume size asked for cannot hold what the images need (exit 2, naming `volume.size`).
        case volumeTooSmall(String)
        /// A step failed: what kiln was doing, and the cause, whose exit status this takes.
        case failed(String, any Swift.Error)
        /// Writing the output failed (exit 3).
        case io(String)

        public var exitStatus: ExitStatus {
            switch self {
            case .verification: return .verificationFailed
            case .input, .volumeTooSmall: return .input
            case .failed(_, let cause): return ExitStatus.of(cause)
            case .io: return .environment
            }
        }

        public var description: String {
            switch self {
            case .verification(let problems): return problems.map(\.description).joined(separator: "\n")
            case .input(let m), .io(let m): return m
            case .volumeTooSmall(let m): return "volume.size: \(m)"
            case .failed(let context, let cause): return "\(context): \(cause)"
            }
        }
    }

    /// What was baked.
    public struct Result: Sendable {
        public var imagePath: String
        public var manifestPath: String
        public var images: [BakedImage]
        public var filesystem: EXT4Writer.Summary
        public var imageFileSize: UInt64
        /// The partition table (bottlerocket layout).
        public var partitionTable: GPT?
        /// Wall time of each phase, in the order they ran.
        public var phases: [Phase] = []
        /// EBS blocks hashed while the image was written (the manifest phase read only the others).
        public var blocksHashedWhileWriting: UInt64 = 0
        /// 512 KiB blocks of the image that hold data (what an EBS snapshot of it stores).
        public var writtenBlocks: UInt64 = 0
        /// The base followed (`--base`), and the filesystem inodes that kept their number and blocks from it.
        public var base: BakeBase?
        public var keptInodes: UInt64 = 0
        /// What changed relative to the base, as the manifest records it.
        public var changes: ManifestBase?
    }

    /// The wall time of one phase of a bake.
    public struct Phase: Sendable, Hashable {
        /// `layers`, `content` (containerd layouts: metadata blobs and databases), `filesystem` or `manifest`.
        public var name: String
        public var seconds: Double
    }

    /// One image on the volume, with what its layers really were.
    public struct BakedImage: Sendable {
        public var image: ResolvedImage
        public var names: [String]
        public var layerReports: [LayerReport]
        /// The snapshot id (`snapshots/<id>`) each layer became (containerd layouts).
        public var snapshotIDs: [UInt64]
    }

    // MARK: - The pipeline

    /// Runs the bake.
    public func run() throws(Error) -> Result {
        var clock = PhaseClock()

        // 1. Images.
        let images = try resolveImages()
        guard !images.isEmpty else { throw .input("the recipe selects no image") }
        if recipe.layout == .rootfs, images.count != 1 {
            throw .input("layout rootfs flattens exactly one image; the recipe selects \(images.count) (\(images.map { $0.0.displayName + " " + $0.0.platform.description }.joined(separator: ", ")))")
        }

        // The base, read whole first: it may be the very directory this bake is about to empty.
        let partitioned = recipe.layout == .bottlerocket
        var base: BakeBase? = nil
        if let path = recipe.base {
            do throws(Error) {
                let loaded = try BakeBase.load(path)
                let baseDirectory = URL(fileURLWithPath: loaded.manifestPath).deletingLastPathComponent().resolvingSymlinksInPath().path
                if baseDirectory == URL(fileURLWithPath: outputDirectory).resolvingSymlinksInPath().path {
                    // The bake empties its output directory first: a bake that then failed would lose its base.
                    throw Error.input("base '\(loaded.manifestPath)' is in the output directory, which the bake empties first; bake into another directory (a base needs only manifest.json, manifest.layout and manifest.blocks)")
                }
                if let why = loaded.mismatch(recipe: recipe, images: images.map(\.0), partitioned: partitioned) {
                    throw Error.input("base '\(loaded.manifestPath)': \(why)")
                }
                base = loaded
            } catch {
                guard recipe.baseOptional else { throw error }
                warn?("\(error); baking without a base (--base-optional)")
            }
        }
        var model: ContainerdRoot? = nil
        if recipe.layout != .rootfs {
            var m = try containerdModel(images)
            if let base {
                var places: [Digest: (names: Set<String>, layerIndex: Int)] = [:]
                for (image, names) in images {
                    for (i, chain) in image.chainIDs.enumerated() where places[chain] == nil { places[chain] = (Set(names), i) }
                }
                m.reuseSnapshotIDs(base.snapshotSlots, places: places)
            }
            model = m
        }

        // 2. The output directory (locked, the previous outputs removed), the partial image and its writer.
        let output = try OutputDirectory(outputDirectory)
        defer { output.unlock() }
        try output.removePrevious()
        let finalImage = output.finalImage
        let partialImage = output.partialImage
        Interruption.protect(partialImage)
        var succeeded = false
        defer {
            if !succeeded { output.removeOutputs() }
            Interruption.release(partialImage)
            Interruption.release(finalImage)
        }
        var options = try writerOptions(images.map(\.0), partitioned: partitioned)
        if let base {
            let keep = base.keptInodes(snapshots: model.map { Set($0.snapshots.values.map(\.id)) },
                                       blobs: model.map { Set($0.blobs.keys) })
            options.base = EXT4.Base(placement: base.placement, keep: keep)
        }
        // Blocks are hashed as they become final, and handed to writeback then, so that neither the manifest
        // nor making the image durable needs a second pass over it at the end.
        let writeback = try Self.createImage(partialImage)
        let live = LiveBlockHasher(path: partialImage) { writeback.isFinal($0) }
        defer { live.stop() }
        options.writeObserver = live
        let writer: EXT4Writer
        do {
            writer = try EXT4Writer(path: partialImage, offset: partitioned ? Self.partitionStart : 0, options: options)
        } catch {
            throw .failed(partialImage, error)
        }
        live.start()

        // 3 and 4. Layers, then what containerd needs beside them.
        var distinct: [Digest: Int64] = [:]
        for (image, _) in images { for layer in image.layers { distinct[layer.descriptor.digest] = layer.descriptor.size } }
        counter?.start(phase: "layers", totalBytes: distinct.values.reduce(0, +))
        let baked: [BakedImage]
        switch recipe.layout {
        case .rootfs:
            baked = try unpackFlattened(images, into: writer)
            clock.end("layers")
        case .containerd, .bottlerocket:
            baked = try unpackSnapshots(images, model: model ?? ContainerdRoot(createdAt: GoTime(unixSeconds: sourceDateEpoch)),
                                        into: writer, clock: &clock)
            clock.end("content")
        }
        counter?.start(phase: "filesystem", totalBytes: 0, item: "")
        let summary: EXT4Writer.Summary
        do { summary = try writer.close() } catch {
            throw Self.sizeError(error) ?? .failed(partialImage, error)
        }
        var gpt: GPT? = nil
        if partitioned {
            let table = GPT.disk(partitionStart: Self.partitionStart, partitionSize: summary.byteSize,
                                 diskGUID: GUID(hashBytes: Array(SHA256Hasher.hash(Array("disk".utf8) + summary.uuid.utf8).bytes)))
            let fd = open(partialImage, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw .io("\(partialImage): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            do { try table.write(to: fd) } catch { throw .failed(partialImage, error) }
            // Written beside the filesystem writer: whatever was hashed in these ranges is stale.
            live.imageDidChange(offset: 0, count: Self.partitionStart)
            let end = table.partitionStart + table.partitionSize
            live.imageDidChange(offset: end, count: table.diskSize - end)
            gpt = table
        }
        let hashed = live.stop()
        clock.end("filesystem")

        // The image reaches stable storage before its manifest is written, in a phase of its own: waiting for
        // the disk shows as such in the summary, instead of inside the manifest's first fsync (which commits the
        // filesystem journal that holds the image's block allocations).
        counter?.start(phase: "sync", totalBytes: 0, item: "")
        do { try writeback.makeDurable() } catch { throw .io(error.description) }
        clock.end("sync")
        counter?.start(phase: "manifest", totalBytes: 0, item: "")

        // 5 and 6. The manifest, from the finished image's blocks; the image renamed into place just before the
        // manifest is, so that the two appear together.
        let manifestPath = outputDirectory + "/" + SnapshotManifest.fileName
        let imageSize = ((try? FileManager.default.attributesOfItem(atPath: partialImage))?[.size] as? NSNumber)?.uint64Value ?? 0
        var result = Result(imagePath: finalImage, manifestPath: manifestPath, images: baked, filesystem: summary,
                            imageFileSize: imageSize, partitionTable: gpt)
        result.blocksHashedWhileWriting = UInt64(hashed.count)
        result.keptInodes = UInt64(writer.keptInodes)
        result.base = base
        let written = try writeManifest(result, partialImage: partialImage, hashed: hashed, placement: writer.placementFile) {
            // The manifest vouches for the image, which reached stable storage in the sync phase (nothing has
            // written to it since): now both can be put in place.
            Interruption.protect(finalImage)
            guard rename(partialImage, finalImage) == 0 else {
                throw Error.io("\(finalImage): cannot move the finished image into place: \(String(cString: strerror(errno)))")
            }
        }
        (result.writtenBlocks, result.changes) = written
        clock.end("manifest")
        result.phases = clock.phases
        succeeded = true
        counter?.finish()
        return result
    }

    // MARK: - 1. Images

    /// Resolves every image of the recipe for every platform it names.
    public func resolveImages() throws(Error) -> [(ResolvedImage, [String])] {
        guard !recipe.images.isEmpty else { throw .input("\(recipe.path.map { "\($0): " } ?? "")images: list at least one image to bake") }
        var out: [(ResolvedImage, [String])] = []
        for (i, item) in recipe.images.enumerated() {
            let resolution: Resolution
            do {
                let source = try recipe.source(of: item)
                resolution = try SourceReader(source, remote: remote).resolve(platforms: recipe.platforms)
            } catch {
                throw .failed("images[\(i)] \(item.source)", error)
            }
            if !resolution.problems.isEmpty { throw .verification(resolution.problems) }
            for image in resolution.images {
                guard recipe.platforms.contains(where: { $0.matches(image.platform) }) else {
                    throw .input("images[\(i)] \(item.source): the image is \(image.platform), the recipe asks for \(recipe.platforms.map(\.description).joined(separator: ", "))")
                }
                out.append((image, item.names ?? image.names))
            }
        }
        return out
    }

    // MARK: - 2. The filesystem

    func writerOptions(_ images: [ResolvedImage], partitioned: Bool) throws(Error) -> EXT4Writer.Options {
        // UUID and hash seed follow the content: the recipe and every image's manifest digest.
        var seed = Array((recipe.digest?.description ?? recipe.name).utf8)
        for image in images { seed += Array(image.manifestDescriptor.digest.description.utf8) }
        var options = EXT4Writer.Options()
        options.seed = SHA256Hasher.hash(seed).bytes
        options.defaultTime = EXT4.Timestamp(seconds: sourceDateEpoch)
        switch recipe.size {
        case .automatic: options.size = .automatic
        case .bytes(let n):
            // For a partitioned disk the size is the disk's: the partition leaves 1 MiB at each end.
            let reserve: UInt64 = partitioned ? 2 * Self.partitionStart : 0
            guard n > reserve + (8 << 20) else { throw .volumeTooSmall("\(n) bytes is too small (at least \(reserve + (8 << 20)) bytes)") }
            options.size = .bytes(n - reserve)
        }
        options.volumeName = String(recipe.name.prefix(16))
        options.maximumDepth = budget.depth
        return options
    }

    /// Creates the empty partial image, for the writer and for writeback to share.
    static func createImage(_ path: String) throws(Error) -> Writeback {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("\(path): \(String(cString: strerror(errno)))") }
        close(fd)
        guard let writeback = Writeback(path: path) else { throw .io("\(path): \(String(cString: strerror(errno)))") }
        return writeback
    }

    // MARK: - 3. Layers

    /// `rootfs`: the one image's layers applied in order onto one tree.
    func unpackFlattened(_ images: [(ResolvedImage, [String])], into writer: EXT4Writer) throws(Error) -> [BakedImage] {
        var baked: [BakedImage] = []
        for (image, _) in images { image.store.willRead(image.layers.map(\.descriptor)) }
        for (image, names) in images {
            let applier = LayerApplier(writer: writer, root: .root, mode: .flatten, budget: budget)
            var reports: [LayerReport] = []
            for layer in image.layers {
                applier.startLayer()
                reports.append(try streamLayer(layer, of: image, into: applier))
            }
            baked.append(BakedImage(image: image, names: names, layerReports: reports, snapshotIDs: []))
        }
        return baked
    }

    /// What containerd will find: every image's blobs, records and snapshots.
    func containerdModel(_ images: [(ResolvedImage, [String])]) throws(Error) -> ContainerdRoot {
        var model = ContainerdRoot(namespace: recipe.namespace, createdAt: GoTime(unixSeconds: sourceDateEpoch))
        for (image, names) in images {
            do { try model.add(image, names: names, keepLayerBlobs: recipe.keepLayerBlobs) } catch {
                throw .failed(image.displayName, error)
            }
        }
        return model
    }

    /// Containerd layouts: each distinct chainID unpacked once into its own snapshot, from the first image that
    /// has it; every other layer still checked against its own digests; then the JSON blobs and databases.
    func unpackSnapshots(_ images: [(ResolvedImage, [String])], model: ContainerdRoot, into writer: EXT4Writer, clock: inout PhaseClock) throws(Error) -> [BakedImage] {
        let root: ContainerdRootWriter
        do { root = try ContainerdRootWriter(model: model, into: writer, time: EXT4.Timestamp(seconds: sourceDateEpoch)) } catch {
            throw Self.sizeError(error) ?? .failed("containerd root", error)
        }

        var reports: [String: LayerReport] = [:]  // key: image index / layer index
        var reportOfBlob: [Digest: LayerReport] = [:]
        var sourceOf: [Digest: (Int, Int)] = [:]
        for (i, (image, _)) in images.enumerated() {
            for (j, chainID) in image.chainIDs.enumerated() where sourceOf[chainID] == nil { sourceOf[chainID] = (i, j) }
        }
        // Stores that fetch (registries) start on the layers in the order they are read: snapshots first, then the
        // layers only checked.
        var readOrder: [(Int, Int)] = model.orderedSnapshots.compactMap { sourceOf[$0.chainID] }
        var inOrder = Set(readOrder.map { "\($0.0)/\($0.1)" })
        for (i, (image, _)) in images.enumerated() {
            for j in image.layers.indices where inOrder.insert("\(i)/\(j)").inserted { readOrder.append((i, j)) }
        }
        for (i, (image, _)) in images.enumerated() {
            image.store.willRead(readOrder.filter { $0.0 == i }.map { image.layers[$0.1].descriptor })
        }
        var entries = 0
        var fsOfSnapshot: [Digest: EXT4.NodeID] = [:]
        for snapshot in model.orderedSnapshots {
            guard let (i, j) = sourceOf[snapshot.chainID] else { continue }
            let image = images[i].0
            let layer = image.layers[j]
            let applier: LayerApplier
            let copy: BlobCopy?
            do {
                copy = try root.placeLayerBlob(layer.descriptor.digest)
                var lowers: [EXT4.NodeID] = []
                var below = snapshot.parent
                while let chain = below, let fs = fsOfSnapshot[chain] {
                    lowers.append(fs)
                    below = model.snapshots[chain]?.parent
                }
                let fs = try root.makeSnapshotDirectory(snapshot)
                fsOfSnapshot[snapshot.chainID] = fs
                applier = LayerApplier(writer: writer, root: fs, mode: .overlay, budget: budget, lowerRoots: lowers,
                                       entriesBefore: entries)
            } catch {
                throw Self.sizeError(error) ?? .failed("\(image.displayName): layer \(j)", error)
            }
            let report = try streamLayer(layer, of: image, into: applier, copy: copy)
            entries = applier.totalEntries
            reports["\(i)/\(j)"] = report
            reportOfBlob[layer.descriptor.digest] = report
            root.recordUsage(snapshot.chainID, inodes: applier.inodes, size: applier.usedBytes)
        }
        // Layers whose snapshot came from another image (the same content, perhaps compressed differently) are
        // still checked against their own digests. A blob already read in this bake is not read again: what that
        // pass found is compared with what this image's manifest and config promise.
        for (i, (image, _)) in images.enumerated() {
            for (j, layer) in image.layers.enumerated() where reports["\(i)/\(j)"] == nil {
                if let known = reportOfBlob[layer.descriptor.digest] {
                    let problems = known.problems(against: layer, image: image.displayName)
                    if !problems.isEmpty { throw .verification(problems) }
                    reports["\(i)/\(j)"] = known
                    continue
                }
                let copy: BlobCopy?
                do { copy = try root.placeLayerBlob(layer.descriptor.digest) } catch {
                    throw Self.sizeError(error) ?? .failed("\(image.displayName): layer \(j)", error)
                }
                let report = try streamLayer(layer, of: image, into: nil, copy: copy)
                reports["\(i)/\(j)"] = report
                reportOfBlob[layer.descriptor.digest] = report
            }
        }
        clock.end("layers")

        do { try root.finish() } catch { throw Self.sizeError(error) ?? .failed("containerd root", error) }
        return images.enumerated().map { i, pair in
            let (image, names) = pair
            return BakedImage(
                image: image, names: names,
                layerReports: image.layers.indices.compactMap { reports["\(i)/\($0)"] },
                snapshotIDs: image.chainIDs.map { root.model.snapshots[$0]?.id ?? 0 })
        }
    }

    /// Streams one layer, into `applier` when given (else only to check it), copying its stored bytes into
    /// `copy` when given, and checks it against its descriptor and diffID.
    func streamLayer(_ layer: ImageLayer, of image: ResolvedImage, into applier: LayerApplier?, copy: BlobCopy? = nil) throws(Error) -> LayerReport {
        let name = image.displayName
        let what = "\(name): layer \(layer.index) \(layer.descriptor.digest)"
        let location: BlobLocation?
        do { location = try image.store.locate(layer.descriptor) } catch { throw .failed(what, error) }
        guard let location else {
            throw .verification([Problem(image: name, subject: "layer \(layer.index)", digest: layer.descriptor.digest.description,
                                         message: "blob is missing from \(image.store.displayName)")])
        }
        progress?("\(name): layer \(layer.index + 1)/\(image.layers.count) \(layer.descriptor.digest.short) (\(layer.descriptor.size) bytes)")
        let report: LayerReport
        do {
            counter?.setItem("\(name) layer \(layer.index + 1)/\(image.layers.count)")
            let counter = self.counter
            let sink: StoredBytesSink? = copy == nil && counter == nil ? nil : StoredBytesSink { bytes in
                copy?.receive(bytes)
                counter?.add(bytes.count)
            }
            if let applier {
                report = try LayerScanner.scan(location, compression: layer.compression, uncompressedLimit: effectiveUncompressedLimit,
                                               storedSink: sink) { entry, content in
                    try applier.apply(entry, content: content)
                }
            } else {
                report = try LayerScanner.scan(location, compression: layer.compression, uncompressedLimit: effectiveUncompressedLimit,
                                               storedSink: sink)
            }
        } catch let e as StreamFailure {
            if e.exceededLimit, let tooLarge = volumeTooSmall(for: layer, of: image) { throw tooLarge }
            throw .verification([Problem(image: name, subject: "layer \(layer.index)", digest: layer.descriptor.digest.description,
                                         message: e.description)])
        } catch {
            throw Self.sizeError(error) ?? .failed(what, error)
        }
        if report.exceededLimit, let tooLarge = volumeTooSmall(for: layer, of: image) { throw tooLarge }
        let problems = report.problems(against: layer, image: name)
        if !problems.isEmpty { throw .verification(problems) }
        for warning in report.warnings(against: layer, image: name) { warn?(warning) }
        for warning in applier?.takeWarnings() ?? [] { warn?("\(name) layer \(layer.index) \(layer.descriptor.digest): \(warning)") }
        do { try copy?.finish() } catch { throw .failed(what, error) }
        return report
    }

    var effectiveUncompressedLimit: Int64 {
        if let uncompressedLimit { return uncompressedLimit }
        if case .bytes(let n) = recipe.size { return Int64(clamping: n) }
        return 1 << 40
    }

    /// A layer stopped at the decompression limit: when that limit is the recipe's explicit volume size, the
    /// layer is not a bomb but too large for the volume asked for, which is the recipe's to fix (exit 2).
    func volumeTooSmall(for layer: ImageLayer, of image: ResolvedImage) -> Error? {
        guard uncompressedLimit == nil, case .bytes(let n) = recipe.size else { return nil }
        return .volumeTooSmall("\(image.displayName) layer \(layer.index) \(layer.descriptor.digest) expands beyond \(n) bytes: it does not fit in the volume asked for (give a larger size, or auto)")
    }

    /// A full filesystem, wherever the writer found it, is the volume size's fault, not the entry's.
    static func sizeError(_ error: any Swift.Error) -> Error? {
        var writerError = error as? EXT4Writer.Error
        if let e = error as? ContainerdRootWriter.Error { writerError = e.doesNotFit }
        if let e = error as? LayerApplier.Error, case .entryFailed(_, let cause) = e { writerError = cause as? EXT4Writer.Error }
        guard let writerError, case .doesNotFit = writerError else { return nil }
        return .volumeTooSmall("\(writerError)")
    }
}

/// Measures consecutive phases of a bake by wall time.
struct PhaseClock {
    private(set) var phases: [Bake.Phase] = []
    private var last = DispatchTime.now()

    /// Ends the phase that started when the previous one ended.
    mutating func end(_ name: String) {
        let now = DispatchTime.now()
        phases.append(Bake.Phase(name: name, seconds: Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e9))
        last = now
    }
}
