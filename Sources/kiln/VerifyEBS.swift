import ArgumentParser
import Foundation
import KilnAWS
import KilnEBS
import KilnManifest

/// Options of `kiln verify` for an EBS snapshot.
struct VerifySnapshotOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("EBS snapshot to check against the manifest (or give ebs://REGION/snap-...).", valueName: "snap-id"))
    var snapshot: String?

    @Flag(name: .long, help: "For an EBS snapshot: fetch every block (GetSnapshotBlock) and compare checksums and bytes.")
    var download = false

    @Option(name: .long, help: ArgumentHelp("For an EBS snapshot: its region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile).", valueName: "region"))
    var region: String?

    @Option(name: .customLong("endpoint-url"), help: ArgumentHelp("For an EBS snapshot: the EBS endpoint.", valueName: "url"))
    var endpointURL: String?

    @Option(name: .long, help: ArgumentHelp("For an EBS snapshot: the shared config profile.", valueName: "name"))
    var profile: String?

    struct Target {
        var region: String?
        var snapshotID: String
    }

    /// The snapshot to check, from `ebs://REGION/snap-...` or `--snapshot`; nil when verifying something else.
    func target(_ sources: [String]) throws -> Target? {
        if let first = sources.first, first.hasPrefix("ebs://") {
            guard sources.count == 1, snapshot == nil else { throw CLIFailure.input("verify: give one ebs://REGION/snap-... and nothing else") }
            let rest = first.dropFirst("ebs://".count).split(separator: "/", omittingEmptySubsequences: false)
            guard rest.count == 2, !rest[0].isEmpty, rest[1].hasPrefix("snap-") else {
                throw CLIFailure.input("'\(first)' is not ebs://REGION/snap-ID")
            }
            if let region, region != String(rest[0]) { throw CLIFailure.input("--region \(region) contradicts '\(first)'") }
            return Target(region: String(rest[0]), snapshotID: String(rest[1]))
        }
        if let snapshot {
            guard sources.isEmpty else { throw CLIFailure.input("--snapshot: give no other source") }
            guard snapshot.hasPrefix("snap-") else { throw CLIFailure.input("--snapshot: '\(snapshot)' is not a snapshot id (snap-...)") }
            return Target(region: region, snapshotID: snapshot)
        }
        if download || endpointURL != nil || profile != nil {
            throw CLIFailure.input("--download, --endpoint-url and --profile apply to an EBS snapshot (ebs://REGION/snap-... or --snapshot)")
        }
        return nil
    }
}

/// `kiln verify ebs://REGION/snap-...`: the snapshot's blocks against the manifest (and data.img with --download).
struct VerifyEBS {
    var target: VerifySnapshotOptions.Target
    var options: VerifySnapshotOptions
    var manifest: String?
    var jobs: Int
    var report: ReportOptions

    func run() async throws {
        let path = manifest ?? SnapshotManifest.fileName
        let loaded = try SnapshotManifest.load(path: path)
        let session = try AWSSession(region: target.region ?? options.region, profile: options.profile, endpointURL: options.endpointURL,
                                     environment: ProcessInfo.processInfo.environment, maxConnections: 32)
        let result: SnapshotCheck.Report
        do {
            let check = SnapshotCheck(snapshotID: target.snapshotID, ebs: EBSClient(client: try session.client(service: "ebs")), manifest: loaded,
                                      manifestPath: path, workers: max(8, min(64, jobs * 8)))
            result = try await check.run(download: options.download)
            await session.shutdown()
        } catch {
            await session.shutdown()
            throw error
        }
        if report.json {
            try printJSON(result)
        } else {
            let what = result.allBlocks ? "every block of the volume" : "the manifest's \(result.expectedBlocks) written blocks"
            for i in result.missing.prefix(20) { print("FAIL: block \(i) is written in the manifest but not in \(target.snapshotID)") }
            for i in result.unexpected.prefix(20) { print("FAIL: block \(i) is in \(target.snapshotID) but not written in the manifest") }
            for m in result.mismatches.prefix(20) { print("FAIL: block \(m.index): \(m.problem)") }
            if result.ok {
                print("ok: \(target.snapshotID) in \(session.region) holds \(what) (\(result.listedBlocks) listed)"
                      + (options.download ? ", \(result.downloaded) downloaded and equal to the manifest and \(loaded.volume.file)" : ""))
            } else {
                print("FAIL: \(target.snapshotID): \(result.missing.count) missing, \(result.unexpected.count) unexpected, \(result.mismatches.count) differing blocks")
            }
        }
        if !result.ok { throw ExitCode(1) }
    }
}
