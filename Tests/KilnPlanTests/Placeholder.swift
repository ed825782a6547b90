import Testing
@testable import KilnPlan

@Test func placeholder() {}
