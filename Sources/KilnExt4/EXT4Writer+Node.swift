/// The writer's in-memory inode records.
extension EXT4Writer {
    /// One node of the in-memory tree (an inode), in 80 bytes.
    ///
    /// What every file has is stored inline: kind, permissions, owner, modification time, size, its first extent.
    /// What few files have (more extents, an extent tree, a symlink target, a device number, attributes, other
    /// times than the modification time) and what only directories have (their entries) lives in ``Extras``,
    /// shared copy-on-write, so a layer of a million small files costs a million small records and no
    /// allocation per file beyond its name.
    struct Node {
        private var kindCode: UInt8
        var live: Bool
        private var permissions: UInt16
        private var uid: UInt32
        private var gid: UInt32
        private var modificationNanoseconds: UInt32
        private var modificationSeconds: Int64
        /// The parent of a directory.
        var parent: UInt32 = 0
        private var linkCount: UInt32 = 1
        var size: UInt64 = 0
        var dataBlocks: UInt64 = 0
        /// The first extent; a length of zero means none.
        private var firstExtent = EXT4.Extent(logical: 0, physical: 0, length: 0)
        private var subdirectoryCount: UInt32 = 0
        private var extras: Extras?

        /// What few nodes need. A class so that a node without any costs one pointer; copied before it is
        /// changed whenever another node shares it.
        final class Extras {
            var moreExtents: [EXT4.Extent] = []
            /// Extent tree blocks written when the file was finished (files with more than four extents).
            var treeBlocks: [UInt64] = []
            var treeRoot: [UInt8]? = nil
            var symlinkTarget: [UInt8]? = nil
            var device: EXT4.DeviceNumber? = nil
            var xattrs: [EXT4.Xattr] = []
            var children: [[UInt8]: UInt32]? = nil
            /// Access, change and creation times, when any differs from the modification time.
            var otherTimes: (EXT4.Timestamp, EXT4.Timestamp, EXT4.Timestamp)? = nil

            init() {}

            func copy() -> Extras {
                let c = Extras()
                c.moreExtents = moreExtents
                c.treeBlocks = treeBlocks
                c.treeRoot = treeRoot
                c.symlinkTarget = symlinkTarget
                c.device = device
                c.xattrs = xattrs
                c.children = children
                c.otherTimes = otherTimes
                return c
            }
        }

        init(kind: EXT4.FileKind, metadata: EXT4.Metadata, live: Bool = true, parent: UInt32 = 0,
             children: [[UInt8]: UInt32]? = nil) {
            kindCode = Self.code(of: kind)
            self.live = live
            permissions = metadata.permissions
            uid = metadata.uid
            gid = metadata.gid
            modificationSeconds = metadata.modificationTime.seconds
            modificationNanoseconds = metadata.modificationTime.nanoseconds
            self.parent = parent
            self.metadata = metadata
            if let children { self.children = children }
        }

        private static let kinds: [EXT4.FileKind] = [.regular, .directory, .symlink, .characterDevice, .blockDevice, .fifo, .socket]

        private static func code(of kind: EXT4.FileKind) -> UInt8 {
            UInt8(truncatingIfNeeded: kinds.firstIndex(of: kind) ?? 0)
        }

        /// Extras this node alone holds, made when it has none.
        private mutating func uniqueExtras() -> Extras {
            if let e = extras {
                if isKnownUniquelyReferenced(&extras) { return e }
                let c = e.copy()
                extras = c
                return c
            }
            let e = Extras()
            extras = e
            return e
        }

        var kind: EXT4.FileKind {
            get { Self.kinds[Int(kindCode)] }
            set { kindCode = Self.code(of: newValue) }
        }

        var metadata: EXT4.Metadata {
            get {
                let m = EXT4.Timestamp(seconds: modificationSeconds, nanoseconds: modificationNanoseconds)
                let (a, c, cr) = extras?.otherTimes ?? (m, m, m)
                return EXT4.Metadata(permissions: permissions, uid: uid, gid: gid, accessTime: a, modificationTime: m,
                                     changeTime: c, creationTime: cr)
            }
            set {
                permissions = newValue.permissions
                uid = newValue.uid
                gid = newValue.gid
                let m = newValue.modificationTime
                modificationSeconds = m.seconds
                modificationNanoseconds = m.nanoseconds
                if newValue.accessTime == m && newValue.changeTime == m && newValue.creationTime == m {
                    if extras?.otherTimes != nil { uniqueExtras().otherTimes = nil }
                } else {
                    uniqueExtras().otherTimes = (newValue.accessTime, newValue.changeTime, newValue.creationTime)
                }
            }
        }

