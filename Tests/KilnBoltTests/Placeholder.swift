import Testing
@testable import KilnBolt

@Test func placeholder() {}
