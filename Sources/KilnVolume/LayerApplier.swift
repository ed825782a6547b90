import KilnCore
import KilnExt4
import KilnLayer

/// Applies the entries of one layer tar to an ext4 tree, with OCI whiteout semantics.
///
/// Two modes:
/// - ``Mode/flatten``: layers are applied in order onto one tree (the `rootfs` layout). `.wh.<name>` removes
///   `<name>`; `.wh..wh..opq` hides everything lower layers put in its directory, before its siblings of the
///   same layer whatever the tar order. Whiteout entries never appear in the result.
/// - ``Mode/overlay``: each layer is unpacked on its own directory, as containerd's overlayfs snapshotter stores
///   it. `.wh.<name>` becomes a character device 0/0 named `<name>`; `.wh..wh..opq` becomes the xattr
///   `trusted.overlay.opaque=y` on its directory.
///
/// Paths are resolved by the writer inside `root` the way containerd extracts layers (`..` and absolute paths
/// and symlinks stay inside), so a hostile tar cannot reach outside the tree it is applied to.
public final class LayerApplier {
    public enum Mode: Sendable {
        case flatten
        case overlay
    }

    /// Errors naming the layer entry at fault.
    public enum Error: KilnError {
        case invalidWhiteout(entry: BytePath)
        case hardLinkTargetMissing(entry: BytePath, target: BytePath)
        /// The filesystem refused the entry, or its data could not be read: the exit status is the cause's.
        case entryFailed(entry: BytePath, underlying: any Swift.Error)

        public var exitStatus: ExitStatus {
            switch self {
            case .invalidWhiteout, .hardLinkTargetMissing: return .input
            case .entryFailed(_, let underlying): return ExitStatus.of(underlying)
            }
        }

        public var description: String {
            switch self {
            case .invalidWhiteout(let e): return "tar entry '\(e)': invalid whiteout name"
            case .hardLinkTargetMissing(let e, let t):
                return "tar entry '\(e)': hard link target '\(t)' is not in this layer (containerd cannot unpack a hard link into a lower layer either)"
            case .entryFailed(let e, let u): return "tar entry '\(e)': \(u)"
            }
        }
    }

    let writer: EXT4Writer
    let root: EXT4.NodeID
    let mode: Mode
    /// Normalized paths this layer created (opaque directories keep these and remove the rest).
    private var createdInLayer = Set<BytePath>()
    /// Inodes this applier created (hard links not counted twice), the unpacked tree's root included.
    public private(set) var inodes: Int64 = 1
    /// Bytes of blocks those inodes use, as `st_blocks * 512` would count them (holes and inline data aside).
    public private(set) var usedBytes: Int64 = 4096

    public init(writer: EXT4Writer, root: EXT4.NodeID = .root, mode: Mode) {
        self.writer = writer
        self.root = root
        self.mode = mode
    }

    /// Starts the next layer: opaque markers from now on hide only what earlier layers made.
    public func startLayer() {
        createdInLayer.removeAll(keepingCapacity: true)
    }

    static let whiteoutPrefix: BytePath = ".wh."
    static let opaqueMarker: BytePath = ".wh..wh..opq"

    /// Applies one tar entry (its data is read from `content` when it is a regular file).
    public func apply(_ entry: TarEntry, content: EntryContent) throws {
        let path = entry.normalizedPath
        let name = path.lastComponent
        let parent = path.parent
        do {
            if name.hasPrefix(Self.whiteoutPrefix) {
                try applyWhiteout(name: name, parent: parent, entry: entry)
                return
            }
            try create(entry, path: path, content: content)
            createdInLayer.insert(path)
        } catch let e as Error {
            throw e
        } catch let e as EXT4Writer.Error {
            // A full filesystem is the volume's size, not this entry's fault: the bake names volume.size.
            if case .doesNotFit = e { throw e }
            throw Error.entryFailed(entry: entry.path, underlying: e)
        } catch {
            throw Error.entryFailed(entry: entry.path, underlying: error)
        }
    }

