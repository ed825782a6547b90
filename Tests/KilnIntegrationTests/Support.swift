import Foundation
import KilnDigest
import KilnTestSupport
import Testing

let packageRoot = KilnPackage.root
let fixtures = KilnPackage.fixtures
let kilnBinary = KilnPackage.kilnBinary
let envScript = packageRoot + "/scripts/lib/containerd-env.sh"
let criScript = packageRoot + "/scripts/lib/containerd-cri.py"
/// Debian's interpreter: python3-grpcio is installed for it, whatever else is on PATH.
let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"

/// Runs a program (`arguments[0]`, a path or a name) with a time limit: coreutils `timeout`, with a KILL five
/// seconds after the TERM for whatever ignores it. Output goes through files, so a daemon it leaves behind cannot
/// hold a pipe open.
@discardableResult
func run(_ arguments: [String], environment: [String: String] = [:], cwd: String = packageRoot,
         timeout seconds: Int = 120) throws -> ProcessResult {
    guard let program = arguments.first else { throw FixtureError(text: "run: no program given") }
    let runner = ProcessRunner(directory: cwd, environment: environment, timeout: ProcessTimeout(seconds: seconds, killAfter: 5))
    return try runner.run(program, Array(arguments.dropFirst()))
}

/// Runs a bash script.
@discardableResult
func bash(_ script: String, environment: [String: String] = [:], timeout: Int = 120) throws -> ProcessResult {
    try run(["/bin/bash", "-c", script], environment: environment, timeout: timeout)
}

/// What a test needs from the machine; a test whose needs are missing is skipped, saying which.
enum Need: String, CaseIterable, Sendable {
    case root, loop, overlay, containerd, runc, registry, skopeo, gpt, e2fs, bbolt
    case kiln, grpc, containerdReleases
}

enum Requirements {
    /// Why each need is missing (absent: met), probed once per test run.
    static let missing: [Need: String] = {
        var result: [Need: String] = [:]
        let probed = Need.allCases.filter { $0 != .kiln && $0 != .grpc && $0 != .containerdReleases }
        let script = "source '\(envScript)'; for n in \(probed.map(\.rawValue).joined(separator: " ")); do "
            + "m=$(env_missing $n | paste -sd ';'); echo \"$n=$m\"; done"
        let probe = try? run(["/bin/bash", "-c", script], environment: ["KILN_ENV_NO_TRAP": "1"], timeout: 60)
        for need in probed {
            guard let line = probe?.stdout.split(separator: "\n").first(where: { $0.hasPrefix(need.rawValue + "=") }) else {
                result[need] = "\(need.rawValue) (could not run \(envScript))"
                continue
            }
            let why = line.dropFirst(need.rawValue.count + 1)
            if !why.isEmpty { result[need] = String(why) }
        }
        if !FileManager.default.isExecutableFile(atPath: kilnBinary) {
            result[.kiln] = "the kiln binary \(kilnBinary) (build it: swift build --product kiln, or set KILN_BIN)"
        }
        if let why = ContainerdRelease.missing { result[.containerdReleases] = why }
        if (try? run([python, "-c", "import grpc"], timeout: 30))?.status != 0 {
            result[.grpc] = "python3-grpcio (Debian package) for the CRI client scripts/lib/containerd-cri.py"
        }
        return result
    }()

    static func missing(_ needs: [Need]) -> [String] { needs.compactMap { missing[$0] } }
}

/// Enables a test only when everything it needs is there; the skip message names what is missing.
func requires(_ needs: Need...) -> ConditionTrait {
    let missing = Requirements.missing(needs)
    return .enabled(if: missing.isEmpty, Comment(rawValue: "skipped: needs \(missing.joined(separator: "; "))"))
}

/// A containerd generation baked volumes must open in: Debian 12's own 1.6, and the 1.7 (Debian trixie) and 2.1
/// (Debian sid) builds that `scripts/lib/containerd-releases.sh` unpacks into `.build-containerd/` (or
/// `KILN_CONTAINERD_RELEASES`), run beside it with the system's runc. Bottlerocket's k8s 1.31/1.32 variants ship
/// 1.7, later ones 2.x.
struct ContainerdRelease: Sendable, CustomTestStringConvertible {
    /// "1.6", "1.7", "2.1".
    var series: String
    /// The release's bin directory (containerd, its shims, ctr); nil for the system's containerd.
    var bin: String?

    var testDescription: String { "containerd \(series)" }

    /// Whether it rewrites meta.db at start: 2.x migrates schema v3 (what 1.6 and 1.7 write) to v4.
    var migratesMetadata: Bool { series.hasPrefix("2.") }

