import Foundation

/// A fresh, uniquely named directory under the system temporary directory, removed by `remove()`.
///
/// Removal is explicit (`defer { dir.remove() }`) rather than tied to a deinitializer, because Swift may end a
/// value's lifetime right after its last use, which could delete the directory while its paths are still in use.
public struct TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates `<temporary directory>/<prefix>-<UUID>`.
    public init(prefix: String = "kiln-test") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The directory as a file URL.
    public var url: URL { URL(fileURLWithPath: path, isDirectory: true) }

    /// The path of `name` (which may contain slashes) inside the directory.
    public func path(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// The URL of `name` inside the directory.
    public func url(_ name: String) -> URL { URL(fileURLWithPath: path(name)) }

    /// Deletes the directory and everything in it; a directory already gone is fine.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
