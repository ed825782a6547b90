import KilnOCI
import Testing

@Suite("docker:// references")
struct ReferenceTests {
    @Test(arguments: [
        ("docker://busybox:1.36", "docker.io/library/busybox:1.36"),
        ("docker://busybox", "docker.io/library/busybox:latest"),
        ("docker://org/app", "docker.io/org/app:latest"),
        ("docker://index.docker.io/library/x:1", "docker.io/library/x:1"),
        ("docker://127.0.0.1:5000/team/app:v1.2-rc_3", "127.0.0.1:5000/team/app:v1.2-rc_3"),
        ("docker://localhost/app", "localhost/app:latest"),
        ("docker://ghcr.io/a/b/c@sha256:" + String(repeating: "a", count: 64), "ghcr.io/a/b/c@sha256:" + String(repeating: "a", count: 64)),
        ("docker://reg.example.com:443/a__b/c-d.e:t@sha256:" + String(repeating: "b", count: 64),
         "reg.example.com:443/a__b/c-d.e:t@sha256:" + String(repeating: "b", count: 64)),
    ])
    func normalisesAsKubeletDoes(text: String, expected: String) throws {
        let source = try ImageSource(parsing: text)
        #expect(source.kind == .registry)
        #expect(source.path == expected)
        #expect(source.description == "docker://" + expected)
    }

    @Test(arguments: [
        "docker://", "docker://UPPER/app", "docker://app:", "docker://app:-bad", "docker://a//b", "docker://a/b/",
        "docker://app@sha256:abc", "docker://app@md5:" + String(repeating: "0", count: 32), "docker://a_/b", "docker://-a/b",
        "docker://host:99999/app", "docker://app:" + String(repeating: "t", count: 129), "docker://a b",
    ])
    func refusesWhatTheGrammarRefuses(text: String) {
        #expect(throws: ImageName.Error.self) { try ImageSource(parsing: text) }
    }

    @Test func tagAndDigestPickWhatTheAPIIsAskedFor() throws {
        let d = "sha256:" + String(repeating: "c", count: 64)
        #expect(try ImageName(parsing: "h.io/a:t@" + d).apiReference == d)
        #expect(try ImageName(parsing: "h.io/a:t").apiReference == "t")
        #expect(try ImageName(parsing: "h.io:5000/a/b").host == "h.io:5000")
        #expect(try ImageName(parsing: "h.io:5000/a/b").path == "a/b")
    }
}
