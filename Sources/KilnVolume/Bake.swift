import Foundation
import KilnDigest
import KilnExt4
import KilnLayer
import KilnOCI

/// Bakes a recipe into `OUTDIR/data.img` and `OUTDIR/manifest.json`.
///
/// Every layer is read once: its digest and diffID are checked while its entries stream into the filesystem.
/// Outputs are written beside their final names and renamed at the end, so an interrupted or failed bake never
/// leaves a `data.img` that looks complete.
public struct Bake {
    public var recipe: Recipe
    public var outputDirectory: String
    /// Seconds since the epoch for every time kiln makes up (SOURCE_DATE_EPOCH).
    public var sourceDateEpoch: Int64
    /// Refuse layers that expand beyond this many bytes (decompression bombs); nil: the explicit volume size, or 1 TiB.
    public var uncompressedLimit: Int64?
    public var progress: (@Sendable (String) -> Void)?

    public init(recipe: Recipe, outputDirectory: String, sourceDateEpoch: Int64, progress: (@Sendable (String) -> Void)? = nil) {
        self.recipe = recipe
        self.outputDirectory = outputDirectory
        self.sourceDateEpoch = sourceDateEpoch
        self.progress = progress
    }

    /// Why a bake stopped.
    public enum Error: Swift.Error, CustomStringConvertible {
        /// The input does not match its digests (exit 1).
        case verification([Problem])
        /// The recipe asks for something the inputs cannot give (exit 2).
        case input(String)
        /// Writing the output failed (exit 3).
        case io(String)

