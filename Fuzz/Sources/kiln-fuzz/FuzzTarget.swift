import Foundation
import KilnBolt
import KilnCore
import KilnDisk
import KilnExt4
import KilnLayer
import KilnManifest
import KilnOCI
import KilnVolume

/// One reader of untrusted input, driven by libFuzzer. A target may throw any of kiln's errors (that is a
/// refusal, which is fine); it must not trap, crash, hang or grow without bound.
struct FuzzTarget: Sendable {
    let name: String
    let body: @Sendable (UnsafeRawBufferPointer) throws -> Void

    nonisolated(unsafe) static var selected: FuzzTarget?

    enum Outcome { case read, refused(String) }

    /// Runs the target on one input. A thrown error is a refusal; describing it must not trap either.
    @discardableResult
    func outcome(_ input: UnsafeRawBufferPointer) -> Outcome {
        do {
            try body(input)
            return .read
        } catch {
            return .refused(String(describing: error))
        }
    }

    func run(_ input: UnsafeRawBufferPointer) { outcome(input) }

    static let all: [String: FuzzTarget] = Dictionary(uniqueKeysWithValues: [
        FuzzTarget(name: "layer", body: layer),
        FuzzTarget(name: "apply", body: apply),
        FuzzTarget(name: "archive", body: archive),
        FuzzTarget(name: "gpt", body: gpt),
        FuzzTarget(name: "volume", body: volume),
        FuzzTarget(name: "ext4", body: ext4),
        FuzzTarget(name: "bolt", body: bolt),
        FuzzTarget(name: "manifest", body: manifest),
        FuzzTarget(name: "placement", body: placement),
    ].map { ($0.name, $0) })

    /// The input as a file, for the readers that take a path: one per process, rewritten for every input.
    static let scratch = "/dev/shm/kiln-fuzz-\(getpid())"

    static func asFile(_ input: UnsafeRawBufferPointer) -> String {
        let fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot write \(scratch)")
        defer { close(fd) }
        var done = 0
        while done < input.count, let base = input.baseAddress {
            let n = write(fd, base + done, input.count - done)
            precondition(n > 0, "cannot write \(scratch)")
            done += n
        }
        return scratch
    }

    /// A layer blob: the first byte picks the compression, the rest is the blob. Every entry's data is read.
    static func layer(_ input: UnsafeRawBufferPointer) throws {
        guard let first = input.first else { return }
        let compression: Compression = [.none, .gzip, .zstd][Int(first) % 3]
        let blob = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let path = asFile(blob)
        let location = BlobLocation(path: path, offset: 0, length: Int64(blob.count), displayName: "fuzz layer")
        _ = try LayerScanner.scan(location, compression: compression, uncompressedLimit: 64 << 20) { _, content in
            try content.forEachBlock { _, _ in }
        }
    }

    /// A layer applied as a bake applies it (whiteouts, links, type changes), twice over: once onto an empty
    /// tree, then again as the next layer. A layer may be refused; one that is accepted must leave a
    /// filesystem kiln's own reader walks cleanly.
    static func apply(_ input: UnsafeRawBufferPointer) throws {
        guard let first = input.first else { return }
        let compression: Compression = [.none, .gzip, .zstd][Int(first) % 3]
        let blob = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let path = asFile(blob)
        let location = BlobLocation(path: path, offset: 0, length: Int64(blob.count), displayName: "fuzz layer")
        let image = scratch + ".img"
        unlink(image)
        defer { unlink(image) }
        // Small budgets keep an execution in milliseconds; every budget's refusal is still reachable.
        let writer = try EXT4Writer(path: image, options: EXT4Writer.Options(size: .bytes(16 << 20)))
        let applier = LayerApplier(writer: writer, root: .root, mode: .flatten,
                                   budget: LayerBudget(entriesPerLayer: 2_000, entriesPerBake: 4_000))
        for _ in 0..<2 {
            applier.startLayer()
            _ = try LayerScanner.scan(location, compression: compression, uncompressedLimit: 4 << 20) { entry, content in
                try applier.apply(entry, content: content)
            }
        }
        _ = try writer.close()
        let reader: EXT4Reader
        do { reader = try EXT4Reader(path: image) } catch { broken("a closed bake does not open: \(error)") }
        do {
            // By inode: walk's paths are for display (names that are not UTF-8 print with U+FFFD).
            try reader.walk { _, stat in
                if stat.kind == .symlink { _ = try reader.readSymlink(inode: stat.inode) }
                if stat.kind == .regular { _ = try reader.readFile(inode: stat.inode, length: 1 << 16) }
            }
        } catch {
            broken("an accepted layer left a filesystem that does not read back: \(error)")
        }
    }

