import Testing
@testable import KilnDigest

@Test func emptyInputHasKnownSHA256() {
    // The SHA-256 of no bytes is a published constant (FIPS 180-4 test vectors).
    #expect(SHA256Hasher.hash([UInt8]()).encoded == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(SHA256Hasher.hash(Array("abc".utf8)).encoded == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

@Test func streamingEqualsOneShot() {
    let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let h = SHA256Hasher()
    var i = 0
    while i < data.count { let n = min(7777, data.count - i); data[i..<i + n].withUnsafeBytes { h.update($0) }; i += n }
    #expect(h.finalize() == SHA256Hasher.hash(data))
}

@Test func parsesAndRejectsDigests() throws {
    let d = try Digest(parsing: "sha256:" + String(repeating: "a", count: 64))
    #expect(d.bytes.count == 32)
    #expect(Digest(sha256: d.bytes) == d)
    #expect(throws: Digest.Error.self) { try Digest(parsing: "sha256:abc") }
    #expect(throws: Digest.Error.self) { try Digest(parsing: "nocolon") }
    #expect(throws: Digest.Error.unsupportedAlgorithm("sha512")) { try Digest(parsing: "sha512:00") }
    #expect(throws: Digest.Error.self) { try Digest(parsing: "sha256:" + String(repeating: "A", count: 64)) }
}

@Test func chainIDFollowsTheOCIDefinition() throws {
    let a = try Digest(parsing: "sha256:" + String(repeating: "1", count: 64))
    let b = try Digest(parsing: "sha256:" + String(repeating: "2", count: 64))
    let chain = Digest.chainIDs(diffIDs: [a, b])
    #expect(chain[0] == a)
    #expect(chain[1] == SHA256Hasher.hash(Array("\(a) \(b)".utf8)))
}
