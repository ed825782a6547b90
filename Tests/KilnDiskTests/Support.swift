import Foundation

/// Writes a sparse file: `size` bytes of holes, then `writes` at their offsets.
func makeSparseFile(_ path: String, size: UInt64, writes: [(offset: UInt64, bytes: [UInt8])]) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: size)
    for w in writes {
        try handle.seek(toOffset: w.offset)
        try handle.write(contentsOf: w.bytes)
    }
}

/// Overwrites `bytes` at `offset` of an existing file.
func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: bytes)
}