    /// Stops on a broken invariant, saying which (a release build's trap message would not).
    static func broken(_ message: String) -> Never {
        FileHandle.standardError.write(Data("kiln-fuzz: \(message)\n".utf8))
        abort()
    }

    /// An image archive (docker-archive or oci-archive tar): its index, manifests and configs, every platform.
    static func archive(_ input: UnsafeRawBufferPointer) throws {
        let path = asFile(input)
        let reader = try SourceReader(ImageSource(parsing: path))
        _ = try reader.resolve(platforms: [], allPlatforms: true)
    }

    /// A disk's GPT (primary and backup headers, entries).
    static func gpt(_ input: UnsafeRawBufferPointer) throws {
        let file = try ImageFile(path: asFile(input))
        _ = try GPT.read(file)
    }

    /// What `kiln verify data.img` and `kiln inspect data.img` first read: the partition table and the
    /// filesystem's superblock.
    static func volume(_ input: UnsafeRawBufferPointer) throws {
        _ = try VolumeProbe(path: asFile(input))
    }

    /// An ext4 filesystem: every directory, inode, extent tree, symlink, xattr and (the start of) every file.
    static func ext4(_ input: UnsafeRawBufferPointer) throws {
        let reader = try EXT4Reader(path: asFile(input))
        var visited = 0
        try reader.walk { _, stat in
            visited += 1
            switch stat.kind {
            case .regular: _ = try reader.readFile(inode: stat.inode, length: 1 << 16)
            case .symlink: _ = try reader.readSymlink(inode: stat.inode)
            default: break
            }
            _ = try reader.xattrs(inode: stat.inode)
        }
    }

    /// A bbolt database (containerd's meta.db, metadata.db): every page reachable, the freelist, the checks.
    static func bolt(_ input: UnsafeRawBufferPointer) throws {
        let reader = try Bolt.Reader(data: Data(input))
        _ = try reader.tree()
        _ = try reader.freePages()
        try reader.verify()
    }

    /// A snapshot manifest (the first byte picks the JSON document or the binary block-digest sidecar).
    static func manifest(_ input: UnsafeRawBufferPointer) throws {
        guard let first = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        if first & 1 == 0 {
            _ = try SnapshotManifest(decoding: Data(rest), name: "fuzz manifest.json")
        } else {
            _ = try BlockDigestFile(decoding: rest, name: "fuzz manifest.blocks")
        }
    }

    /// A placement record (`manifest.layout`): decoded, walked, and, when it decodes, followed by a writer as a
    /// base while a small tree is written, which must give a filesystem the reader can walk.
    static func placement(_ input: UnsafeRawBufferPointer) throws {
        let p = try EXT4.Placement(decoding: Array(input))
        _ = p.pathsByInode()
        guard p.encoded() == Array(input) else { fatalError("a decoded placement record does not encode to its bytes") }
        guard p.blockCount <= 1 << 16 else { return }
        let path = scratch + ".img"
        defer { unlink(path) }
        var options = EXT4Writer.Options(seed: [1])
        options.base = EXT4.Base(placement: p, keep: Set(p.inodes.map(\.number)))
        let w = try EXT4Writer(path: path, options: options)
        try w.makeDirectory("var/lib")
        try w.writeFile("var/lib/a", contents: [UInt8](repeating: 7, count: 9000))
        try w.makeSymlink("var/l", target: BytePath(String(repeating: "x", count: 80)))
        _ = try w.close()
        try EXT4Reader(path: path).walk { _, _ in }
    }
}
