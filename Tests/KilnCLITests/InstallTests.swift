import Foundation
import KilnTestSupport
import Testing

/// `scripts/install --prefix DIR`: the binary, man pages and completions land where shells and man look, and
/// they work there (bash completes for real; zsh and fish parse theirs and fish completes).
@Suite struct InstallTests {
    /// One install of the binary under test for the suite.
    static let installed: (prefix: String, result: ProcessResult?) = {
        let prefix = NSTemporaryDirectory() + "kiln-install-\(getpid())"
        try? FileManager.default.removeItem(atPath: prefix)
        let r = try? run("\(packageRoot)/scripts/install", ["--prefix", prefix, "--binary", kilnBinary], cwd: packageRoot,
                         environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        return (prefix, r)
    }()

    var prefix: String { Self.installed.prefix }

    @Test func installsTheBinaryManPagesAndCompletions() throws {
        let r = try #require(Self.installed.result)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("installed kiln"), "\(r.stdout)")
        let version = try run(prefix + "/bin/kiln", ["--version"])
        #expect(version.status == 0 && !version.stdout.isEmpty)
        for page in ["kiln.1", "kiln-bake.1", "kiln-verify.1", "kiln-inspect.1", "kiln-plan.1", "kiln-emit.1"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/share/man/man1/" + page), "\(page) missing")
        }
        for file in ["bash-completion/completions/kiln", "zsh/site-functions/_kiln", "fish/vendor_completions.d/kiln.fish"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/share/" + file), "\(file) missing")
        }
    }

    @Test func theManPageRendersFromTheCommandsHelp() throws {
        let page = try run("man", ["-P", "cat", "kiln-bake"], environment: ["MANPATH": prefix + "/share/man", "MANWIDTH": "100"])
        #expect(page.status == 0, "\(page.stderr)")
        #expect(page.stdout.contains("SYNOPSIS") && page.stdout.contains("--layout"), "\(page.stdout)")
        // What the command's own help says is what the page says.
        let help = try kiln("bake", "--help")
        #expect(help.stdout.contains("--no-file-digest") && page.stdout.contains("--no-file-digest"))
        #expect(page.stdout.contains("2023-11-14"), "dated by SOURCE_DATE_EPOCH: \(page.stdout.suffix(200))")
        // groff finds nothing wrong with any page.
        for name in try FileManager.default.contentsOfDirectory(atPath: prefix + "/share/man/man1") {
            let checked = try run("groff", ["-man", "-Tutf8", "-ww", "-z", prefix + "/share/man/man1/" + name])
            #expect(checked.status == 0 && checked.stderr.isEmpty, "\(name): \(checked.stderr)")
        }
    }

    /// The bash completion, sourced into a real bash and asked as readline would ask it.
    @Test func bashCompletesCommandsOptionsAndLayouts() throws {
        let file = prefix + "/share/bash-completion/completions/kiln"
        func complete(_ words: [String]) throws -> [String] {
            let line = words.joined(separator: " ")
            let script = """
                source "$1"; shift
                COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="\(line)"; COMP_POINT=${#COMP_LINE}
                _kiln kiln "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let r = try run("bash", ["-c", script, "-", file] + words)
            return r.stdout.split(separator: "\n").map(String.init)
        }
        #expect(try complete(["kiln", "ba"]) == ["bake"])
        #expect(try complete(["kiln", "bake", "--lay"]).contains("--layout"))
        #expect(try complete(["kiln", "bake", "--layout", "b"]) == ["bottlerocket"])
        #expect(try complete(["kiln", "ve"]) == ["verify"])
    }

    @Test(.requires(tools: "zsh", "fish"))
    func zshAndFishReadTheirCompletions() throws {
        #expect(try run("zsh", ["-n", prefix + "/share/zsh/site-functions/_kiln"]).status == 0)
        let fish = prefix + "/share/fish/vendor_completions.d/kiln.fish"
        #expect(try run("fish", ["-n", fish]).status == 0)
        let r = try run("fish", ["-c", "source \(fish); complete -C 'kiln ba'"])
        #expect(r.stdout.hasPrefix("bake"), "\(r.stdout) \(r.stderr)")
    }
}
