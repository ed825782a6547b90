import Foundation
import KilnCore
import Testing

@testable import KilnPlan

@Suite("Plan options: merging, reading, defaults")
struct PlanOptionsTests {
    @Test func flagsAreTheKeysInKebabCase() {
        #expect(PlanOption.writtenBytes.flag == "--written-bytes")
        #expect(PlanOption.efsReadLimit.flag == "--efs-read-limit")
        #expect(PlanOption.azs.flag == "--azs")
        #expect(Set(PlanOption.allCases.map(\.flag)).count == PlanOption.allCases.count)
    }

    @Test func rateChoice() throws {
        #expect(try RateChoice(parsing: "auto") == .auto)
        #expect(try RateChoice(parsing: "default") == .lazy)
        #expect(try RateChoice(parsing: "250") == .provisioned(ProvisionedRate(mibPerSecond: 250)))
        #expect(try RateChoice(parsing: "300MiB/s") == .provisioned(ProvisionedRate(mibPerSecond: 300)))
        #expect(throws: ProvisionedRate.Error.outOfRange(301)) { try RateChoice(parsing: "301") }
        #expect(throws: ProvisionedRate.Error.outOfRange(99)) { try RateChoice(parsing: "99") }
        #expect(throws: ProvisionedRate.Error.self) { try RateChoice(parsing: "fast") }
        #expect(throws: ProvisionedRate.Error.self) { try RateChoice(parsing: "150.5MiB/s") }
    }

    @Test func commandLineWinsAndReplacesItsExclusivePartner() {
        var recipe = PlanOptions(name: "r")
        recipe.set(.manifest, "/tmp/m.json", origin: .recipe("r.yaml"))
        recipe.set(.deadline, "7m", origin: .recipe("r.yaml"))
        var cli = PlanOptions()
        cli.set(.writtenBytes, "20G", origin: .commandLine)
        cli.set(.deadline, "5m", origin: .commandLine)
        let merged = cli.merged(over: recipe)
        #expect(merged[.manifest] == nil)
        #expect(merged[.writtenBytes]?.text == "20G")
        #expect(merged[.deadline] == PlanSetting("5m", origin: .commandLine))
        #expect(merged.name == "r")
    }

    @Test func aBadValueIsNamedWhereItWasWritten() {
        var options = PlanOptions()
        options.set(.deadline, "7x", origin: .recipe("fleet.yaml"))
        #expect(throws: PlanError.self) { try options.validate() }
        do {
            try options.validate()
        } catch {
            #expect(error.description.hasPrefix("plan.deadline in fleet.yaml: '7x'"))
            #expect(error.exitStatus == .input)
        }
        var cli = PlanOptions()
        cli.set(.streams, "2000", origin: .commandLine)
        do { try cli.validate() } catch { #expect(error.description.hasPrefix("--streams: '2000' is not in 1...1024")) }
        cli = PlanOptions()
        cli.set(.efsMode, "turbo", origin: .commandLine)
        do { try cli.validate() } catch { #expect(error.description.contains("elastic, provisioned or bursting")) }
    }

    @Test func sizesUseTheOneParser() throws {
        var options = PlanOptions()
        options.set(.writtenBytes, "20G", origin: .commandLine)
        #expect(try options.resolve().writtenBytes == 20_000_000_000)
        options.set(.writtenBytes, "20Gi", origin: .commandLine)
        #expect(try options.resolve().writtenBytes == 20 << 30)
    }

    @Test func defaultsAreTheDocumentedOnes() throws {
        var options = PlanOptions()
        options.set(.writtenBytes, "187GB", origin: .commandLine)
        let input = try options.resolve()
        #expect(input.deadline == 420)
        #expect(input.instanceStart == 90)
        #expect(input.requests.count == 200)
        #expect(input.streams == 16)
        #expect(input.availabilityZones == 3)
        #expect(input.rate == .auto)
        #expect(input.efs.mode == .elastic)
    }

    @Test func missingFilesAreInputErrors() {
        var options = PlanOptions()
        options.set(.manifest, "/nonexistent/manifest.json", origin: .commandLine)
        do {
            _ = try options.resolve()
            Issue.record("a missing manifest must fail")
        } catch let e as KilnError {
            #expect(e.exitStatus == .input)
            #expect(e.description.contains("/nonexistent/manifest.json"))
        } catch {
            Issue.record("untyped error \(error)")
        }
    }
}
