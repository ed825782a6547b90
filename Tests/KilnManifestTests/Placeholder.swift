import Testing
@testable import KilnManifest

@Test func placeholder() {}
