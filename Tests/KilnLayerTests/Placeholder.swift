import Testing
@testable import KilnLayer

@Test func placeholder() {}
