import Foundation
import KilnCore
import KilnManifest

/// The output directory of one bake, held for its whole run.
///
/// - Only one bake writes into a directory at a time: an exclusive lock on the directory itself (no lock file
///   to leave behind); a second bake refuses at once instead of corrupting the first.
/// - The previous outputs are removed when the bake starts writing, so that no image and manifest of two
///   different bakes are ever side by side; new ones are written under partial names and renamed at the end.
/// - Every partial file is registered with ``KilnCore/Interruption``: SIGINT and SIGTERM remove them.
struct OutputDirectory {
    let path: String
    private let fd: Int32

    /// The files a bake makes, under their final names.
    static let imageName = "data.img"
    static let outputs = [imageName, SnapshotManifest.fileName, BlockDigestFile.defaultFileName, ManifestWriter.placementFileName,
                          ManifestBase.changesFileName]

    var finalImage: String { path + "/" + Self.imageName }
    var partialImage: String { path + "/." + Self.imageName + ".partial" }

    /// Creates the directory if needed and locks it.
    init(_ path: String) throws(Bake.Error) {
        self.path = path
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .io("\(path): cannot create the output directory: \(error.localizedDescription)")
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("\(path): cannot open the output directory: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            closeDescriptor(fd)
            if e == EWOULDBLOCK {
                throw .io("\(path): another bake is writing into this directory; wait for it or choose another -o")
            }
            throw .io("\(path): cannot lock the output directory: \(String(cString: strerror(e)))")
        }
        self.fd = fd
    }

    /// Removes what an earlier bake left: its outputs, and partial files of one that was killed (the image's,
    /// and the manifest writer's `.NAME.tmp-PID` files).
    func removePrevious() throws(Bake.Error) {
        var names = Self.outputs + ["." + Self.imageName + ".partial"]
        let temporaries = Self.outputs.map { "." + $0 + ".tmp-" }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        where temporaries.contains(where: { name.hasPrefix($0) }) {
            names.append(name)
        }
        // The manifest goes first and the image is renamed to the partial name before anything slow: unlinking
        // a large image that reached the disk frees its blocks and takes a while, and a kill meanwhile must not
        // leave a manifest without its image, or an image that looks finished.
        let manifest = path + "/" + SnapshotManifest.fileName
        if unlink(manifest) != 0 && errno != ENOENT {
            throw .io("\(manifest): cannot remove the previous output: \(String(cString: strerror(errno)))")
        }
        let image = path + "/" + Self.imageName
        if rename(image, partialImage) != 0 && errno != ENOENT {
            throw .io("\(image): cannot remove the previous output: \(String(cString: strerror(errno)))")
        }
        for name in names {
            let p = path + "/" + name
            if unlink(p) != 0 && errno != ENOENT {
                throw .io("\(p): cannot remove the previous output: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Removes the outputs of this bake after a failure (whatever was already renamed into place included).
    func removeOutputs() {
        // The same order as removePrevious: nothing that vouches for an image outlives it.
        unlink(path + "/" + SnapshotManifest.fileName)
        rename(path + "/" + Self.imageName, partialImage)
        for name in Self.outputs { unlink(path + "/" + name) }
        unlink(partialImage)
    }

    /// Releases the lock.
    func unlock() { closeDescriptor(fd) }
}

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
