import Testing
@testable import KilnExt4

@Test func placeholder() {}
