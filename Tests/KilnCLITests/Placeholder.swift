import Testing
@testable import KilnDigest

@Test func placeholder() {}
