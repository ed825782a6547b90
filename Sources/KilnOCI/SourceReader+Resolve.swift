import KilnDigest

/// Images selected from a source, and what was wrong with their manifests and configs.
public struct Resolution: Sendable {
    public var images: [ResolvedImage]
    public var problems: [Problem]
}

extension SourceReader {
    /// Resolves every selected image to one manifest per platform.
    ///
    /// - Parameters:
    ///   - platforms: the platforms wanted from multi-platform indexes.
    ///   - allPlatforms: take every platform an index lists instead (attestation entries excluded).
    public func resolve(platforms: [Platform], allPlatforms: Bool = false) throws -> Resolution {
        var images: [ResolvedImage] = []
        var problems: [Problem] = []
        for entry in entries {
            let label = entry.names.first ?? "\(source) \(entry.descriptor.digest.short)"
            if let legacy = entry.legacy {
                let manifest = try Self.decode(ImageManifest.self, legacy.manifestBytes, what: label)
                let config = try Self.decode(ImageConfig.self, legacy.configBytes, what: "\(label) config")
                if let p = legacy.configProblem { problems.append(p) }
                let layers = manifest.layers.enumerated().map { i, d in
                    ImageLayer(index: i, descriptor: d, diffID: config.rootfs.diffIDs[i], compression: legacy.layerCompressions[i])
                }
                problems += Self.configProblems(config, layerCount: layers.count, image: label, digest: manifest.config.digest)
                images.append(ResolvedImage(
                    source: source, names: entry.names, indexChain: [], manifestDescriptor: entry.descriptor,
                    manifest: manifest, manifestBytes: legacy.manifestBytes, config: config, configBytes: legacy.configBytes,
                    indexBytes: [], platform: config.platform ?? Platform(os: "linux", architecture: "unknown"),
                    layers: layers, store: store, synthesizedManifest: true))
                continue
            }
            try walk(entry.descriptor, names: entry.names, label: label, chain: [], chainBytes: [], platforms: platforms,
                     allPlatforms: allPlatforms, images: &images, problems: &problems)
        }
        return Resolution(images: images, problems: problems)
    }

