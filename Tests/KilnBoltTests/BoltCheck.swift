import Foundation
import KilnTestSupport
import Testing

/// Runs `scripts/boltcheck`, a small Go program on go.etcd.io/bbolt, as the independent judge
/// of the files KilnBolt writes and the source of files bbolt itself wrote.
enum BoltCheck {
    static let goPath = "/usr/share/gocode"
    static let bboltSources = goPath + "/src/go.etcd.io/bbolt/db.go"
    static let missingDescription = "Go and the bbolt sources (apt-get install golang-go golang-github-coreos-bbolt-dev)"
    static let missingMessage = "needs " + missingDescription

    /// `PATH`, then where Debian and the upstream tarball put Go.
    static let goBinary: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/lib/go/bin", "/usr/local/go/bin"]
        return ToolLocator(directories: dirs).find("go")
    }()

    static let isAvailable: Bool = goBinary != nil && FileManager.default.fileExists(atPath: bboltSources)

    /// The trait for tests that need the tool: skipped, saying what to install, without Go.
    static var required: ConditionTrait { .requires(Requirement(missingDescription, isMet: isAvailable)) }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let buildDirectory = FileManager.default.temporaryDirectory
        .appendingPathComponent("kiln-boltcheck-\(ProcessInfo.processInfo.processIdentifier)")

    /// The tool, built once per test process.
    static let built: Result<URL, Failure> = {
        guard let go = goBinary, isAvailable else { return .failure(Failure(description: missingMessage)) }
        let temp = FileManager.default.temporaryDirectory
        try? FileManager.default.createDirectory(at: buildDirectory, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: BoltCheck.buildDirectory) }
        let output = buildDirectory.appendingPathComponent("boltcheck")
        var environment = ["GO111MODULE": "off", "GOPATH": goPath, "GOFLAGS": ""]
        if ProcessInfo.processInfo.environment["GOCACHE"] == nil {
            environment["GOCACHE"] = temp.appendingPathComponent("kiln-boltcheck-gocache").path
        }
        do {
            _ = try run(
                go, ["build", "-o", output.path, "./scripts/boltcheck"],
                environment: environment, directory: KilnPackage.root
            )
            return .success(output)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure(description: "\(error)"))
        }
    }()

    /// Runs the tool and returns its standard output; a non-zero exit is an error carrying stderr.
    static func tool(_ arguments: [String]) throws -> String {
        let binary = try built.get()
        return try run(binary.path, arguments)
    }

    /// `boltcheck dump`: bbolt's tx.Check plus the whole tree in the dump format.
    static func dump(_ file: URL) throws -> String { try tool(["dump", file.path]) }

    /// `boltcheck stats`: the `M` line and one `S` line per bucket, keyed by path.
    static func stats(_ file: URL) throws -> (meta: [String: String], buckets: [String: [String: Int]]) {
        var meta: [String: String] = [:]
        var buckets: [String: [String: Int]] = [:]
        for line in try tool(["stats", file.path]).split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            func pairs(_ items: ArraySlice<String>) -> [String: String] {
                Dictionary(uniqueKeysWithValues: items.compactMap { item -> (String, String)? in
                    let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                    return parts.count == 2 ? (parts[0], parts[1]) : nil
                })
            }
            if fields.first == "M" { meta = pairs(fields.dropFirst()) }
            if fields.first == "S", fields.count > 2 {
                buckets[fields[1]] = pairs(fields.dropFirst(2)).compactMapValues { Int($0) }
            }
        }
        return (meta, buckets)
    }

    /// `boltcheck apply`: bbolt opens (or creates) `file` read-write and runs the script.
    static func apply(_ file: URL, _ script: BoltScript) throws {
        let scriptFile = file.appendingPathExtension("script")
        try script.text.write(to: scriptFile, atomically: true, encoding: .utf8)
        _ = try tool(["apply", file.path, scriptFile.path])
    }

    /// Runs `executable` with `environment` added to this process's and returns its standard output; a non-zero
    /// exit is an error carrying stderr.
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        directory: String? = nil
    ) throws -> String {
        let result = try ProcessRunner(directory: directory, environment: environment).run(executable, arguments)
        guard result.status == 0 else {
            let name = URL(fileURLWithPath: executable).lastPathComponent
            let command = ([name] + arguments).joined(separator: " ")
            throw Failure(description: "\(command) exited \(result.status): \(result.stderr)")
        }
        return result.stdout
    }
}
