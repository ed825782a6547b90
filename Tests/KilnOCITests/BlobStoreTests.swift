import Foundation
import KilnDigest
import KilnTestSupport
import Testing

@testable import KilnOCI

/// Blob ranges and layout blobs are checked where they are opened, not only where they were found.
@Suite struct BlobStoreTests {
    @Test func rangesNoFileCanHoldAreRefusedBeforeAnyArithmetic() throws {
        let scratch = try TemporaryDirectory(prefix: "kiln-blobstore")
        defer { scratch.remove() }
        let file = scratch.path("blob")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: file))
        for (offset, length) in [(Int64.max, 1), (1, Int64.max), (-1, 2), (0, -3), (Int64.max - 4, 5)] {
            let location = BlobLocation(path: file, offset: offset, length: length, displayName: "test blob")
            #expect(throws: BlobError.self, "\(offset) + \(length)") { _ = try RangeReader(location) }
            do { _ = try RangeReader(location) } catch let error as BlobError {
                #expect("\(error)".contains("test blob") && error.exitStatus == .input, "\(error)")
            }
        }
        let whole = try RangeReader(BlobLocation(path: file, offset: Int64.max - 5, length: 5, displayName: "far"))
        var buffer = [UInt8](repeating: 0, count: 8)
        // A range past the end of the file reads as cut short, as before.
        #expect(throws: BlobError.self) { _ = try buffer.withUnsafeMutableBytes { try whole.read(into: $0) } }
    }

    /// A blob found as a regular file and swapped for a link before it is read (the window between lstat and open)
    /// is refused when opened: the link is never followed.
    @Test func aBlobTurnedIntoASymlinkAfterItWasFoundIsRefused() throws {
        let scratch = try TemporaryDirectory(prefix: "kiln-blobstore")
        defer { scratch.remove() }
        let bytes = Array("layer bytes".utf8)
        let digest = SHA256Hasher.hash(bytes)
        let dir = scratch.path("layout/blobs/sha256")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let blob = dir + "/" + digest.encoded
        try Data(bytes).write(to: URL(fileURLWithPath: blob))
        let secret = scratch.path("outside")
        try Data("not for the image".utf8).write(to: URL(fileURLWithPath: secret))

        let store = LayoutBlobStore(root: scratch.path("layout"))
        let location = try #require(try store.locate(digest))
        #expect(try RangeReader(location).readAll(limit: 100) == bytes)
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: secret)
        do {
            _ = try location.open()
            Issue.record("opened a blob through a symlink")
        } catch let error as BlobError {
            guard case .symlink = error else { Issue.record("\(error)"); return }
            #expect(error.exitStatus == .input)
        }
        // Found again, the link is refused at once.
        #expect(throws: BlobError.self) { _ = try store.locate(digest) }
    }
}