    private func walk(
        _ descriptor: Descriptor, names: [String], label: String, chain: [Descriptor], chainBytes: [[UInt8]],
        platforms: [Platform], allPlatforms: Bool, images: inout [ResolvedImage], problems: inout [Problem]
    ) throws {
        if MediaType.isIndex(descriptor.mediaType) {
            guard let bytes = try readJSON(descriptor, image: label, subject: "index", problems: &problems) else { return }
            try Self.checkShape(bytes, kind: .index, descriptorMediaType: descriptor.mediaType, what: "\(label) index \(descriptor.digest)")
            let index = try Self.decode(ImageIndex.self, bytes, what: "\(label) index \(descriptor.digest)")
            let candidates = index.manifests.filter { d in
                // Attestation manifests (buildx) carry the platform unknown/unknown.
                !(d.platform?.os == "unknown" && d.platform?.architecture == "unknown")
            }
            var chosen: [Descriptor] = []
            if allPlatforms {
                chosen = candidates
            } else {
                for wanted in platforms {
                    let matches = candidates.filter { d in
                        guard let p = d.platform else { return MediaType.isIndex(d.mediaType) }
                        return wanted.matches(p)
                    }
                    // Prefer an exact match (same normalized variant) over a variant-less one.
                    if let exact = matches.first(where: { $0.platform?.normalized == wanted.normalized }) {
                        chosen.append(exact)
                    } else if let any = matches.first {
                        chosen.append(any)
                    } else {
                        throw Error.platformNotFound(label, platform: wanted, available: candidates.compactMap(\.platform))
                    }
                }
            }
            for child in chosen {
                try walk(child, names: names, label: label, chain: chain + [descriptor], chainBytes: chainBytes + [bytes],
                         platforms: platforms, allPlatforms: allPlatforms, images: &images, problems: &problems)
            }
            return
        }
        guard MediaType.isManifest(descriptor.mediaType) else {
            throw Error.unknownMediaType(descriptor.mediaType, where: "\(label) \(descriptor.digest)")
        }
        guard let manifestBytes = try readJSON(descriptor, image: label, subject: "manifest", problems: &problems) else { return }
        try Self.checkShape(manifestBytes, kind: .manifest, descriptorMediaType: descriptor.mediaType,
                            what: "\(label) manifest \(descriptor.digest)")
        let manifest = try Self.decode(ImageManifest.self, manifestBytes, what: "\(label) manifest \(descriptor.digest)")
        guard MediaType.isConfig(manifest.config.mediaType) else {
            throw Error.unknownMediaType(manifest.config.mediaType, where: "\(label) config \(manifest.config.digest)")
        }
        var layers: [ImageLayer] = []
        for (i, layer) in manifest.layers.enumerated() {
            guard let compression = MediaType.layerCompression(layer.mediaType) else {
                throw Error.unknownMediaType(layer.mediaType, where: "\(label) layer \(i) \(layer.digest)")
            }
            layers.append(ImageLayer(index: i, descriptor: layer, diffID: layer.digest, compression: compression))
        }
        guard let configBytes = try readJSON(manifest.config, image: label, subject: "config", problems: &problems) else { return }
        try Self.checkShape(configBytes, kind: .config, descriptorMediaType: nil, what: "\(label) config \(manifest.config.digest)")
        let config = try Self.decode(ImageConfig.self, configBytes, what: "\(label) config \(manifest.config.digest)")
        problems += Self.configProblems(config, layerCount: layers.count, image: label, digest: manifest.config.digest)
        for i in layers.indices {
            if i < config.rootfs.diffIDs.count { layers[i].diffID = config.rootfs.diffIDs[i] }
        }
        let platform = descriptor.platform ?? config.platform ?? Platform(os: "linux", architecture: "unknown")
        images.append(ResolvedImage(
            source: source, names: names, indexChain: chain, manifestDescriptor: descriptor, manifest: manifest,
            manifestBytes: manifestBytes, config: config, configBytes: configBytes, indexBytes: chainBytes,
            platform: platform, layers: config.rootfs.diffIDs.count == layers.count ? layers : [],
            store: store, synthesizedManifest: false))
    }

    static func configProblems(_ config: ImageConfig, layerCount: Int, image: String, digest: Digest) -> [Problem] {
        var out: [Problem] = []
        if config.rootfs.type != "layers" {
            out.append(Problem(image: image, subject: "config", digest: digest.description,
                               message: "rootfs.type must be 'layers'", expected: "layers", actual: config.rootfs.type))
        }
        if config.rootfs.diffIDs.count != layerCount {
            out.append(Problem(image: image, subject: "config", digest: digest.description,
                               message: "config lists a different number of diff_ids than the manifest has layers",
                               expected: "\(layerCount)", actual: "\(config.rootfs.diffIDs.count)"))
        }
        return out
    }

    /// Reads a JSON blob and checks its size and digest; nil (with a problem recorded) when it is missing.
    func readJSON(_ descriptor: Descriptor, image: String, subject: String, problems: inout [Problem]) throws -> [UInt8]? {
        guard let location = try store.locate(descriptor) else {
            problems.append(Problem(image: image, subject: subject, digest: descriptor.digest.description,
                                    message: "blob is missing from \(store.displayName)"))
            return nil
        }
        let bytes = try location.open().readAll(limit: Self.jsonLimit, what: location.displayName)
        if Int64(bytes.count) != descriptor.size {
            problems.append(Problem(image: image, subject: subject, digest: descriptor.digest.description,
                                    message: "size mismatch", expected: "\(descriptor.size)", actual: "\(bytes.count)"))
        }
        let actual = SHA256Hasher.hash(bytes)
        if actual != descriptor.digest {
            problems.append(Problem(image: image, subject: subject, digest: descriptor.digest.description,
                                    message: "digest mismatch", expected: descriptor.digest.description, actual: actual.description))
        }
        return bytes
    }
}
