import Foundation
import KilnTestSupport
import Testing

/// Every input under `Fuzz/regressions/TARGET/` (findings of `scripts/fuzz`, and the hostile-input catalogue's
/// seeds) goes through the same target code the fuzzer runs: each must be refused or read, never trap, crash or
/// hang. A regression here stops the test process, which fails the suite.
@Suite("fuzz regressions", .serialized)
struct FuzzRegressionTests {
    static let root = KilnPackage.root + "/Fuzz/regressions"

    /// Targets whose inputs have the same format: `apply` replays the `layer` inputs too.
    static let sharing = ["apply": ["layer"]]

    static var targets: [String] {
        let present = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { FuzzTarget.all[$0] != nil }
        return Set(present + sharing.filter { $0.value.contains(where: present.contains) }.map(\.key)).sorted()
    }

    @Test("every regression directory names a fuzz target and holds inputs")
    func directoriesAreTargets() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.root).filter { !$0.hasPrefix(".") }
        #expect(!names.isEmpty)
        for name in names {
            #expect(FuzzTarget.all[name] != nil, "Fuzz/regressions/\(name) is not a target (\(FuzzTarget.all.keys.sorted()))")
            let inputs = try FileManager.default.contentsOfDirectory(atPath: Self.root + "/" + name)
            #expect(!inputs.isEmpty, "Fuzz/regressions/\(name) is empty")
        }
    }

    @Test("regression inputs are read or refused", arguments: targets)
    func replay(target name: String) throws {
        let target = try #require(FuzzTarget.all[name])
        var files: [String] = []
        for directory in ([name] + (Self.sharing[name] ?? [])).map({ Self.root + "/" + $0 }) where FileManager.default.fileExists(atPath: directory) {
            files += try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map { directory + "/" + $0 }
        }
        #expect(!files.isEmpty)
        for path in files {
            let file = path.split(separator: "/").suffix(2).joined(separator: "/")
            let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let outcome = data.withUnsafeBytes { target.outcome($0) }
            // Refusals must say something: an empty message is as useless to a user as a crash.
            if case .refused(let message) = outcome {
                #expect(!message.isEmpty, "\(name)/\(file): refused with an empty message")
            }
        }
    }
}
