import Testing
@testable import KilnRegistry

@Suite("WWW-Authenticate challenges")
struct ChallengeTests {
    @Test func bearerWithQuotedCommasAndEscapes() throws {
        let c = try #require(AuthChallenge(header: #"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope""#))
        #expect(c.scheme == "bearer")
        #expect(c.realm == "https://auth.example.com/token")
        #expect(c.service == "registry.example.com")
        #expect(c.scope == "repository:a/b:pull,push")
        #expect(c.error == "insufficient_scope")
    }

    @Test func basicAsECRAnswers() throws {
        let c = try #require(AuthChallenge(header: #"Basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#))
        #expect(c.scheme == "basic")
        #expect(c.service == "ecr.amazonaws.com")
    }

    @Test func unquotedValuesSpacesAndCase() throws {
        let c = try #require(AuthChallenge(header: #"  BEARER Realm=https://t.example/x , Service = "s\"q" "#))
        #expect(c.scheme == "bearer")
        #expect(c.realm == "https://t.example/x")
        #expect(c.service == #"s"q"#)
    }

    @Test func emptyIsNone() {
        #expect(AuthChallenge(header: "") == nil)
        #expect(AuthChallenge(header: "   ") == nil)
    }
}
