/// Told of every range of an image file that a writer changes, right after it changes it.
///
/// A writer may call it from more than one thread (a reserved file is filled from another thread than the one
/// writing the filesystem), so conformers synchronise themselves.
public protocol ImageWriteObserver: AnyObject, Sendable {
    /// `count` bytes from `offset` (in the image file, not the filesystem) were written, zeroed or punched out.
    func imageDidChange(offset: UInt64, count: UInt64)

    /// `bytes` were just written at `offset`: the file now holds exactly them there. An observer that needs the
    /// content (a block hasher) takes it from them instead of reading the file back. Two writers never write the
    /// same range at once.
    func imageDidWrite(offset: UInt64, bytes: UnsafeRawBufferPointer)
}

extension ImageWriteObserver {
    public func imageDidWrite(offset: UInt64, bytes: UnsafeRawBufferPointer) {
        imageDidChange(offset: offset, count: UInt64(bytes.count))
    }
}
