import ArgumentParser
import Foundation
import KilnCore
import KilnManifest

/// A command-line argument that is a baked volume's file rather than an image source.
enum VolumeInput {
    /// A kiln snapshot manifest (JSON with `schemaVersion` and `blocks`).
    case manifest(String)
    /// A disk image: a protective MBR, a GPT or an ext-family superblock where a disk or filesystem has them.
    case image(String)

    /// What `argument` is, or nil when it is not a regular file of either kind (then it is an image source).
    /// With `assumeImage` (a manifest was named for it), any regular file that is not a manifest or a tar is
    /// taken as a disk image, whatever its first bytes.
    static func detect(_ argument: String, assumeImage: Bool = false) -> VolumeInput? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: argument)
        else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 4096), !head.isEmpty else { return nil }
        let bytes = [UInt8](head)
        if let first = bytes.first(where: { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }), first == UInt8(ascii: "{") {
            // Manifests are small by design. Any of the keys only a kiln manifest has makes it one, so that a
            // manifest missing the others, or one that does not parse, is loaded and told what is wrong with it
            // (an OCI index.json has a schemaVersion too, so that key alone says nothing).
            guard let data = FileManager.default.contents(atPath: argument) else { return nil }
            let ownKeys = ["kiln", "blocks", "blockDigests"]
            if let object = try? JSONSerialization.jsonObject(with: data) {
                guard let top = object as? [String: Any] else { return nil }
                return ownKeys.contains { top[$0] != nil } ? .manifest(argument) : nil
            }
            let text = String(decoding: data, as: UTF8.self)
            return ownKeys.contains { text.contains("\"\($0)\"") } ? .manifest(argument) : nil
        }
        func at(_ offset: Int, _ expected: [UInt8]) -> Bool {
            bytes.count >= offset + expected.count && Array(bytes[offset..<(offset + expected.count)]) == expected
        }
        if at(257, Array("ustar".utf8)) { return nil }
        if assumeImage || at(510, [0x55, 0xAA]) || at(512, Array("EFI PART".utf8)) || at(1080, [0x53, 0xEF]) {
            return .image(argument)
        }
        return nil
    }
}

/// `kiln verify data.img [--manifest manifest.json]` and `kiln verify manifest.json`.
struct VerifyVolume {
    var input: VolumeInput
    var manifest: String?
    var fileDigest: Bool
    var jobs: Int
    var report: ReportOptions

    func run() throws {
        switch input {
        case .manifest(let path):
            if manifest != nil { throw CLIFailure.input("--manifest: give a disk image to check against it, not a manifest") }
            try verifyManifest(path)
        case .image(let path):
            try verifyImage(path)
        }
    }

    func verifyManifest(_ path: String) throws {
        let check = try ManifestVerifier.checkManifest(path: path)
        if report.json {
            try printJSON(check)
        } else {
            for p in check.problems { print("FAIL: \(p)") }
            if check.ok {
                print("PASS: \(path) and \(check.sidecar) agree: \(check.entries) written blocks, LINEAR \(check.checksum)")
            } else {
                print("\(path): \(check.problems.count) problem\(check.problems.count == 1 ? "" : "s") against \(check.sidecar)")
            }
        }
        if !check.ok { throw ExitCode(1) }
    }

    func verifyImage(_ image: String) throws {
        let manifestPath = manifest ?? URL(fileURLWithPath: image).deletingLastPathComponent()
            .appendingPathComponent(SnapshotManifest.fileName).path
        if manifest == nil, !FileManager.default.fileExists(atPath: manifestPath) {
            throw CLIFailure.input("no manifest beside '\(image)' (looked for '\(manifestPath)'); give one with --manifest")
        }
        let started = Date()
        let counter = ProgressCounter()
        let display = ProgressDisplay.start(counter, label: "verify", quiet: report.quiet || report.json)
        let verifier = ManifestVerifier(threads: max(1, jobs), fileDigest: fileDigest, progress: counter)
        let result: VolumeVerification
        do {
            result = try verifier.verify(image: image, manifestPath: manifestPath)
            counter.finish()
            display?.stop()
        } catch {
            display?.stop()
            throw error
        }
        let seconds = Date().timeIntervalSince(started)
        if report.json {
            try printJSON(VolumeVerifyReport(result: result, seconds: (seconds * 1000).rounded() / 1000))
        } else {
            printText(result, seconds: seconds)
        }
        if !result.ok { throw ExitCode(1) }
    }

    /// Text lines are capped so a wholly wrong image does not flood the terminal; `--json` lists everything.
    static let textRangeLimit = 200

    func printText(_ r: VolumeVerification, seconds: Double) {
        for range in r.badRanges.prefix(Self.textRangeLimit) {
            // The figures come from the sidecar, which may be hostile: saturate rather than trap.
            let end = range.firstBlock.addingReportingOverflow(range.blockCount)
            let last = end.overflow ? UInt64.max : end.partialValue &- 1
            let lastByte = range.byteOffset.addingReportingOverflow(range.byteLength)
            let blocks = range.blockCount == 1 ? "block \(range.firstBlock)" : "blocks \(range.firstBlock)-\(last)"
            print("FAIL: \(blocks) (bytes \(range.byteOffset)-\(lastByte.overflow ? UInt64.max : lastByte.partialValue &- 1)): \(range.problem)")
            for f in range.owners.files { print("      file      \(f.path)\(f.layer.map { " (\($0))" } ?? "")") }
            if range.owners.moreFiles == true { print("      files     more listed files than shown (over \(FileMapIndex.runLimit) runs)") }
            if range.owners.unlistedFiles { print("      files     smaller files not listed in the manifest") }
            for l in range.owners.layers { print("      layer     \(l)") }
            for m in range.owners.regions { print("      metadata  \(m)") }
            if range.owners.isEmpty {
                print(r.mappedFiles > 0 ? "      free space (no file or metadata the manifest records lies here)" : "      (the manifest has no file map)")
            }
        }
        if r.badRanges.count > Self.textRangeLimit {
            print("FAIL: ... and \(r.badRanges.count - Self.textRangeLimit) more bad ranges (--json lists them all)")
        }
        for p in r.problems { print("FAIL: \(p)") }
        let digest: String
        switch r.fileDigest {
        case .matched: digest = "file sha256 matches"
        case .mismatched: digest = "file sha256 differs"
        case .notChecked: digest = r.ok ? "file sha256 implied by the blocks (--file-digest recomputes it)" : "file sha256 not recomputed"
        case .notRecorded: digest = "file sha256 \(r.actualFileDigest.map(\.description) ?? "?") (the manifest records none)"
        }
        let summary = "\(r.actualWritten) written blocks of \(r.blockCount) (\(formatBytes(Int64(r.actualWritten) * Int64(r.blockSize)))), \(digest), \(String(format: "%.2f", seconds)) s"
        if r.ok {
            print("PASS: \(r.image) matches \(r.manifest): \(summary), LINEAR \(r.actualChecksum)")
        } else {
            print("verified \(r.image) against \(r.manifest): \(summary): \(r.badBlocks) bad block\(r.badBlocks == 1 ? "" : "s") in \(r.badRanges.count) range\(r.badRanges.count == 1 ? "" : "s"), \(r.problems.count) other problem\(r.problems.count == 1 ? "" : "s")")
        }
    }
}

/// `kiln verify data.img --json`.
struct VolumeVerifyReport: Encodable {
    var result: VolumeVerification
    var seconds: Double

    func encode(to encoder: Encoder) throws {
        try result.encode(to: encoder)
        enum Keys: String, CodingKey { case seconds }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(seconds, forKey: .seconds)
    }
}
