import Foundation
import KilnTestSupport
import Testing

/// A bake interrupted, killed, run twice at once, or out of space: never an output that looks complete, never
/// a corrupted one. The bakes run long enough to be caught in the middle: one 256 MiB layer of random bytes.
@Suite(.serialized) struct FaultTests {
    static let work: String = {
        // One 256 MiB layout per run; earlier runs' are removed.
        let tmp = NSTemporaryDirectory()
        for stale in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where stale.hasPrefix("kiln-faults-") {
            try? FileManager.default.removeItem(atPath: tmp + stale)
        }
        let dir = tmp + "kiln-faults-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        _ = try? run("/bin/bash", ["-c", """
            set -e
            head -c 256M /dev/urandom > "$1/tree/weights"
            tar -cf "$1/big.tar" -C "$1/tree" weights
            rm -rf "$1/tree"
            python3 "$2/scripts/lib/mklayout.py" "$1/layout" big "$1/big.tar"
            rm -f "$1/big.tar"
            """, "-", dir, packageRoot])
        return dir
    }()

    static var source: String { "oci:\(work)/layout:big" }

    /// Runs `script` with bash, `$KILN` the binary and `$SRC` the source.
    func bash(_ script: String) throws -> ProcessResult {
        try run("/bin/bash", ["-c", script], environment: ["KILN": kilnBinary, "SRC": Self.source, "SOURCE_DATE_EPOCH": "1700000000"])
    }

    /// What an output directory holds, dot files included.
    func contents(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    @Test func aSecondBakeIntoTheSameDirectoryRefusesAndTheFirstCompletes() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        let r = try bash("""
            "$KILN" bake -q --source "$SRC" -o "\(out)" > /dev/null 2>&1 & first=$!
            for i in $(seq 1 200); do [ -e "\(out)/.data.img.partial" ] && break; sleep 0.05; done
            "$KILN" bake -q --source "$SRC" -o "\(out)"; echo "second=$?"
            wait $first; echo "first=$?"
            """)
        #expect(r.stdout.contains("second=3"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("another bake is writing into this directory"), "\(r.stderr)")
        #expect(r.stdout.contains("first=0"), "\(r.stdout) \(r.stderr)")
        #expect(contents(out) == ["data.img", "manifest.blocks", "manifest.json", "manifest.layout"])
        let verify = try kiln("verify", "-q", out + "/data.img")
        #expect(verify.status == 0, "the first bake's output is intact: \(verify.stdout) \(verify.stderr)")
    }

    @Test(arguments: [("TERM", 143), ("INT", 130)])
    func signalsRemoveThePartialFiles(signal: String, status: Int) throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        let r = try bash("""
            "$KILN" bake -q --source "$SRC" -o "\(out)" > /dev/null & pid=$!
            for i in $(seq 1 200); do [ -e "\(out)/.data.img.partial" ] && break; sleep 0.05; done
            sleep 0.2
            kill -\(signal) $pid; wait $pid; echo "status=$?"
            """)
        #expect(r.stdout.contains("status=\(status)"), "\(r.stdout) \(r.stderr)")
        #expect(contents(out).isEmpty, "left behind: \(contents(out))")
    }

    /// kill -9 at moments spread over a whole bake: whatever is left is either nothing that looks like an
    /// output, or a complete output that verifies. The next bake into the directory then succeeds.
    @Test func killNineNeverLeavesAnOutputThatLooksComplete() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        // How long a whole bake takes here, to spread the kills over it.
        let started = Date()
        #expect(try kiln("bake", "-q", "--source", Self.source, "-o", out).status == 0)
        let whole = Date().timeIntervalSince(started)
        var sawPartial = false
        for i in 1...8 {
            let delay = whole * Double(i) / 8.5
            let r = try bash("""
                "$KILN" bake -q --source "$SRC" -o "\(out)" > /dev/null 2>&1 & pid=$!
                sleep \(String(format: "%.3f", delay)); kill -9 $pid; wait $pid; echo "status=$?"
                """)
            let left = contents(out)
            if left.contains(".data.img.partial") { sawPartial = true }
            let looksComplete = left.contains("data.img") || left.contains("manifest.json")
            if looksComplete {
                #expect(left.contains("data.img") && left.contains("manifest.json"), "kill after \(delay) s left \(left) (\(r.stdout))")
                let verify = try kiln("verify", "-q", out + "/data.img")
                #expect(verify.status == 0, "kill after \(delay) s left an output that does not verify: \(verify.stdout)")
            }
        }
        #expect(sawPartial, "no kill landed in the middle of a bake (the bake took \(whole) s)")
        let again = try kiln("bake", "-q", "--source", Self.source, "-o", out)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(contents(out) == ["data.img", "manifest.blocks", "manifest.json", "manifest.layout"])
    }

    @Test(.requires(.root, .tool("mount")))
    func aFullOutputFilesystemIsExitThreeNamingThePath() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let mountPoint = scratch.path("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try run("mount", ["-t", "tmpfs", "-o", "size=64M", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "mount tmpfs: \(mounted.stderr)")
        defer { _ = try? run("umount", [mountPoint]) }
        let out = mountPoint + "/out"
        let r = try kiln("bake", "-q", "--source", Self.source, "-o", out)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("\(out)/.data.img.partial") && r.stderr.contains("No space left on device"), "\(r.stderr)")
        #expect(contents(out).isEmpty, "left behind: \(contents(out))")
    }
    /// Out of inodes once the image is complete: each sidecar and the manifest in turn cannot be created. The
    /// bake is exit 3 naming that file, and the finished image goes with it. The bundled example is enough.
    @Test(.requires(.root, .tool("mount")))
    func noRoomForTheManifestRemovesTheFinishedImage() throws {
        var failed: [String] = []
        for inodes in 3...9 {
            let scratch = try TemporaryDirectory()
            defer { scratch.remove() }
            let mountPoint = scratch.path("small")
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let mounted = try run("mount", ["-t", "tmpfs", "-o", "size=256M,nr_inodes=\(inodes)", "tmpfs", mountPoint])
            try #require(mounted.status == 0, "mount tmpfs: \(mounted.stderr)")
            defer { _ = try? run("umount", [mountPoint]) }
            let out = mountPoint + "/out"
            let r = try run(kilnBinary, ["bake", "-q", "fixtures/recipe.yaml", "-o", out], cwd: packageRoot)
            if r.status == 0 {
                #expect(contents(out) == ["data.img", "manifest.blocks", "manifest.json", "manifest.layout"])
                break
            }
            #expect(r.status == 3, "\(inodes) inodes: \(r.stderr)")
            #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
            #expect(contents(out).isEmpty, "\(inodes) inodes left behind: \(contents(out))")
            let named = ["manifest.blocks", "manifest.layout", "manifest.json"].first { r.stderr.contains("'\(out)/\($0)'") || r.stderr.contains("\(out)/\($0):") }
            if let named { failed.append(named) }
        }
        // Every file written after the image was once the one that did not fit.
        #expect(Set(failed) == ["manifest.blocks", "manifest.layout", "manifest.json"], "\(failed)")
    }
}