    static let releasesDirectory = ProcessInfo.processInfo.environment["KILN_CONTAINERD_RELEASES"]
        .flatMap { $0.isEmpty ? nil : $0 } ?? packageRoot + "/.build-containerd"

    static let system = ContainerdRelease(series: "1.6", bin: nil)
    static let all: [ContainerdRelease] = [system] + ["1.7", "2.1"].map {
        ContainerdRelease(series: $0, bin: "\(releasesDirectory)/\($0)/usr/bin")
    }

    /// Whether its binaries are here (the system's is probed by the environment script instead).
    var isInstalled: Bool { bin.map { FileManager.default.isExecutableFile(atPath: $0 + "/containerd") } ?? true }

    /// The generations the parameterized tests run against: those unpacked here. What is missing is named by the
    /// skip of `ContainerdReleasesTests`, so that a machine without them shows it.
    static let installed = all.filter(\.isInstalled)

    /// Why some release is missing, or nil.
    static var missing: String? {
        let absent = all.filter { !$0.isInstalled }
        guard !absent.isEmpty else { return nil }
        return "containerd " + absent.map(\.series).joined(separator: " and ") + " in \(releasesDirectory) "
            + "(scripts/lib/containerd-releases.sh install \(releasesDirectory))"
    }
}

/// A private environment (containerd, registry, loop devices, mounts) in its own directory; everything in it
/// is stopped and removed by `close()`, and by the environment script's watchdog if this process dies.
final class TestEnvironment {
    let dir: String
    /// The containerd `start-containerd` runs.
    let containerd: ContainerdRelease
    var envDir: String { dir + "/env" }
    var socket: String { dir + "/containerd.sock" }