        public var description: String {
            switch self {
            case .verification(let problems): return problems.map(\.description).joined(separator: "\n")
            case .input(let m): return m
            case .io(let m): return m
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
    }

    /// The wall time of one phase of a bake.
    public struct Phase: Sendable, Hashable {
        /// `layers`, `content` (containerd layouts: metadata blobs and databases), `filesystem` or `manifest`.
        public var name: String
        public var seconds: Double
    }

    /// Where Bottlerocket's data partition starts.
    public static let partitionStart: UInt64 = 1 << 20

    /// One image on the volume, with what its layers really were.
    public struct BakedImage: Sendable {
        public var image: ResolvedImage
        public var names: [String]
        public var layerReports: [LayerReport]
        /// The snapshot id (`snapshots/<id>`) each layer became (containerd layouts).
        public var snapshotIDs: [UInt64]
    }

    /// Resolves every image of the recipe for every platform it names.
    public func resolveImages() throws -> [(ResolvedImage, [String])] {
        var out: [(ResolvedImage, [String])] = []
        for (i, item) in recipe.images.enumerated() {
            let source = try resolveSourcePath(item.source)
            let resolution: Resolution
            do {
                resolution = try SourceReader(source).resolve(platforms: recipe.platforms)
            } catch {
                throw Error.input("images[\(i)] \(item.source): \(error)")
            }
            if !resolution.problems.isEmpty { throw Error.verification(resolution.problems) }
            for image in resolution.images {
                guard recipe.platforms.contains(where: { $0.matches(image.platform) }) else {
                    throw Error.input("images[\(i)] \(item.source): the image is \(image.platform), the recipe asks for \(recipe.platforms.map(\.description).joined(separator: ", "))")
                }
                out.append((image, item.names ?? image.names))
            }
        }
        return out
    }

    /// Parses a recipe's source; a relative path that is not there from the working directory is looked up
    /// beside the recipe.
    func resolveSourcePath(_ text: String) throws -> ImageSource {
        let fm = FileManager.default
        if let base = recipe.baseDirectory, let parsed = try? ImageSource(parsing: text),
           !parsed.path.hasPrefix("/"), !fm.fileExists(atPath: parsed.path), fm.fileExists(atPath: base + "/" + parsed.path) {
            return ImageSource(kind: parsed.kind, path: base + "/" + parsed.path, reference: parsed.reference)
        }
        do {
            return try ImageSource(parsing: text)
        } catch {
            // A bare path that only exists beside the recipe.
            if let base = recipe.baseDirectory, !text.hasPrefix("/"), !text.contains(":"), fm.fileExists(atPath: base + "/" + text) {
                do { return try ImageSource(parsing: base + "/" + text) } catch { throw Error.input("\(text): \(error)") }
            }
            throw Error.input("\(text): \(error)")
        }
    }

    /// Runs the bake.
    public func run() throws -> Result {
        var clock = PhaseClock()
        let images = try resolveImages()
        guard !images.isEmpty else { throw Error.input("the recipe selects no image") }
        switch recipe.layout {
        case .rootfs:
            guard images.count == 1 else {
                throw Error.input("layout rootfs flattens exactly one image; the recipe selects \(images.count) (\(images.map { $0.0.displayName + " " + $0.0.platform.description }.joined(separator: ", ")))")
            }
        case .containerd, .bottlerocket:
            break
        }

        let fm = FileManager.default
        do { try fm.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true) } catch {
            throw Error.io("\(outputDirectory): cannot create the output directory: \(error.localizedDescription)")
        }
        let finalImage = outputDirectory + "/data.img"
        let partialImage = outputDirectory + "/.data.img.partial"
        try? fm.removeItem(atPath: partialImage)
        var succeeded = false
        defer { if !succeeded { try? fm.removeItem(atPath: partialImage) } }

        let partitioned = recipe.layout == .bottlerocket
        let writer: EXT4Writer
        do {
            writer = try EXT4Writer(path: partialImage, offset: partitioned ? Self.partitionStart : 0,
                                    options: try writerOptions(images.map(\.0), partitioned: partitioned))
        } catch let e as Error {
            throw e
        } catch {
            throw Error.io("\(partialImage): \(error)")
        }

        var baked: [BakedImage] = []
        switch recipe.layout {
        case .rootfs:
            for (image, names) in images {
                var reports: [LayerReport] = []
                let applier = LayerApplier(writer: writer, root: .root, mode: .flatten)
                for layer in image.layers {
                    applier.startLayer()
                    let report = try streamLayer(layer, of: image, into: applier)
                    reports.append(report)
                }
                baked.append(BakedImage(image: image, names: names, layerReports: reports, snapshotIDs: []))
            }
        case .containerd, .bottlerocket:
            baked = try bakeContainerdRoot(images, into: writer, clock: &clock)
        }
        clock.end(recipe.layout == .rootfs ? "layers" : "content")
        let summary: EXT4Writer.Summary
        do { summary = try writer.close() } catch {
            if case EXT4Writer.Error.doesNotFit = error { throw Error.input("volume.size: \(error)") }
            throw Error.io("\(finalImage): \(error)")
        }
        var gpt: GPT? = nil
        if partitioned {
            let table = GPT.disk(partitionStart: Self.partitionStart, partitionSize: summary.byteSize,
                                 diskGUID: GUID(hashBytes: Array(SHA256Hasher.hash(Array("disk".utf8) + summary.uuid.utf8).bytes)))
            gpt = table
            let fd = open(partialImage, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw Error.io("\(partialImage): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            do { try table.write(to: fd) } catch { throw Error.io("\(partialImage): \(error)") }
        }

        clock.end("filesystem")

        let manifestPath = outputDirectory + "/manifest.json"
        let imageSize = ((try? fm.attributesOfItem(atPath: partialImage))?[.size] as? NSNumber)?.uint64Value ?? 0
        var result = Result(imagePath: finalImage, manifestPath: manifestPath, images: baked, filesystem: summary,
                            imageFileSize: imageSize, partitionTable: gpt)
        try writeManifest(result, partialImage: partialImage)
        clock.end("manifest")
        result.phases = clock.phases
        do {
            if fm.fileExists(atPath: finalImage) { try fm.removeItem(atPath: finalImage) }
            try fm.moveItem(atPath: partialImage, toPath: finalImage)
        } catch {
            throw Error.io("\(finalImage): cannot move the finished image into place: \(error.localizedDescription)")
        }
        succeeded = true
        return result
    }

    func writerOptions(_ images: [ResolvedImage], partitioned: Bool) throws -> EXT4Writer.Options {
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
            guard n > reserve + (8 << 20) else { throw Error.input("volume.size: \(n) bytes is too small (at least \(reserve + (8 << 20)) bytes)") }
            options.size = .bytes(n - reserve)
        }
        options.volumeName = String(recipe.name.prefix(16))
        return options
    }

    var effectiveUncompressedLimit: Int64 {
        if let uncompressedLimit { return uncompressedLimit }
        if case .bytes(let n) = recipe.size { return Int64(clamping: n) }
        return 1 << 40
    }

    /// Streams one layer into the filesystem and checks it against its descriptor and diffID.
    func streamLayer(_ layer: ImageLayer, of image: ResolvedImage, into applier: LayerApplier,
                     storedSink: StoredBytesSink? = nil) throws -> LayerReport {
        let name = image.displayName
        guard let location = try image.store.locate(layer.descriptor.digest) else {
            throw Error.verification([Problem(image: name, subject: "layer \(layer.index)", digest: layer.descriptor.digest.description,
                                              message: "blob is missing from \(image.store.displayName)")])
        }
        progress?("\(name): layer \(layer.index + 1)/\(image.layers.count) \(layer.descriptor.digest.short) (\(layer.descriptor.size) bytes)")
        let report: LayerReport
        do {
            report = try LayerScanner.scan(location, compression: layer.compression, uncompressedLimit: effectiveUncompressedLimit,
                                           storedSink: storedSink) { entry, content in
                try applier.apply(entry, content: content)
            }
        } catch let e as StreamFailure {
            if e.exceededLimit, let tooLarge = volumeTooSmall(for: layer, of: image) { throw tooLarge }
            throw Error.verification([Problem(image: name, subject: "layer \(layer.index)", digest: layer.descriptor.digest.description,
                                              message: e.description)])
        } catch let e as LayerApplier.Error {
            throw Error.input("\(name): layer \(layer.index) \(layer.descriptor.digest): \(e)")
        } catch let e as EXT4Writer.Error {
            if case .doesNotFit = e { throw Error.input("volume.size: \(e)") }
            throw Error.io("\(name): layer \(layer.index): \(e)")
        }
        if report.exceededLimit, let tooLarge = volumeTooSmall(for: layer, of: image) { throw tooLarge }
        let problems = report.problems(against: layer, image: name)
        if !problems.isEmpty { throw Error.verification(problems) }
        return report
    }

    /// A layer stopped at the decompression limit: when that limit is the recipe's explicit volume size, the
    /// layer is not a bomb but too large for the volume asked for, which is the recipe's to fix (exit 2).
    func volumeTooSmall(for layer: ImageLayer, of image: ResolvedImage) -> Error? {
        guard uncompressedLimit == nil, case .bytes(let n) = recipe.size else { return nil }
        return Error.input("volume.size: \(image.displayName) layer \(layer.index) \(layer.descriptor.digest) expands beyond \(n) bytes: it does not fit in the volume asked for (give a larger size, or auto)")
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
