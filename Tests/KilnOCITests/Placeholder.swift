import Testing
@testable import KilnOCI

@Test func placeholder() {}
