import Testing
@testable import KilnVolume

@Test func placeholder() {}
