import ArgumentParser
import Foundation
import KilnAWS
import KilnCore
import KilnEBS
import KilnManifest

/// `kiln upload OUTDIR`: the baked volume becomes an EBS snapshot (and copies in other regions).
struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload a baked volume as an EBS snapshot through the EBS direct APIs.",
        discussion: """
            Sends the manifest's written blocks (every block with --encrypted) with PutSnapshotBlock, each with \
            its sha256 from the block digest sidecar, and completes the snapshot with the LINEAR checksum. The \
            snapshot ids (region -> id) are written into manifest.json.

            A volume baked with --base is uploaded incrementally: the snapshot starts from the base's snapshot in \
            the region (recorded in the base's manifest, or --parent) and only the blocks that differ from the \
            base are sent, zero blocks included where the base had data. --no-parent uploads the whole volume.

            Resumable: manifest.upload-journal beside the manifest records the snapshot and each acknowledged \
            block; running the same upload again continues that snapshot. Throttling, 5xx answers, resets and \
            timeouts are retried with jittered backoff; access, validation and quota errors stop at once (exit 3).

            Credentials as the AWS SDKs find them: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, \
            the profile (AWS_PROFILE or --profile) in ~/.aws/credentials and ~/.aws/config (keys, role_arn with \
            source_profile or credential_source, credential_process), web identity (AWS_ROLE_ARN + \
            AWS_WEB_IDENTITY_TOKEN_FILE), container credentials, IMDSv2. Region: --region, AWS_REGION, \
            AWS_DEFAULT_REGION, the profile. Endpoints: --endpoint-url, AWS_ENDPOINT_URL_EBS / _EC2 / _STS, \
            AWS_ENDPOINT_URL.
            """)

    @Argument(help: ArgumentHelp("The bake's output directory (or its manifest.json).", valueName: "outdir"))
    var outdir: String

    @Option(help: ArgumentHelp("Region of the snapshot.", valueName: "region"))
    var region: String?

    @Option(name: .customLong("copy-to-region"), help: ArgumentHelp("Copy the completed snapshot into this region too (EC2 CopySnapshot; repeatable).", valueName: "region"))
    var copyToRegion: [String] = []

    @Option(help: ArgumentHelp("Snapshot description (default: kiln RECIPE-NAME).", valueName: "text"))
    var description: String?

    @Option(name: .customLong("tag"), help: ArgumentHelp("Snapshot tag (repeatable).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Encrypt the snapshot (every block is written, zero blocks too).")
    var encrypted = false

    @Option(name: .customLong("kms-key-id"), help: ArgumentHelp("KMS key ARN for the encryption (implies --encrypted).", valueName: "arn"))
    var kmsKeyID: String?

    @Option(help: "PutSnapshotBlock requests in flight (default: 64).")
    var workers: Int = 64

    @Flag(help: "Wait until the snapshot (and each copy) is completed.")
    var wait = false

    @Option(name: .customLong("endpoint-url"), help: ArgumentHelp("Endpoint for every AWS call (EBS, EC2, STS).", valueName: "url"))
    var endpointURL: String?

    @Option(help: ArgumentHelp("Shared config profile.", valueName: "name"))
    var profile: String?

    @Flag(help: "Upload again even when the manifest records a snapshot in the region.")
    var force = false

    @Option(help: ArgumentHelp("Start the snapshot from this parent (ParentSnapshotId) and send only the blocks that differ from it: the parent must hold the bake this one was baked against with --base. Default: the base's snapshot in the region when its manifest recorded one.", valueName: "snap-id"))
    var parent: String?

    @Flag(name: .customLong("no-parent"), help: "Upload the whole volume even when the manifest's base has a snapshot in the region.")
    var noParent = false

    @OptionGroup var report: ReportOptions

    struct Report: Encodable {
        var region: String
        var snapshotId: String
        var uploaded: Bool
        var resumed: Bool
        var blocksSent: Int
        var blocksAlreadyAcknowledged: Int
        var changedBlocks: UInt64
        var checksum: String
        var volumeSizeGiB: Int
        /// The parent snapshot the upload started from (only changed blocks sent), if any.
        var parentSnapshotId: String?
        var seconds: Double
        var requestsPerSecond: Double
        var statistics: AWSCallStatistics.Snapshot?
        var snapshots: [String: String]
        var manifest: String
    }

    func run() async throws {
        guard workers >= 1 && workers <= 1024 else { throw CLIFailure.input("--workers: \(workers) is not 1..1024") }
        let manifestPath = Self.manifestPath(outdir)
        var manifest = try SnapshotManifest.load(path: manifestPath)
        let parsedTags = try tags.map { text -> EBSClient.Tag in
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw CLIFailure.input("--tag: '\(text)' is not KEY=VALUE") }
            return EBSClient.Tag(key: String(text[..<eq]), value: String(text[text.index(after: eq)...]))
        }
        if let kmsKeyID, !kmsKeyID.hasPrefix("arn:") {
            throw CLIFailure.input("--kms-key-id: '\(kmsKeyID)' is not a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); StartSnapshot takes ARNs only")
        }
        if let description, description.utf8.count > 255 { throw CLIFailure.input("--description: longer than 255 bytes") }
        if parent != nil && noParent { throw CLIFailure.input("give either --parent or --no-parent, not both") }
        if let parent, !parent.hasPrefix("snap-") { throw CLIFailure.input("--parent: '\(parent)' is not a snapshot id (snap-...)") }
        let session = try AWSSession(region: region, profile: profile, endpointURL: endpointURL, environment: ProcessInfo.processInfo.environment,
                                     maxConnections: workers)
        let quiet = report.quiet || report.json
        // The parent: asked for, or the snapshot of the base in this region, as the base's manifest recorded it.
        let recordedParent = manifest.base?.snapshots?[session.region]
        let parentID = noParent ? nil : (parent ?? recordedParent)
        if let parentID {
            guard manifest.base != nil else {
                await session.shutdown()
                throw CLIFailure.input("--parent \(parentID): \(manifestPath) was not baked with --base, so kiln does not know which blocks differ from the parent; bake with --base PREV (the bake \(parentID) holds)")
            }
            if let recordedParent, recordedParent != parentID {
                await session.shutdown()
                throw CLIFailure.input("--parent \(parentID): the base's manifest records \(recordedParent) as its snapshot in \(session.region); sending only the changes onto another snapshot would give a wrong volume")
            }
            if encrypted {
                // The EBS API refuses Encrypted together with ParentSnapshotId: a child has its parent's encryption
                // (or --kms-key-id's key when the parent is encrypted).
                await session.shutdown()
                throw CLIFailure.input("--encrypted cannot be combined with a parent snapshot: StartSnapshot refuses Encrypted with ParentSnapshotId; the new snapshot is encrypted when its parent is (give --kms-key-id for another key), or upload the whole volume with --no-parent")
            }
            if recordedParent == nil {
                Console.warning("\(parentID) is taken on trust as the snapshot of base \(manifest.base?.manifest.description ?? "?"): its manifest recorded no snapshot in \(session.region)")
            }
        }
        let encrypt = parentID == nil && (encrypted || kmsKeyID != nil)
        let plan: UploadPlan
        do { plan = try UploadPlan(manifestPath: manifestPath, manifest: manifest, encrypted: encrypt, changesOnly: parentID != nil) } catch {
            await session.shutdown()
            throw error
        }
        let started = Date()
        do {
            let retryLog = RetryLog(quiet: quiet)
            var ebsClient = try session.client(service: "ebs")
            ebsClient.onRetry = { error, wait in retryLog.note(error, wait) }
            let ebs = EBSClient(client: ebsClient)
            let desc = description ?? "kiln \(manifest.recipe.name)"
            var result: SnapshotUploader.Result?
            let snapshotID: String
            if let existing = manifest.snapshots?[session.region], !force {
                Console.progress("manifest already records \(existing) in \(session.region) (--force uploads again)", quiet: quiet)
                snapshotID = existing
            } else {
                let journalPath = URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(UploadJournal.fileName).path
                let uploader = SnapshotUploader(
                    plan: plan, ebs: ebs, region: session.region, journalPath: journalPath, workers: workers,
                    start: EBSClient.StartRequest(volumeSizeGiB: plan.volumeSizeGiB, description: desc, tags: parsedTags, encrypted: encrypt,
                                                  kmsKeyARN: kmsKeyID, clientToken: "", parentSnapshotID: parentID))
                if let parentID {
                    Console.progress("starting from parent \(parentID): \(plan.blocks.count) changed blocks of \(manifest.blocks.written) to send", quiet: quiet)
                }
                let counter = ProgressCounter()
                counter.start(phase: "blocks", item: session.region)
                let display = ProgressDisplay.start(counter, label: "upload", quiet: quiet)
                defer { display?.stop() }
                let blockSize = Int64(BlockHasher.ebsBlockSize)
                let done = try await uploader.run(
                    progress: { p in
                        counter.set(doneBytes: Int64(p.alreadyAcknowledged + p.sent) * blockSize, totalBytes: Int64(p.total) * blockSize)
                    },
                    warn: { Console.warning($0) },
                    onSnapshot: { id, resumed in
                        Console.progress(resumed ? "resuming snapshot \(id) in \(session.region)" : "started snapshot \(id) in \(session.region)", quiet: quiet)
                    })
                display?.stop()
                result = done
                snapshotID = done.snapshotId
                manifest.snapshotId = snapshotID
                manifest.snapshots = (manifest.snapshots ?? [:]).merging([session.region: snapshotID]) { _, new in new }
                try ManifestWriter.write(manifest, to: manifestPath)
                UploadJournal.remove(path: journalPath)
                Console.progress("completed \(snapshotID): \(done.blocksSent) blocks sent (\(done.blocksAlreadyAcknowledged) from an earlier run), LINEAR \(done.checksum), \(String(format: "%.1f", done.seconds)) s", quiet: quiet)
            }
            let ec2 = EC2Client(client: try session.client(service: "ec2"))
            let copyRegions = copyToRegion.filter { $0 != session.region && (force || manifest.snapshots?[$0] == nil) }
            if wait || !copyRegions.isEmpty {
                Console.progress("waiting for \(snapshotID) to complete", quiet: quiet)
                _ = try await ec2.waitUntilCompleted(snapshotID)
            }
            if !copyRegions.isEmpty {
                let source = session.region
                let copies = try await withThrowingTaskGroup(of: (String, String).self) { group in
                    for target in copyRegions {
                        let client = EC2Client(client: try session.client(service: "ec2", region: target))
                        group.addTask {
                            let id = try await client.copySnapshot(sourceRegion: source, sourceSnapshotID: snapshotID, description: desc,
                                                                   encrypted: encrypt, kmsKeyID: nil, tags: parsedTags)
                            Console.progress("copying \(snapshotID) to \(target): \(id)", quiet: quiet)
                            if wait { _ = try await client.waitUntilCompleted(id) }
                            return (target, id)
                        }
                    }
                    var out: [String: String] = [:]
                    for try await (r, id) in group { out[r] = id }
                    return out
                }
                manifest.snapshots = (manifest.snapshots ?? [:]).merging(copies) { _, new in new }
                try ManifestWriter.write(manifest, to: manifestPath)
            }
            await session.shutdown()
            let seconds = Date().timeIntervalSince(started)
            let stats = result?.statistics
            let out = Report(region: session.region, snapshotId: snapshotID, uploaded: result != nil, resumed: result?.resumed ?? false,
                             blocksSent: result?.blocksSent ?? 0, blocksAlreadyAcknowledged: result?.blocksAlreadyAcknowledged ?? 0,
                             changedBlocks: result?.changedBlocks ?? 0, checksum: plan.checksum, volumeSizeGiB: plan.volumeSizeGiB,
                             parentSnapshotId: result == nil ? nil : parentID,
                             seconds: seconds, requestsPerSecond: result.map { $0.seconds > 0 ? Double($0.blocksSent) / $0.seconds : 0 } ?? 0,
                             statistics: stats, snapshots: manifest.snapshots ?? [:], manifest: manifestPath)
            if report.json {
                try printJSON(out)
            } else {
                for (r, id) in (manifest.snapshots ?? [:]).sorted(by: { $0.key < $1.key }) { print("\(r)\t\(id)") }
            }
        } catch {
            await session.shutdown()
            throw error
        }
    }

    /// `OUTDIR/manifest.json`, or the argument itself when it names a file.
    static func manifestPath(_ argument: String) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory), !isDirectory.boolValue { return argument }
        return URL(fileURLWithPath: argument).appendingPathComponent(SnapshotManifest.fileName).path
    }
}

/// Retries, as lines on stderr: each of the first 20, then one line per 100, so a retry storm is seen but not flooding.
final class RetryLog: @unchecked Sendable {
    let quiet: Bool
    let lock = NSLock()
    var count = 0

    init(quiet: Bool) { self.quiet = quiet }

    func note(_ error: AWSError, _ wait: TimeInterval) {
        lock.lock()
        count += 1
        let n = count
        lock.unlock()
        guard !quiet, n <= 20 || n % 100 == 0 else { return }
        Console.progress("retry \(n): \(error) (again in \(String(format: "%.1f", wait)) s)", quiet: false)
    }
}
