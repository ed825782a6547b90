/// Told of every range of an image file that a writer changes, right after it changes it.
///
/// A writer may call it from more than one thread (a reserved file is filled from another thread than the one
/// writing the filesystem), so conformers synchronise themselves.
public protocol ImageWriteObserver: AnyObject, Sendable {
    /// `count` bytes from `offset` (in the image file, not the filesystem) were written, zeroed or punched out.
    func imageDidChange(offset: UInt64, count: UInt64)
}
