import Foundation
import KilnCore
import KilnDigest
import KilnOCI

/// `--cache DIR`: an OCI image layout holding every blob kiln fetched, and every image by the reference it was
/// fetched as (`index.json`, `org.opencontainers.image.ref.name` = `host/repo:tag`), so that it can also be
/// read as `oci:DIR:host/repo:tag`. A blob appears only once its bytes have matched their digest.
public struct RegistryCache: Sendable {
    public let root: String

    public init(root: String) throws {
        self.root = root
        let blobs = root + "/blobs/sha256"
        do {
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: root + "/oci-layout") {
                try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: root + "/oci-layout"), options: .atomic)
            }
            if !FileManager.default.fileExists(atPath: root + "/index.json") {
                try Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.utf8)
                    .write(to: URL(fileURLWithPath: root + "/index.json"), options: .atomic)
            }
        } catch {
            throw RegistryError.cache("--cache \(root): cannot set up the blob cache: \(error.localizedDescription)")
        }
    }

    public func path(of digest: Digest) -> String { "\(root)/blobs/\(digest.algorithm)/\(digest.encoded)" }

    /// The cached blob of `descriptor`, when present with the right size (a regular file, not a link).
    public func location(of descriptor: Descriptor) -> BlobLocation? {
        let path = path(of: descriptor.digest)
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) == descriptor.size else { return nil }
        return BlobLocation(path: path, offset: 0, length: descriptor.size, displayName: path, refusesSymlink: true)
    }

    /// The cached bytes of a small document, checked against its digest.
    public func document(_ digest: Digest, limit: Int64) -> [UInt8]? {
        let path = path(of: digest)
        guard let location = try? LayoutBlobStore(root: root).locate(digest), location.length <= limit,
              let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        return SHA256Hasher.hash(bytes) == digest ? bytes : nil
    }

    /// Stores a small document whose digest was checked.
    public func store(_ bytes: [UInt8], digest: Digest) throws {
        let final = path(of: digest)
        if FileManager.default.fileExists(atPath: final) { return }
        let partial = partialPath(for: digest)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: partial))
            try commit(partial, as: digest)
        } catch let e as RegistryError {
            throw e
        } catch {
            unlink(partial)
            throw RegistryError.cache("\(final): cannot write to the blob cache: \(error.localizedDescription)")
        }
    }

    /// A name beside the blob's, unique to this process and call, for bytes still arriving.
    func partialPath(for digest: Digest) -> String {
        "\(root)/blobs/\(digest.algorithm)/.\(digest.encoded).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Moves a complete, checked blob into place.
    func commit(_ partial: String, as digest: Digest) throws {
        chmod(partial, 0o444)
        guard rename(partial, path(of: digest)) == 0 else {
            let e = errno
            unlink(partial)
            throw RegistryError.cache("\(path(of: digest)): cannot move the fetched blob into the cache: \(String(cString: strerror(e)))")
        }
    }

    /// What `name` (`host/repo:tag`) was when it was last fetched into this cache, if it was.
    public func recorded(name: String) -> Descriptor? {
        guard let file = try? InputFile(path: root + "/index.json"),
              let bytes = try? file.readAll(limit: UInt64(SourceReader.jsonLimit)),
              let index = try? JSONDecoder().decode(ImageIndex.self, from: Data(bytes))
        else { return nil }
        return index.manifests.last { $0.refName == name }
    }

    /// Records that `name` (`host/repo:tag` or `host/repo@digest`) is `descriptor`, replacing what it was;
    /// under a lock, since bakes may share a cache.
    public func record(name: String, descriptor: Descriptor) throws {
        let lockPath = root + "/index.json.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RegistryError.cache("\(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        let indexPath = root + "/index.json"
        let index = (FileManager.default.contents(atPath: indexPath)).flatMap { try? JSONDecoder().decode(ImageIndex.self, from: $0) }
            ?? (try? JSONDecoder().decode(ImageIndex.self, from: Data(#"{"schemaVersion":2,"manifests":[]}"#.utf8)))
        guard var index else { return }
        var entry = descriptor
        entry.platform = nil
        entry.annotations = ["org.opencontainers.image.ref.name": name]
        index.manifests.removeAll { $0.refName == name }
        index.manifests.append(entry)
        index.manifests.sort { ($0.refName ?? "") < ($1.refName ?? "") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            try encoder.encode(index).write(to: URL(fileURLWithPath: indexPath), options: .atomic)
        } catch {
            throw RegistryError.cache("\(indexPath): cannot update the cache's index: \(error.localizedDescription)")
        }
    }
}