    private func applyWhiteout(name: BytePath, parent: BytePath, entry: TarEntry) throws {
        if name == Self.opaqueMarker {
            switch mode {
            case .overlay:
                // The directory may come later in the tar; create it now, its own entry updates metadata.
                try writer.makeDirectory(parent.isEmpty ? "." : parent, under: root)
                try writer.setXattr("trusted.overlay.opaque", value: Array("y".utf8), at: parent.isEmpty ? "." : parent, under: root)
            case .flatten:
                try hideLowerChildren(of: parent)
            }
            return
        }
        if name.hasPrefix(".wh..wh.") {
            // AUFS metadata (.wh..wh.plnk and the like): not content.
            return
        }
        let target = BytePath(Array(name.bytes.dropFirst(Self.whiteoutPrefix.count)))
        guard !target.isEmpty, target != ".", target != ".." else { throw Error.invalidWhiteout(entry: entry.path) }
        let targetPath = parent.appending(target)
        switch mode {
        case .overlay:
            var meta = metadata(entry)
            meta.permissions = 0
            try writer.makeSpecialFile(targetPath, kind: .characterDevice, device: EXT4.DeviceNumber(major: 0, minor: 0),
                                       metadata: meta, under: root)
            inodes += 1
        case .flatten:
            _ = try writer.remove(targetPath, under: root)
        }
    }

    /// Removes everything under `directory` that this layer did not create.
    private func hideLowerChildren(of directory: BytePath) throws {
        guard let entry = try writer.lookup(directory.isEmpty ? "." : directory, under: root), entry.kind == .directory else { return }
        for child in try writer.children(of: directory.isEmpty ? "." : directory, under: root) {
            let childPath = directory.appending(child)
            if createdInLayer.contains(childPath) {
                if let e = try writer.lookup(childPath, under: root), e.kind == .directory {
                    try hideLowerChildren(of: childPath)
                }
            } else {
                _ = try writer.remove(childPath, under: root)
            }
        }
    }

    func metadata(_ entry: TarEntry) -> EXT4.Metadata {
        func ts(_ t: TarEntry.Time) -> EXT4.Timestamp {
            EXT4.Timestamp(seconds: t.seconds, nanoseconds: UInt32(clamping: max(0, Int64(t.nanoseconds))))
        }
        let m = ts(entry.modificationTime)
        return EXT4.Metadata(
            permissions: UInt16(entry.permissions & 0o7777), uid: entry.uid, gid: entry.gid,
            accessTime: entry.accessTime.map(ts) ?? m, modificationTime: m,
            changeTime: entry.changeTime.map(ts) ?? m, creationTime: m)
    }

    private func create(_ entry: TarEntry, path: BytePath, content: EntryContent) throws {
        let meta = metadata(entry)
        if path.isEmpty {
            // The layer's root directory entry (`./`): its metadata applies to the tree root.
            if entry.kind == .directory { try writer.setMetadata(meta, at: ".", under: root) }
            return
        }
        switch entry.kind {
        case .directory:
            try writer.makeDirectory(path, metadata: meta, under: root)
        case .file:
            try writer.beginFile(path, metadata: meta, under: root)
            var written: Int64 = 0
            try content.forEachBlock { buffer, offset in
                if offset > written {
                    try writer.appendFileHole(UInt64(offset - written))
                    written = offset
                }
                try writer.appendFileData(buffer)
                written += Int64(buffer.count)
            }
            if entry.size > written { try writer.appendFileHole(UInt64(entry.size - written)) }
            try writer.finishFile()
        case .symlink:
            try writer.makeSymlink(path, target: entry.linkTarget ?? "", metadata: meta, under: root)
        case .hardlink:
            let target = (entry.linkTarget ?? "").normalized
            guard (try writer.lookup(target, under: root)) != nil else {
                throw Error.hardLinkTargetMissing(entry: entry.path, target: entry.linkTarget ?? "")
            }
            try writer.makeHardLink(path, to: target, targetRoot: root, under: root)
        case .characterDevice, .blockDevice:
            try writer.makeSpecialFile(path, kind: entry.kind == .characterDevice ? .characterDevice : .blockDevice,
                                       device: EXT4.DeviceNumber(major: entry.deviceMajor, minor: entry.deviceMinor),
                                       metadata: meta, under: root)
        case .fifo:
            try writer.makeSpecialFile(path, kind: .fifo, metadata: meta, under: root)
        case .socket:
            try writer.makeSpecialFile(path, kind: .socket, metadata: meta, under: root)
        }
        switch entry.kind {
        case .hardlink: break
        case .directory: inodes += 1; usedBytes += 4096
        case .file: inodes += 1; usedBytes += (entry.size + 4095) / 4096 * 4096
        case .symlink: inodes += 1; usedBytes += (entry.linkTarget?.count ?? 0) >= 60 ? 4096 : 0
        default: inodes += 1
        }
        if entry.kind != .hardlink {
            for (name, value) in entry.xattrs {
                try writer.setXattr(name, value: value, at: path, under: root)
            }
        }
    }
}
