import ArgumentParser
import Foundation
import KilnContainerd
import KilnDigest
import KilnDisk
import KilnVolume
import KilnManifest

#if canImport(Glibc)
import Glibc
#endif

/// `kiln inspect manifest.json` and `kiln inspect data.img`.
struct InspectVolume {
    var input: VolumeInput
    var blocks: Bool
    var files: Bool
    var report: ReportOptions

    func run() throws {
        switch input {
        case .manifest(let path): try inspectManifest(path)
        case .image(let path): try inspectImage(path)
        }
    }

    /// A sidecar listed by `--blocks`, with a warning when it is not the one the manifest records: its digests
    /// are shown as they are, but they are not the manifest's word.
    static func sidecar(_ path: String, recorded: Digest) throws -> BlockDigestFile {
        let loaded = try BlockDigestFile.load(path: path)
        if loaded.digest != recorded {
            Console.warning("\(path) has sha256 \(loaded.digest); the manifest records \(recorded): these are not the digests the manifest vouches for")
        }
        return loaded.file
    }

    func inspectManifest(_ path: String) throws {
        let manifest = try SnapshotManifest.load(path: path)
        let digests = blocks ? try Self.sidecar(manifest.sidecarPath(manifestPath: path), recorded: manifest.blockDigests.digest).entries : nil
        if report.json {
            try printJSON(ManifestInspection(path: path, manifest: manifest, blocks: digests))
            return
        }
        printManifest(manifest, path: path)
        if let digests { printBlocks(digests, blockSize: manifest.blocks.size) }
        if blocks, let b = manifest.base {
            let changes = try Self.sidecar(URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(b.changes.file).path,
                                           recorded: b.changes.digest)
            printBlocks(changes.entries, blockSize: manifest.blocks.size, title: "blocks changed from the base (index, byte offset, sha256 now)")
        }
        if files { printFiles(manifest.files) }
    }

    func inspectImage(_ path: String) throws {
        let probe = try VolumeProbe(path: path)
        var st = stat()
        let allocated: UInt64? = stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : nil
        let besidePath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(SnapshotManifest.fileName).path
        var manifest: SnapshotManifest? = nil
        var manifestProblem: String? = nil
        if FileManager.default.fileExists(atPath: besidePath) {
            do {
                let m = try SnapshotManifest.load(path: besidePath)
                if m.volume.file == URL(fileURLWithPath: path).lastPathComponent {
                    manifest = m
                } else {
                    manifestProblem = "\(besidePath) describes '\(m.volume.file)', not this image"
                }
            } catch {
                manifestProblem = "\(error)"
            }
        }
        let digests = blocks ? try manifest.map { try Self.sidecar($0.sidecarPath(manifestPath: besidePath), recorded: $0.blockDigests.digest).entries } : nil
        // What containerd will see: read straight from the filesystem's databases, no mount.
        var containerd: ContainerdInventory? = nil
        var containerdProblem: String? = nil
        if probe.filesystem != nil {
            do { containerd = try VolumeReader(path: path).containerd() } catch { containerdProblem = "\(error)" }
        }
        if report.json {
            try printJSON(ImageInspection(
                image: path, size: probe.size, allocatedBytes: allocated, probe: probe,
                manifestPath: manifest == nil ? nil : besidePath,
                manifest: manifest.map { ManifestInspection(path: besidePath, manifest: $0, blocks: digests) },
                manifestProblem: manifestProblem, containerd: containerd, containerdProblem: containerdProblem))
            return
        }
        defer {
            if let containerd { printContainerd(containerd) }
            if let containerdProblem { print("WARNING: cannot read containerd's databases: \(containerdProblem)") }
        }
        print("image       \(path): \(formatBytes(Int64(clamping: probe.size)))\(allocated.map { ", \(formatBytes(Int64(clamping: $0))) allocated" } ?? "")")
        if let table = probe.partitionTable {
            print("table       \(table), \(probe.partitionCount) partition\(probe.partitionCount == 1 ? "" : "s")\(probe.partition?.diskGUID.map { ", disk \($0)" } ?? "")")
        }
        if let p = probe.partition { printPartition(ManifestPartition(p)) }
        if let fs = probe.filesystem { printFilesystem(ManifestFilesystem(fs)) }
        if probe.partition == nil && probe.filesystem == nil { print("contents    no GPT and no ext4 superblock found") }
        if let problem = manifestProblem { print("WARNING: \(problem)") }
        if let problem = probe.partitionTableProblem { print("WARNING: partition table: \(problem)") }
        guard let manifest else {
            if manifestProblem == nil { print("manifest    none beside the image") }
            return
        }
        print("")
        printManifest(manifest, path: besidePath)
        if let digests { printBlocks(digests, blockSize: manifest.blocks.size) }
        if files { printFiles(manifest.files) }
    }

