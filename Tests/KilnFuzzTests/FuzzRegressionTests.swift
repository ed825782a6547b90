import Foundation
import KilnTestSupport
import Testing

/// Every input under `Fuzz/regressions/TARGET/` (findings of `scripts/fuzz`, and the hostile-input catalogue's
/// seeds) goes through the same target code the fuzzer runs: each must be refused or read, never trap, crash or
/// hang. A regression here stops the test process, which fails the suite.
@Suite("fuzz regressions", .serialized)
struct FuzzRegressionTests {
    static let root = KilnPackage.root + "/Fuzz/regressions"

    static var targets: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { FuzzTarget.all[$0] != nil }.sorted()
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
        let directory = Self.root + "/" + name
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            let outcome = data.withUnsafeBytes { target.outcome($0) }
            // Refusals must say something: an empty message is as useless to a user as a crash.
            if case .refused(let message) = outcome {
                #expect(!message.isEmpty, "\(name)/\(file): refused with an empty message")
            }
        }
    }
}