        /// Directory entries that refer to this node (non-directories).
        var links: Int {
            get { Int(linkCount) }
            set { linkCount = UInt32(clamping: newValue) }
        }

        var subdirectories: Int {
            get { Int(subdirectoryCount) }
            set { subdirectoryCount = UInt32(clamping: newValue) }
        }

        var extentCount: Int { firstExtent.length == 0 ? 0 : 1 + (extras?.moreExtents.count ?? 0) }

        var extents: [EXT4.Extent] {
            get {
                guard firstExtent.length > 0 else { return [] }
                guard let more = extras?.moreExtents, !more.isEmpty else { return [firstExtent] }
                return [firstExtent] + more
            }
            set {
                firstExtent = newValue.first ?? EXT4.Extent(logical: 0, physical: 0, length: 0)
                if newValue.count > 1 {
                    uniqueExtras().moreExtents = Array(newValue.dropFirst())
                } else if extras?.moreExtents.isEmpty == false {
                    uniqueExtras().moreExtents = []
                }
            }
        }

        /// Adds one block at `logical`, stored at `physical`: the last extent grows when the block continues it
        /// both logically and physically.
        mutating func appendBlock(logical: UInt32, physical: UInt64) {
            guard firstExtent.length > 0 else {
                firstExtent = EXT4.Extent(logical: logical, physical: physical, length: 1)
                return
            }
            func continues(_ e: EXT4.Extent) -> Bool {
                e.logical + e.length == logical && e.physical + UInt64(e.length) == physical && e.length < EXT4.maximumExtentLength
            }
            if let e = extras, let last = e.moreExtents.last {
                if continues(last) {
                    let box = uniqueExtras()
                    box.moreExtents[box.moreExtents.count - 1].length += 1
                } else {
                    uniqueExtras().moreExtents.append(EXT4.Extent(logical: logical, physical: physical, length: 1))
                }
            } else if continues(firstExtent) {
                firstExtent.length += 1
            } else {
                uniqueExtras().moreExtents.append(EXT4.Extent(logical: logical, physical: physical, length: 1))
            }
        }

        /// Calls `body` with each extent, without building an array.
        func forEachExtent(_ body: (EXT4.Extent) throws -> Void) rethrows {
            guard firstExtent.length > 0 else { return }
            try body(firstExtent)
            for e in extras?.moreExtents ?? [] { try body(e) }
        }

        var treeBlocks: [UInt64] {
            get { extras?.treeBlocks ?? [] }
            set { if !(newValue.isEmpty && extras == nil) { uniqueExtras().treeBlocks = newValue } }
        }

        var treeRoot: [UInt8]? {
            get { extras?.treeRoot }
            set { if !(newValue == nil && extras == nil) { uniqueExtras().treeRoot = newValue } }
        }

        var symlinkTarget: [UInt8]? {
            get { extras?.symlinkTarget }
            set { if !(newValue == nil && extras == nil) { uniqueExtras().symlinkTarget = newValue } }
        }

        var device: EXT4.DeviceNumber? {
            get { extras?.device }
            set { if !(newValue == nil && extras == nil) { uniqueExtras().device = newValue } }
        }

        var xattrs: [EXT4.Xattr] {
            get { extras?.xattrs ?? [] }
            set { if !(newValue.isEmpty && extras == nil) { uniqueExtras().xattrs = newValue } }
        }

        /// A directory's entries, by name.
        var children: [[UInt8]: UInt32]? {
            get { extras?.children }
            _modify {
                if extras == nil {
                    // Reading nil and writing nil needs no storage.
                    var none: [[UInt8]: UInt32]? = nil
                    yield &none
                    if none != nil { uniqueExtras().children = none }
                    return
                }
                let box = uniqueExtras()
                yield &box.children
            }
        }
    }
}