    func printContainerd(_ c: ContainerdInventory) {
        print("")
        let namespaces = Set(c.images.map(\.namespace) + c.snapshots.map(\.namespace)).sorted()
        print("containerd  /\(KilnVolume.Bake.containerdRoot), meta.db version \(c.version.map(String.init) ?? "?"), namespace\(namespaces.count == 1 ? "" : "s") \(namespaces.joined(separator: ", "))")
        print("  images (\(c.images.count) references)")
        for i in c.images.sorted(by: { $0.name < $1.name }) {
            let kind = i.mediaType.contains("index") || i.mediaType.contains("list") ? "index" : "manifest"
            let managed = i.labels["io.cri-containerd.image"] == "managed" ? ", CRI-managed" : ""
            print("    \(i.name)")
            print("        -> \(i.digest) (\(kind), \(i.size) B\(managed))")
        }
        let bytes = c.blobs.reduce(Int64(0)) { $0 + $1.size }
        let layerBlobs = c.blobs.filter { $0.labels["containerd.io/uncompressed"] != nil }.count
        print("  content   \(c.blobs.count) blobs (\(layerBlobs) layer blobs), \(formatBytes(bytes))")
        print("  snapshots (\(c.snapshots.count), overlayfs)")
        for s in c.snapshots.sorted(by: { ($0.id ?? 0) < ($1.id ?? 0) }) {
            var line = "    \(s.id.map { "[\($0)]" } ?? "[?]") \(s.key) \(s.kind ?? "?")"
            if let inodes = s.inodes, let size = s.size { line += ", \(inodes) inodes, \(formatBytes(size))" }
            print(line)
            if let p = s.parent { print("        parent \(p)") }
        }
    }

    func printPartition(_ p: ManifestPartition) {
        print("partition   \(p.number): start \(p.start) (\(formatBytes(Int64(clamping: p.start)))), size \(p.size) (\(formatBytes(Int64(clamping: p.size)))), name '\(p.name)'")
        print("            type \(p.typeGUID)\(p.typeGUID == GPT.bottlerocketDataType.description ? " (Bottlerocket data)" : ""), unique \(p.uniqueGUID)")
    }

    func printFilesystem(_ fs: ManifestFilesystem) {
        print("filesystem  \(fs.type) at byte \(fs.offset), uuid \(fs.uuid)\(fs.label.isEmpty ? "" : ", label '\(fs.label)'")")
        print("            \(fs.blockCount) blocks of \(fs.blockSize) B (\(fs.usedBlocks) used), \(fs.inodeCount) inodes\(fs.usedInodes.map { " (\($0) used)" } ?? "")")
    }

