import Foundation
import KilnTestSupport
import Testing

/// Progress on stderr: a bar redrawn in place in a terminal (read off a real tmux screen and a `script`
/// pseudo-terminal), plain lines in CI, nothing with -q, never anything on stdout.
@Suite(.serialized) struct ProgressTests {
    static var source: String { FaultTests.source }

    func shell(_ script: String, _ environment: [String: String] = [:]) throws -> ProcessResult {
        try run("/bin/bash", ["-c", script], environment: ["KILN": kilnBinary, "SRC": Self.source] + environment)
    }

    @Test(.requires(tools: "script"))
    func aTerminalGetsABarRedrawnInPlaceAndStdoutStaysClean() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        _ = FaultTests.work
        // stdout goes to a file, stderr stays on the pseudo-terminal.
        let r = try shell("""
            script -qfec '"$KILN" bake --source "$SRC" -o "\(dir)/out" > "\(dir)/stdout.txt"' "\(dir)/typescript" > /dev/null
            """, ["CI": ""])
        #expect(r.status == 0, "\(r.stderr)")
        let screen = (try? String(contentsOfFile: dir + "/typescript", encoding: .utf8)) ?? ""
        let stdout = (try? String(contentsOfFile: dir + "/stdout.txt", encoding: .utf8)) ?? ""
        #expect(screen.contains("\r\u{1B}[Kbake ["), "no bar drawn: \(screen.prefix(500))")
        #expect(screen.contains("% ") && screen.contains("MB/s") && screen.contains("ETA"), "\(screen.prefix(800))")
        #expect(stdout.contains("baked 1 image"), "\(stdout)")
        #expect(!stdout.contains("\r") && !stdout.contains("["), "progress reached stdout: \(stdout)")
    }

    /// The screen as a person sees it, read with tmux while the bake runs and after it ends.
    @Test(.requires(tools: "tmux"))
    func theScreenShowsTheBarThenOnlyTheSummary() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        _ = FaultTests.work
        let session = "kiln-progress-\(getpid())"
        let start = try run("tmux", ["new-session", "-d", "-s", session, "-x", "120", "-y", "20",
                                     "env CI= \(kilnBinary) bake --source \(Self.source) -o \(dir)/out; echo EXIT=$?; sleep 30"])
        try #require(start.status == 0, "tmux: \(start.stderr)")
        defer { _ = try? run("tmux", ["kill-session", "-t", session]) }
        var sawBar = false
        var finalScreen = ""
        for _ in 0..<200 {
            let screen = try run("tmux", ["capture-pane", "-p", "-t", session]).stdout
            if screen.contains("bake [") && screen.contains("%") { sawBar = true }
            if screen.contains("EXIT=") { finalScreen = screen; break }
            usleep(50_000)
        }
        #expect(sawBar, "the bar never showed on the screen")
        #expect(finalScreen.contains("EXIT=0") && finalScreen.contains("baked 1 image"), "\(finalScreen)")
        #expect(!finalScreen.contains("bake ["), "the bar is left on the screen: \(finalScreen)")
    }

    /// A registry behind a slow link (200 kB/s per body): each layer being fetched has a line of its own above the
    /// bake's bar, read off a tmux screen, and gone when the bake ends; a CI log gets `fetch` lines.
    @Test(.requires(tools: "tmux"), .requires(RegistryStandin.requirement))
    func eachLayerDownloadGetsALine() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let registry = try RegistryStandin(rate: 200_000)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "team/app:v1")
        let source = "docker://\(registry.registry)/team/app:v1"
        let big = "layer 23e98462df0b"  // layer 0, 1.03 MB: five seconds at this rate
        let session = "kiln-fetch-\(getpid())"
        let start = try run("tmux", ["new-session", "-d", "-s", session, "-x", "150", "-y", "20",
                                     "env CI= \(kilnBinary) bake --source \(source) --platform linux/amd64 -o \(dir)/out; echo EXIT=$?; sleep 30"])
        try #require(start.status == 0, "tmux: \(start.stderr)")
        defer { _ = try? run("tmux", ["kill-session", "-t", session]) }
        var fetchScreen = ""
        var finalScreen = ""
        for _ in 0..<600 {
            let screen = try run("tmux", ["capture-pane", "-p", "-t", session]).stdout
            let lines = screen.split(separator: "\n")
            // A fetch line above the bar, with its own meter and figures.
            if fetchScreen.isEmpty, let i = lines.firstIndex(where: { $0.hasPrefix("  fetch [") && $0.contains(big) && $0.contains(" of 1.03 MB") }),
               lines[(i + 1)...].contains(where: { $0.hasPrefix("bake [") }) {
                fetchScreen = screen
            }
            if screen.contains("EXIT=") { finalScreen = screen; break }
            usleep(50_000)
        }
        #expect(!fetchScreen.isEmpty, "no line for the download of \(big) above the bar; last screen:\n\(finalScreen)")
        #expect(fetchScreen.contains("\(registry.registry)/team/app \(big)"), "\(fetchScreen)")
        #expect(finalScreen.contains("EXIT=0") && finalScreen.contains("baked 1 image"), "\(finalScreen)")
        #expect(!finalScreen.contains("fetch [") && !finalScreen.contains("bake ["), "progress is left on the screen: \(finalScreen)")

        let ci = try run(kilnBinary, ["bake", "--source", source, "--platform", "linux/amd64", "-o", dir + "/ci"],
                         environment: ["CI": "true"])
        #expect(ci.status == 0, "\(ci.stderr)")
        let fetchLines = ci.stderr.split(separator: "\n").filter { $0.hasPrefix("kiln: bake: fetch \(registry.registry)/team/app \(big)") }
        #expect(fetchLines.contains { $0.contains("% ") && $0.contains(" of 1.03 MB") && $0.contains("/s") }, "\(ci.stderr)")
        #expect(!ci.stderr.contains("\u{1B}"), "terminal control in a CI log: \(ci.stderr)")
        #expect(!ci.stdout.contains("fetch"), "progress reached stdout: \(ci.stdout)")
    }

    @Test func ciGetsPlainLinesAndQuietGetsNothing() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        _ = FaultTests.work
        let ci = try run(kilnBinary, ["bake", "--source", Self.source, "-o", dir + "/ci"], environment: ["CI": "true"])
        #expect(ci.status == 0, "\(ci.stderr)")
        let lines = ci.stderr.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("kiln: bake: layers ") && $0.contains("% ") }, "\(ci.stderr)")
        #expect(!ci.stderr.contains("\r") && !ci.stderr.contains("\u{1B}"), "terminal control in a CI log: \(ci.stderr)")
        #expect(!ci.stdout.contains("kiln: bake:"))
        let quiet = try run(kilnBinary, ["bake", "-q", "--source", Self.source, "-o", dir + "/quiet"], environment: ["CI": "true"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        // verify reports the same way.
        let verify = try run(kilnBinary, ["verify", Self.source], environment: ["CI": "true"])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stderr.split(separator: "\n").contains { $0.hasPrefix("kiln: verify: layers ") && $0.contains(" of 268 MB") },
                "\(verify.stderr)")
        #expect(!verify.stdout.contains("kiln: verify:"))
        // verify of a baked disk image counts the blocks it reads and hashes.
        let volume = try run(kilnBinary, ["verify", dir + "/ci/data.img"], environment: ["CI": "true"])
        #expect(volume.status == 0, "\(volume.stderr)")
        #expect(volume.stderr.split(separator: "\n").contains { $0.hasPrefix("kiln: verify: blocks ") && $0.contains("100% ") },
                "\(volume.stderr)")
        #expect(!volume.stdout.contains("kiln: verify:") && volume.stdout.contains("PASS"), "\(volume.stdout)")
        for quietly in [["-q"], ["--json"]] {
            let silent = try run(kilnBinary, ["verify", dir + "/ci/data.img"] + quietly, environment: ["CI": "true"])
            #expect(silent.status == 0 && silent.stderr.isEmpty, "\(quietly): \(silent.stderr)")
        }
    }
}

private func + (a: [String: String], b: [String: String]) -> [String: String] { a.merging(b) { _, new in new } }
