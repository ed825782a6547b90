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
        /// The entry breaks a rule of layer semantics that containerd also refuses, or a budget.
        case refused(entry: BytePath, Rule)
        /// The filesystem refused the entry, or its data could not be read: the exit status is the cause's.
        case entryFailed(entry: BytePath, underlying: any Swift.Error)

        public var exitStatus: ExitStatus {
            switch self {
            case .invalidWhiteout, .hardLinkTargetMissing, .refused: return .input
            case .entryFailed(_, let underlying): return ExitStatus.of(underlying)
            }
        }

        public var description: String {
            switch self {
            case .invalidWhiteout(let e): return "tar entry '\(e)': invalid whiteout name ('.wh.' must be followed by a name other than '.' and '..')"
            case .hardLinkTargetMissing(let e, let t):
                return "tar entry '\(e)': hard link target '\(t)' is not in this layer (containerd cannot unpack a hard link into a lower layer either)"
            case .refused(let e, let rule): return "tar entry '\(e)': \(rule)"
            case .entryFailed(let e, let u): return "tar entry '\(e)': \(u)"
            }
        }
    }

    /// Why an entry is refused.
    public enum Rule: Sendable, CustomStringConvertible {
        case nonDirectoryRoot(TarEntry.Kind)
        case hardLinkToItself
        case hardLinkToDirectory(BytePath)
        case hardLinkToWhiteout(BytePath)
        case whiteoutInParent
        case whiteoutOfSameLayer(BytePath)
        case pathTooLong(Int, budget: Int)
        case tooManyEntries(layer: Bool, budget: Int)
        case tooManyXattrs(Int, budget: Int)

        public var description: String {
            switch self {
            case .nonDirectoryRoot(let kind): return "a \(kind) cannot replace the root directory"
            case .hardLinkToItself: return "hard link to itself"
            case .hardLinkToDirectory(let t): return "hard link target '\(t)' is a directory"
            case .hardLinkToWhiteout(let t): return "hard link target '\(t)' is a whiteout"
            case .whiteoutInParent: return "a whiteout ('.wh.' name) cannot be a parent directory"
            case .whiteoutOfSameLayer(let t):
                return "whiteout of '\(t)', which this layer itself created (whiteouts apply to lower layers only)"
            case .pathTooLong(let n, let budget): return "path or link target is \(n) bytes; budget pathBytes is \(budget)"
            case .tooManyEntries(let layer, let budget):
                return "more than \(budget) entries; budget \(layer ? "entriesPerLayer" : "entriesPerBake") is \(budget)"
            case .tooManyXattrs(let n, let budget): return "\(n) extended attributes; budget xattrsPerEntry is \(budget)"
            }
        }
    }

    let writer: EXT4Writer
    let root: EXT4.NodeID
    let mode: Mode
    /// Nodes this layer created or listed (opaque directories keep these and remove the rest). Inode numbers,
    /// not paths: a layer of a million entries would otherwise hold a million paths here.
    private var createdInLayer = Set<UInt32>()
    /// Names this layer hard-linked to a node it did not create: they are this layer's too.
    private var linkedInLayer = Set<BytePath>()
    /// Normalized paths this layer whited out (overlay mode: a hard link to one would link the whiteout device).
    private var whitedOutInLayer = Set<BytePath>()
    let budget: LayerBudget
    /// The roots of the lower snapshots, nearest first (overlay mode): where containerd looks for the mode and
    /// owner of a parent directory that a layer uses without listing it.
    let lowerRoots: [EXT4.NodeID]
    /// The last parent directory known to exist, so that consecutive entries of one directory look once.
    private var lastParent: BytePath? = nil
    /// Entries of the current layer, and of every layer this applier applied.
    private var layerEntries = 0
    public private(set) var totalEntries = 0
    /// What is sound but worth a word, in entry order (AUFS metadata skipped, attributes dropped).
    public private(set) var warnings: [String] = []
    /// Inodes this applier made and that are still there (hard links not counted twice), the unpacked tree's
    /// root included.
    public var inodes: Int64 { madeInodes - (writer.freedInodes - freedInodesBefore) }
    /// Bytes of blocks those inodes use, as `st_blocks * 512` would count them with every block written, as
    /// containerd writes them (holes and inline data aside).
    public var usedBytes: Int64 { madeBytes - Int64(writer.freedBytes - freedBytesBefore) }
    private var madeInodes: Int64 = 1
    private var madeBytes: Int64 = 4096
    private let freedInodesBefore: Int64
    private let freedBytesBefore: UInt64

    public init(writer: EXT4Writer, root: EXT4.NodeID = .root, mode: Mode, budget: LayerBudget = .standard,
                lowerRoots: [EXT4.NodeID] = [], entriesBefore: Int = 0) {
        self.writer = writer
        self.root = root
        self.mode = mode
        self.budget = budget
        self.lowerRoots = lowerRoots
        self.freedInodesBefore = writer.freedInodes
        self.freedBytesBefore = writer.freedBytes
        self.totalEntries = entriesBefore
    }

    /// Starts the next layer: opaque markers from now on hide only what earlier layers made.
    public func startLayer() {
        createdInLayer.removeAll(keepingCapacity: true)
        linkedInLayer.removeAll(keepingCapacity: true)
        whitedOutInLayer.removeAll(keepingCapacity: true)
        layerEntries = 0
        lastParent = nil
    }

    /// Makes the parent directories of `path` that are missing, as containerd's `mkparent` does: with the mode and
    /// owner of the same directory in the nearest lower snapshot that has one, else 0755 root. (Their times are
    /// the bake's: containerd's are the time of the pull.) Stops at a symlink: the writer resolves it.
    private func makeParents(of path: BytePath) throws {
        let parent = path.parent
        guard !parent.isEmpty, parent != lastParent else { return }
        // Most entries' parents exist: one walk settles it.
        if let existing = try writer.lookup(parent, under: root), existing.kind == .directory {
            lastParent = parent
            return
        }
        // Otherwise down one name at a time, each looked up or made in the directory before it (the way there
        // holds only directories, so it resolves as from the root): linear in the depth, not quadratic.
        var directory = root
        var prefix = BytePath([])
        var depth = 0
        for component in parent.components {
            let name = BytePath(Array(component))
            prefix = prefix.appending(name)
            depth += 1
            if let existing = try writer.lookup(name, under: directory) {
                if existing.kind == .directory {
                    directory = existing.node
                    continue
                }
                return
            }
            let limit = writer.options.maximumDepth
            guard depth <= limit else { throw EXT4Writer.Error.tooDeep(path: prefix, limit: limit) }
            var metadata = EXT4.Metadata(permissions: 0o755, time: writer.options.defaultTime)
            for lower in lowerRoots {
                guard let below = try writer.lookup(prefix, under: lower) else { continue }
                if below.kind == .directory {
                    metadata.permissions = below.metadata.permissions
                    metadata.uid = below.metadata.uid
                    metadata.gid = below.metadata.gid
                }
                break
            }
            directory = try writer.makeDirectory(name, metadata: metadata, under: directory)
            madeInodes += 1
            madeBytes += 4096
        }
        lastParent = parent
    }

    /// The warnings gathered since the last call.
    public func takeWarnings() -> [String] {
        defer { warnings.removeAll() }
        return warnings
    }

    /// Extended attributes a layer may not carry onto the volume: `trusted.overlay.*` would forge overlayfs
    /// semantics (opaque directories, redirects) in the snapshot, and `security.selinux` labels belong to the
    /// node's policy, not to the image. kiln drops both (and says so) rather than write what a layer cannot be
    /// trusted to set.
    static func isDropped(xattr name: String) -> Bool {
        name.hasPrefix("trusted.overlay.") || name == "security.selinux"
    }

    /// The checks every entry passes before it touches the tree.
    private func admit(_ entry: TarEntry, path: BytePath) throws {
        layerEntries += 1
        totalEntries += 1
        if layerEntries > budget.entriesPerLayer {
            throw Error.refused(entry: entry.path, .tooManyEntries(layer: true, budget: budget.entriesPerLayer))
        }
        if totalEntries > budget.entriesPerBake {
            throw Error.refused(entry: entry.path, .tooManyEntries(layer: false, budget: budget.entriesPerBake))
        }
        let longest = max(entry.path.count, entry.linkTarget?.count ?? 0)
        if longest > budget.pathBytes { throw Error.refused(entry: entry.path, .pathTooLong(longest, budget: budget.pathBytes)) }
        if entry.xattrs.count > budget.xattrsPerEntry {
            throw Error.refused(entry: entry.path, .tooManyXattrs(entry.xattrs.count, budget: budget.xattrsPerEntry))
        }
        // `.wh.x/y`: a whiteout is a marker, never a directory (containerd refuses it).
        for component in path.components.dropLast() where component.starts(with: Self.whiteoutPrefix.bytes) {
            throw Error.refused(entry: entry.path, .whiteoutInParent)
        }
    }

    /// AUFS metadata (`.wh..wh.plnk/...`, `.wh..wh.aufs`): not content; the opaque marker aside.
    static func isAUFSMetadata(_ path: BytePath) -> Bool {
        let components = path.components
        for (i, c) in components.enumerated() where c.starts(with: Self.aufsPrefix.bytes) {
            if i == components.count - 1 && c.elementsEqual(Self.opaqueMarker.bytes) { return false }
            return true
        }
        return false
    }

    static let whiteoutPrefix: BytePath = ".wh."
    static let opaqueMarker: BytePath = ".wh..wh..opq"
    static let aufsPrefix: BytePath = ".wh..wh."

    /// Applies one tar entry (its data is read from `content` when it is a regular file).
    public func apply(_ entry: TarEntry, content: EntryContent) throws {
        let path = entry.path.cleaned
        let name = path.lastComponent
        let parent = path.parent
        do {
            if Self.isAUFSMetadata(path) {
                warnings.append("tar entry '\(entry.path)': AUFS metadata skipped")
                return
            }
            try admit(entry, path: path)
            try makeParents(of: path)
            if name.hasPrefix(Self.whiteoutPrefix) {
                try applyWhiteout(name: name, parent: parent, entry: entry)
                return
            }
            if let node = try create(entry, path: path, content: content) {
                if entry.kind == .hardlink && !createdInLayer.contains(node.inode) {
                    linkedInLayer.insert(path)
                } else {
                    createdInLayer.insert(node.inode)
                }
            }
            // What this entry replaced may have been the directory the next entry expects.
            if let p = lastParent, p.hasPrefix(path) { lastParent = nil }
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
        lastParent = nil
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
        let target = BytePath(Array(name.bytes.dropFirst(Self.whiteoutPrefix.count)))
        guard !target.isEmpty, target != ".", target != ".." else { throw Error.invalidWhiteout(entry: entry.path) }
        let targetPath = parent.appending(target)
        if try madeInLayer(targetPath) { throw Error.refused(entry: entry.path, .whiteoutOfSameLayer(targetPath)) }
        whitedOutInLayer.insert(targetPath)
        switch mode {
        case .overlay:
            var meta = metadata(entry)
            meta.permissions = 0
            try writer.makeSpecialFile(targetPath, kind: .characterDevice, device: EXT4.DeviceNumber(major: 0, minor: 0),
                                       metadata: meta, under: root)
            madeInodes += 1
        case .flatten:
            _ = try writer.remove(targetPath, under: root)
        }
    }

    /// Removes everything under `directory` that this layer did not create.
    private func hideLowerChildren(of directory: BytePath) throws {
        guard let entry = try writer.lookup(directory.isEmpty ? "." : directory, under: root), entry.kind == .directory else { return }
        for child in try writer.children(of: directory.isEmpty ? "." : directory, under: root) {
            let childPath = directory.appending(child)
            if try madeInLayer(childPath) {
                if let e = try writer.lookup(childPath, under: root), e.kind == .directory {
                    try hideLowerChildren(of: childPath)
                }
            } else {
                _ = try writer.remove(childPath, under: root)
            }
        }
    }

    /// Whether what `path` names now was made (or listed) by this layer.
    private func madeInLayer(_ path: BytePath) throws -> Bool {
        if linkedInLayer.contains(path) { return true }
        guard !createdInLayer.isEmpty, let entry = try writer.lookup(path, under: root) else { return false }
        return createdInLayer.contains(entry.node.inode)
    }

    /// The entry's owner, mode and times, as containerd sets them: a time before 1970 or after 2262 (what a
    /// 64-bit nanosecond count holds) becomes the epoch, and the access time is the later of atime and mtime.
    func metadata(_ entry: TarEntry) -> EXT4.Metadata {
        func bounded(_ t: TarEntry.Time) -> TarEntry.Time {
            // 2^63 - 1 nanoseconds: 9223372036 s and 854775807 ns.
            let tooLate = t.seconds > 9_223_372_036 || (t.seconds == 9_223_372_036 && t.nanoseconds > 854_775_807)
            return t.seconds < 0 || tooLate ? TarEntry.Time(seconds: 0) : t
        }
        func ts(_ t: TarEntry.Time) -> EXT4.Timestamp {
            EXT4.Timestamp(seconds: t.seconds, nanoseconds: UInt32(clamping: max(0, Int64(t.nanoseconds))))
        }
        let mtime = entry.modificationTime
        var atime = entry.accessTime ?? mtime
        if (atime.seconds, atime.nanoseconds) < (mtime.seconds, mtime.nanoseconds) { atime = mtime }
        let m = ts(bounded(mtime))
        return EXT4.Metadata(
            permissions: UInt16(entry.permissions & 0o7777), uid: entry.uid, gid: entry.gid,
            accessTime: ts(bounded(atime)), modificationTime: m,
            changeTime: entry.changeTime.map { ts(bounded($0)) } ?? m, creationTime: m)
    }

    /// Creates what the entry describes; returns the node now at `path` (nil for an entry naming the root).
    private func create(_ entry: TarEntry, path: BytePath, content: EntryContent) throws -> EXT4.NodeID? {
        let meta = metadata(entry)
        if path.isEmpty {
            // Entries naming the root itself (`./`, `/.`, `a/..`): containerd ignores them as directories, even
            // their mode, and refuses anything else there.
            guard entry.kind == .directory else { throw Error.refused(entry: entry.path, .nonDirectoryRoot(entry.kind)) }
            return nil
        }
        let node: EXT4.NodeID
        switch entry.kind {
        case .directory:
            // A directory listed again, or made earlier as a parent, merges: it is not a new inode.
            if try writer.lookup(path, under: root)?.kind == .directory {
                let merged = try writer.makeDirectory(path, metadata: meta, under: root)
                try applyXattrs(entry, path: path)
                return merged
            }
            node = try writer.makeDirectory(path, metadata: meta, under: root)
        case .file:
            node = try writer.beginFile(path, metadata: meta, under: root)
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
            node = try writer.makeSymlink(path, target: entry.linkTarget ?? "", metadata: meta, under: root)
        case .hardlink:
            let target = (entry.linkTarget ?? "").cleaned
            if target == path { throw Error.refused(entry: entry.path, .hardLinkToItself) }
            if whitedOutInLayer.contains(target) || target.lastComponent.hasPrefix(Self.whiteoutPrefix) {
                throw Error.refused(entry: entry.path, .hardLinkToWhiteout(target))
            }
            guard let existing = try writer.lookup(target, under: root) else {
                throw Error.hardLinkTargetMissing(entry: entry.path, target: entry.linkTarget ?? "")
            }
            if existing.kind == .directory { throw Error.refused(entry: entry.path, .hardLinkToDirectory(target)) }
            node = try writer.makeHardLink(path, to: target, targetRoot: root, under: root)
            // The link header's own mode, owner and times apply to the shared inode, as containerd's chown,
            // chmod and chtimes on the new name do.
            // A symlink's mode cannot be changed (there is no lchmod): only its owner and times follow.
            var linkMeta = meta
            if existing.kind == .symlink { linkMeta.permissions = existing.metadata.permissions }
            try writer.setMetadata(linkMeta, at: path, under: root)
        case .characterDevice, .blockDevice:
            node = try writer.makeSpecialFile(path, kind: entry.kind == .characterDevice ? .characterDevice : .blockDevice,
                                       device: EXT4.DeviceNumber(major: entry.deviceMajor, minor: entry.deviceMinor),
                                       metadata: meta, under: root)
        case .fifo:
            node = try writer.makeSpecialFile(path, kind: .fifo, metadata: meta, under: root)
        case .socket:
            node = try writer.makeSpecialFile(path, kind: .socket, metadata: meta, under: root)
        }
        switch entry.kind {
        case .hardlink: break
        case .directory: madeInodes += 1; madeBytes += 4096
        case .file: madeInodes += 1; madeBytes += (entry.size + 4095) / 4096 * 4096
        case .symlink: madeInodes += 1; madeBytes += (entry.linkTarget?.count ?? 0) >= 60 ? 4096 : 0
        default: madeInodes += 1
        }
        if entry.kind != .hardlink { try applyXattrs(entry, path: path) }
        return node
    }

    private func applyXattrs(_ entry: TarEntry, path: BytePath) throws {
        for (name, value) in entry.xattrs {
            if Self.isDropped(xattr: name) {
                warnings.append("tar entry '\(entry.path)': extended attribute \(name) dropped")
                continue
            }
            try writer.setXattr(name, value: value, at: path, under: root)
        }
    }
}
