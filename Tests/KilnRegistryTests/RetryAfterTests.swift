import Foundation
import Testing

@testable import KilnRegistry

@Suite struct RetryAfterTests {
    /// 1994-11-06 08:49:37 UTC, RFC 9110's example date.
    static let example = Date(timeIntervalSince1970: 784_111_777)

    @Test func secondsAreTakenAsGiven() {
        #expect(RetryAfter.seconds("2") == 2)
        #expect(RetryAfter.seconds(" 120 ") == 120)
        #expect(RetryAfter.seconds("-5") == 0)
    }

    @Test func everyHTTPDateFormIsReadAsTheTimeLeft() {
        let now = Self.example.addingTimeInterval(-30)
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            #expect(RetryAfter.seconds(form, now: now) == 30, "\(form)")
        }
        // A date already past asks for no wait.
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:37 GMT", now: Self.example.addingTimeInterval(10)) == 0)
    }

    @Test func anythingElseIsIgnored() {
        for value in ["", "soon", "nan", "inf", "06 Nov 1994", "Sun, 06 Nov 1994 08:49:37 PST"] {
            #expect(RetryAfter.seconds(value) == nil, "\(value)")
        }
    }
}