    func printManifest(_ m: SnapshotManifest, path: String) {
        let o = m.overview
        print("manifest    \(path) (schema \(m.schemaVersion), kiln \(m.kiln.version))")
        print("recipe      \(m.recipe.name) \(m.recipe.digest.map { "\($0)" } ?? "(no recipe file)")")
        print("created     \(m.createdAt)")
        print("volume      \(m.volume.file): \(formatBytes(Int64(clamping: m.volume.size))), layout \(m.volume.layout)")
        print("            sha256 \(m.volume.sha256?.description ?? "not recorded (bake with --file-digest to record it)")")
        if let p = m.volume.partition { printPartition(p) }
        if let fs = m.volume.filesystem { printFilesystem(fs) }
        print("blocks      \(m.blocks.count) of \(m.blocks.size / 1024) KiB, \(m.blocks.written) written (\(formatBytes(Int64(clamping: m.blocks.writtenBytes))))")
        print("checksum    \(m.blocks.checksum) (\(m.blocks.checksumAlgorithm), \(m.blocks.aggregationMethod))")
        print("sidecar     \(m.blockDigests.file) (\(formatBytes(Int64(clamping: m.blockDigests.size))), \(m.blockDigests.digest))")
        if let p = m.placement {
            print("layout      \(p.file) (\(formatBytes(Int64(clamping: p.size))), \(p.digest)): where every inode is, for a later bake --base")
        }
        if let b = m.base {
            print("base        manifest \(b.manifest), recipe \(b.recipe.name), created \(b.createdAt)")
            print("            \(b.changedBlocks) blocks changed (\(formatBytes(Int64(clamping: b.changedBytes)))), \(b.unchangedBlocks) written blocks unchanged, \(b.keptInodes) inodes kept in place")
            print("            changes \(b.changes.file) (\(b.changes.digest))")
            let parents = (b.snapshots ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            print("            parent snapshots \(parents.isEmpty ? "none recorded (upload the base, or give kiln upload --parent)" : parents.joined(separator: ", "))")
        }
        print("snapshot    \(m.snapshotId ?? "not uploaded")")
        print("files       \(o.totalFiles) (\(o.listedFiles) listed one by one), \(m.files.layers.count) layers, \(m.files.regions.count) metadata regions")
        print("images      \(o.images), \(o.layers) distinct layers, \(formatBytes(o.layerBytes)) stored, \(formatBytes(o.uncompressedBytes)) uncompressed, \(o.entries) entries")
        for image in m.images {
            print("")
            print("  \(image.names.isEmpty ? "(untagged)" : image.names.joined(separator: ", "))  \(image.platform)")
            for d in image.indexes { print("    index     \(d.digest) (\(d.size) B)") }
            print("    manifest  \(image.manifest.digest) (\(image.manifest.size) B)")
            print("    config    \(image.config.digest) (\(image.config.size) B)")
            for (i, l) in image.layers.enumerated() {
                let kind = l.mediaType.split(separator: ".").last.map(String.init) ?? l.mediaType
                print("    [\(i)] \(kind)  \(formatBytes(l.size)) -> \(formatBytes(l.uncompressedSize)), \(l.entries) entries\(l.snapshotId.map { ", snapshot \($0)" } ?? "")")
                print("        digest  \(l.digest)")
                print("        diffID  \(l.diffID)")
                print("        chainID \(l.chainID)")
            }
        }
    }

    func printBlocks(_ entries: [BlockDigest], blockSize: Int, title: String = "written blocks (index, byte offset, sha256)") {
        print("")
        print("\(title):")
        // Printed in batches: a 200 GB volume has hundreds of thousands of lines.
        var out = ""
        out.reserveCapacity(1 << 20)
        for e in entries {
            let (offset, overflow) = e.index.multipliedReportingOverflow(by: UInt64(clamping: blockSize))
            out += "\(e.index)\t\(overflow ? "?" : String(offset))\t\(e.sha256.hex)\n"
            if out.utf8.count > 1 << 20 {
                print(out, terminator: "")
                out.removeAll(keepingCapacity: true)
            }
        }
        print(out, terminator: "")
    }

    func printFiles(_ map: FileMap) {
        print("")
        print("files (\(map.entries.count) of \(map.totalFiles) listed; blocks in 512 KiB units):")
        for e in map.entries {
            let layer = e.layer.flatMap { map.layers.indices.contains($0) ? map.layers[$0].name : nil }
            print("  \(e.path)  \(formatBytes(Int64(clamping: e.bytes)))  blocks \(e.blocks)\(layer.map { "  (\($0))" } ?? "")")
        }
        if !map.unlistedBlocks.isEmpty { print("  (smaller files)  blocks \(map.unlistedBlocks)") }
        print("layers:")
        for l in map.layers { print("  \(l.name)  blocks \(l.blocks)") }
        print("metadata:")
        for r in map.regions { print("  \(r.name)  blocks \(r.blocks)") }
    }
}

/// `kiln inspect manifest.json --json`.
struct ManifestInspection: Encodable {
    struct Block: Encodable {
        var index: UInt64
        var sha256: String
    }
    var path: String
    var overview: SnapshotManifest.Overview
    var manifest: SnapshotManifest
    var blocks: [Block]?

    init(path: String, manifest: SnapshotManifest, blocks: [BlockDigest]?) {
        self.path = path
        self.overview = manifest.overview
        self.manifest = manifest
        self.blocks = blocks?.map { Block(index: $0.index, sha256: $0.sha256.hex) }
    }
}

/// `kiln inspect data.img --json`.
struct ImageInspection: Encodable {
    var image: String
    var size: UInt64
    var allocatedBytes: UInt64?
    var probe: VolumeProbe
    var manifestPath: String?
    var manifest: ManifestInspection?
    var manifestProblem: String?
    var containerd: ContainerdInventory?
    var containerdProblem: String?
}