    init(_ name: String, containerd: ContainerdRelease = .system) throws {
        Scratch.removeStale()
        self.containerd = containerd
        dir = "/tmp/kiln-integ-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/env", withIntermediateDirectories: true)
    }

    var environment: [String: String] {
        var environment = ["KILN_ENV_DIR": envDir, "KILN_ENV_OWNER_PID": String(getpid()), "KILN_ENV_LIFETIME": "300",
                           "KILN_ENV_REMOVE": dir]
        if let bin = containerd.bin { environment["KILN_CONTAINERD_BIN"] = bin }
        return environment
    }

    /// Runs a containerd-env.sh subcommand.
    @discardableResult
    func env(_ arguments: String..., timeout: Int = 120) throws -> ProcessResult {
        try run([envScript] + arguments, environment: environment, timeout: timeout)
    }

    /// ctr against this environment's containerd.
    func ctr(_ arguments: String..., timeout: Int = 120) throws -> ProcessResult {
        try run([envScript, "ctr"] + arguments, environment: environment, timeout: timeout)
    }

    /// Copies `image` (sparse) into this environment, mounts it read-write and starts containerd on its
    /// var/lib/containerd. Returns the containerd root.
    func startContainerd(on image: String) throws -> String {
        let copy = dir + "/volume.img"
        let cp = try run(["cp", "--sparse=always", image, copy])
        try #require(cp.status == 0, "copy of \(image): \(cp)")
        let mount = try env("mount-volume", copy, dir + "/mnt")
        try #require(mount.status == 0, "mount of the baked volume: \(mount)")
        let root = dir + "/mnt/var/lib/containerd"
        try #require(FileManager.default.fileExists(atPath: root), "no var/lib/containerd in the baked volume")
        let start = try env("start-containerd", root, dir + "/state", socket, timeout: 60)
        try #require(start.status == 0, "containerd did not start: \(start)\n\(containerdLog())")
        try requireServerVersion()
        return root
    }

    /// The daemon that answers is the generation the test asked for (`ctr version`'s Server section).
    func requireServerVersion() throws {
        let version = try ctr("version", timeout: 30)
        let server = version.stdout.components(separatedBy: "Server:").last ?? ""
        let number = server.split(separator: "\n").first { $0.contains("Version:") }?
            .split(separator: " ").last.map(String.init) ?? ""
        try #require(version.status == 0 && number.hasPrefix(containerd.series + "."),
                     "expected containerd \(containerd.series), the server says: \(version)")
    }

    func containerdLog() -> String {
        (try? String(contentsOfFile: envDir + "/containerd.log", encoding: .utf8))?
            .split(separator: "\n").suffix(30).joined(separator: "\n") ?? ""
    }

    /// Waits until containerd has logged a finished garbage collection (it runs one ~100 ms after start).
    func waitForGarbageCollection(seconds: Int = 15) -> Bool {
        for _ in 0..<(seconds * 10) {
            if let log = try? String(contentsOfFile: envDir + "/containerd.log", encoding: .utf8),
               log.contains("msg=\"garbage collected\"") {
                return true
            }
            usleep(100_000)
        }
        return false
    }

    func close() {
        _ = try? env("cleanup", timeout: 90)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

// MARK: - The example images, read straight from the OCI layout (independent of kiln)

struct FixtureImage: Sendable {
    /// The reference the recipe gives the image.
    var name: String
    /// What the name points at (an index for app:v1, a manifest for tools:1.0).
    var targetDigest: String
    var configDigest: String
    var layerDigests: [String]
    var diffIDs: [String]

    /// The three names a CRI pull creates.
    var criNames: [String] {
        let repository = String(name[..<(name.lastIndex(of: ":") ?? name.endIndex)])
        return [name, "\(repository)@\(targetDigest)", configDigest]
    }

    /// chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
    var chainIDs: [String] {
        var out: [String] = []
        for diffID in diffIDs {
            if let previous = out.last {
                out.append(SHA256Hasher.hash(Array("\(previous) \(diffID)".utf8)).description)
            } else {
                out.append(diffID)
            }
        }
        return out
    }
}

enum Fixtures {
    /// The recipe's images (fixtures/recipe.yaml), linux/amd64.
    static let images: [FixtureImage] = {
        [("app:v1", "registry.example.com/app:v1"), ("tools:1.0", "registry.example.com/tools:1.0")].compactMap {
            try? image(ref: $0.0, name: $0.1)
        }
    }()

    static func blob(_ digest: String) throws -> Data {
        let hex = digest.replacingOccurrences(of: "sha256:", with: "")
        return try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/example-oci/blobs/sha256/\(hex)"))
    }

    static func json(_ data: Data) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    static func image(ref: String, name: String) throws -> FixtureImage {
        let index = try json(Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/example-oci/index.json")))
        let entries = index["manifests"] as? [[String: Any]] ?? []
        guard let top = entries.first(where: {
            ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == ref
        }), let target = top["digest"] as? String else {
            throw FixtureError(text: "ref \(ref) is not in fixtures/example-oci/index.json")
        }
        var manifest = try json(blob(target))
        if let children = manifest["manifests"] as? [[String: Any]] {
            guard let amd64 = children.first(where: {
                let p = $0["platform"] as? [String: Any]
                return p?["os"] as? String == "linux" && p?["architecture"] as? String == "amd64"
            }), let digest = amd64["digest"] as? String else {
                throw FixtureError(text: "\(ref) has no linux/amd64 manifest")
            }
            manifest = try json(blob(digest))
        }
        guard let config = (manifest["config"] as? [String: Any])?["digest"] as? String else {
            throw FixtureError(text: "\(ref): manifest without config")
        }
        let layers = (manifest["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        let rootfs = try json(blob(config))["rootfs"] as? [String: Any]
        let diffIDs = rootfs?["diff_ids"] as? [String] ?? []
        return FixtureImage(name: name, targetDigest: target, configDigest: config, layerDigests: layers, diffIDs: diffIDs)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}

// MARK: - Baked volumes, made once per test run

struct BakedVolume: Sendable {
    var image: String
    var bakeOutput: String
}

enum Baked {
    /// Holds this run's bakes and the boltcheck build; removed when the test process exits.
    static let directory: String = {
        Scratch.removeStale()
        let dir = "/tmp/kiln-integ-\(getpid())-bake"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { removeBakeDirectory() }
        return dir
    }()

    static let bottlerocket: Result<BakedVolume, FixtureError> = bake(layout: "bottlerocket")
    static let containerd: Result<BakedVolume, FixtureError> = bake(layout: "containerd")

    /// `kiln bake fixtures/recipe.yaml` with SOURCE_DATE_EPOCH set.
    static func bake(layout: String) -> Result<BakedVolume, FixtureError> {
        let out = "\(directory)/\(layout)"
        do {
            let r = try run([kilnBinary, "bake", "fixtures/recipe.yaml", "-o", out, "--layout", layout],
                            environment: ["SOURCE_DATE_EPOCH": "1700000000"], timeout: 300)
            guard r.status == 0, FileManager.default.fileExists(atPath: out + "/data.img") else {
                return .failure(FixtureError(text: "kiln bake (\(layout)) failed: \(r)"))
            }
            return .success(BakedVolume(image: out + "/data.img", bakeOutput: r.stdout + r.stderr))
        } catch {
            return .failure(FixtureError(text: "kiln bake (\(layout)) could not run: \(error)"))
        }
    }

    /// scripts/boltcheck built with Debian's bbolt (the version containerd 1.6 uses).
    static let boltcheck: Result<String, FixtureError> = {
        let bin = "\(directory)/boltcheck"
        do {
            let r = try run(["go", "build", "-o", bin, "."],
                            environment: ["GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": "\(directory)/gocache"],
                            cwd: "\(packageRoot)/scripts/boltcheck", timeout: 300)
            return r.status == 0 ? .success(bin) : .failure(FixtureError(text: "building boltcheck failed: \(r)"))
        } catch {
            return .failure(FixtureError(text: "building boltcheck could not run: \(error)"))
        }
    }()
}

private func removeBakeDirectory() {
    try? FileManager.default.removeItem(atPath: "/tmp/kiln-integ-\(getpid())-bake")
}

/// Scratch files and directories are named /tmp/kiln-integ-<pid>-...: what a dead test process left behind
/// (killed before its cleanup ran) is removed by the next run, unless something is still mounted below it.
enum Scratch {
    static func removeStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return }
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        for name in names where name.hasPrefix("kiln-integ-") {
            let rest = name.dropFirst("kiln-integ-".count)
            guard let pid = Int32(rest.prefix { $0.isNumber }), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else {
                continue
            }
            let path = "/tmp/" + name
            if mounts.contains(" \(path)/") || mounts.contains(" \(path) ") { continue }
            _ = try? run(["rm", "-rf", "--one-file-system", path], timeout: 60)
        }
    }
}

/// A bbolt dump (boltcheck's format) as decoded lines, for readable assertions and diffs.
struct BoltDump: Equatable {
    var lines: [String]

    init(lines: [String]) { self.lines = lines }

    /// meta.db's schema version line (`v1/version`, a Go varint) as a dump shows it.
    static func versionLine(_ version: Int) -> String {
        "K /7631 76657273696f6e " + String(format: "%02x", version * 2)
    }

    init(file: String) throws {
        let tool = try Baked.boltcheck.get()
        let r = try run([tool, "dump", file])
        try #require(r.status == 0, "boltcheck dump \(file) (tx.Check and ordering): \(r)")
        lines = r.stdout.split(separator: "\n").map(String.init)
    }

    /// The line's bucket path and key, hex-decoded where printable.
    static func readable(_ line: String) -> String {
        line.split(separator: " ").enumerated().map { i, field in
            guard i > 0 else { return String(field) }
            return field.split(separator: "/", omittingEmptySubsequences: false).map { decodeHex(String($0)) }
                .joined(separator: "/")
        }.joined(separator: " ")
    }

    static func decodeHex(_ hex: String) -> String {
        guard hex.count % 2 == 0, !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { return hex }
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { return hex }
            bytes.append(b)
            i = j
        }
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return hex }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether a bucket exists at the given (plain-text) path.
    func hasBucket(_ components: [String]) -> Bool {
        let path = "/" + components.map { Data($0.utf8).map { String(format: "%02x", $0) }.joined() }.joined(separator: "/")
        return lines.contains { $0.hasPrefix("B \(path) ") }
    }

    /// The value (as text) of a key in a bucket, if present.
    func value(_ components: [String], _ key: String) -> String? {
        let hex: (String) -> String = { Data($0.utf8).map { String(format: "%02x", $0) }.joined() }
        let prefix = "K /" + components.map(hex).joined(separator: "/") + " " + hex(key) + " "
        guard let line = lines.first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return BoltDump.decodeHex(String(line.dropFirst(prefix.count)))
    }
}

/// `ctr images check` rows: reference -> (status, unpacked).
func parseImagesCheck(_ output: String) -> [String: (status: String, unpacked: String)] {
    var rows: [String: (String, String)] = [:]
    for line in output.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        // REF TYPE DIGEST STATUS... SIZE... UNPACKED: status is "complete (n/n)" or "incomplete (...)".
        guard f.count >= 5, let unpacked = f.last else { continue }
        rows[f[0]] = (f[3...].prefix(2).joined(separator: " "), unpacked)
    }
    return rows
}

/// A listing of files under a containerd root: "type mode owner size path" per entry (sizes of regular files only).
func listTree(_ root: String) throws -> Set<String> {
    let r = try run(["find", root, "-printf", "%y %m %U:%G %s %P\\n"])
    try #require(r.status == 0, "find \(root): \(r)")
    return Set(r.stdout.split(separator: "\n").map { line in
        let f = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard f.count == 5 else { return String(line) }
        // Directory sizes follow the filesystem's block allocation, not containerd's doing.
        return [f[0], f[1], f[2], f[0] == "f" ? f[3] : "-", f[4]].joined(separator: " ")
    })
}
