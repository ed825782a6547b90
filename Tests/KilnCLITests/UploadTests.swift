import Foundation
import KilnTestSupport
import Testing

@Suite("kiln upload against moto", .requires(.kilnBinary, AWSStandin.requirement))
struct UploadTests {
    static func bake(_ dir: TemporaryDirectory) throws -> (out: String, written: Int) {
        let out = dir.path("out")
        let r = try kiln("bake", fixtures + "/recipe.yaml", "-o", out)
        #expect(r.succeeded, "\(r)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any] ?? [:]
        return (out, (m["blocks"] as? [String: Any])?["written"] as? Int ?? -1)
    }

    static func manifest(_ out: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any] ?? [:]
    }

    @Test("written blocks only, each signed as botocore signs; read back equal to data.img; ids in the manifest; verify ebs:// and emit --region")
    func uploadReadBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin()
        defer { standin.stop() }
        let (out, written) = try Self.bake(dir)
        let before = try Self.manifest(out)
        let env = standin.environment()
        let r = try run(kilnBinary, ["upload", out, "--endpoint-url", standin.endpoint, "--tag", "team=ml", "--copy-to-region", "us-west-2", "--wait", "--json"],
                        environment: env)
        #expect(r.succeeded, "\(r)")
        #expect(!r.output.contains(AWSStandin.secretKey))
        let report = try JSONSerialization.jsonObject(with: r.standardOutput) as? [String: Any] ?? [:]
        let id = report["snapshotId"] as? String ?? ""
        let requests = try standin.requests()
        let puts = requests.filter { $0.op == "PutSnapshotBlock" }
        #expect(puts.count == written)
        #expect(Set(puts.map(\.path)).count == written)
        #expect(requests.allSatisfy { $0.signature == "ok" }, "\(requests.filter { $0.signature != "ok" }.map { "\($0.op) \($0.signature ?? "unsigned")" })")
        #expect(requests.filter { $0.op == "CopySnapshot" }.count == 1)
        // The manifest gained the ids and nothing else changed.
        var after = try Self.manifest(out)
        let snapshots = after["snapshots"] as? [String: String] ?? [:]
        #expect(after["snapshotId"] as? String == id && snapshots["us-east-1"] == id && snapshots["us-west-2"]?.hasPrefix("snap-") == true)
        after.removeValue(forKey: "snapshotId")
        after.removeValue(forKey: "snapshots")
        #expect(NSDictionary(dictionary: after).isEqual(to: before))
        #expect(!FileManager.default.fileExists(atPath: out + "/manifest.upload-journal"))
        // Every block read back (boto3, straight from moto) equals data.img's.
        let check = try standin.boto3("""
            ebs = client('ebs')
            img = open('\(out)/data.img', 'rb').read()
            blocks = ebs.list_snapshot_blocks(SnapshotId='\(id)')['Blocks']
            bad = 0
            for b in blocks:
                i = int(b['BlockIndex'])
                data = ebs.get_snapshot_block(SnapshotId='\(id)', BlockIndex=i, BlockToken=b['BlockToken'])['BlockData'].read()
                want = img[i*524288:(i+1)*524288].ljust(524288, b'\\0')
                bad += data != want
            print(len(blocks), bad)
            """)
        #expect(check.trimmingCharacters(in: .whitespacesAndNewlines) == "\(written) 0")
        let verify = try run(kilnBinary, ["verify", "ebs://us-east-1/\(id)", "--manifest", out + "/manifest.json", "--download", "--endpoint-url", standin.endpoint],
                             environment: env)
        #expect(verify.succeeded && verify.stdout.contains("\(written) downloaded"), "\(verify)")
        let emit = try kiln("emit", "launch-template", "--manifest", out + "/manifest.json", "--region", "us-west-2")
        #expect(emit.succeeded && emit.stdout.contains(snapshots["us-west-2"] ?? "?"), "\(emit)")
        // Again: the manifest already has it; nothing is sent.
        let again = try run(kilnBinary, ["upload", out, "--endpoint-url", standin.endpoint, "-q"], environment: env)
        #expect(again.succeeded)
        #expect(try standin.requests().filter { $0.op == "PutSnapshotBlock" }.count == written)
    }

    @Test("a volume baked with --base goes onto the base's snapshot: only the changed blocks are sent, and the snapshot reads back as data.img")
    func incrementalUpload() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin()
        defer { standin.stop() }
        let env = standin.environment()
        let v1 = dir.path("v1"), v2 = dir.path("v2")
        let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
        try #require(try run(kilnBinary, ["bake", "-q", "--source", "oci:\(fixtures)/example-oci:tools:1.0", "--name", "registry.example.com/tools:1.0",
                                          "-o", v1], environment: epoch).succeeded)
        let up1 = try run(kilnBinary, ["upload", v1, "--endpoint-url", standin.endpoint, "--json"], environment: env)
        try #require(up1.succeeded, "\(up1)")
        let id1 = (try JSONSerialization.jsonObject(with: up1.standardOutput) as? [String: Any])?["snapshotId"] as? String ?? ""
        let written1 = (try Self.manifest(v1)["blocks"] as? [String: Any])?["written"] as? Int ?? -1

        // Without --base there is nothing to send incrementally.
        let noBase = try run(kilnBinary, ["upload", v1, "--endpoint-url", standin.endpoint, "--parent", id1, "--force"], environment: env)
        #expect(noBase.status == 2 && noBase.stderr.contains("--base"), "\(noBase)")

        let bake2 = try run(kilnBinary, ["bake", "-q", packageRoot + "/fixtures/recipe.yaml", "-o", v2, "--base", v1], environment: epoch)
        try #require(bake2.succeeded, "\(bake2)")
        let base = try Self.manifest(v2)["base"] as? [String: Any] ?? [:]
        let changed = base["changedBlocks"] as? Int ?? -1
        #expect((base["snapshots"] as? [String: String])?["us-east-1"] == id1, "\(base)")
        let encrypted = try run(kilnBinary, ["upload", v2, "--endpoint-url", standin.endpoint, "--encrypted"], environment: env)
        #expect(encrypted.status == 2 && encrypted.stderr.contains("ParentSnapshotId"), "\(encrypted)")

        let seen = try standin.requests().count
        let up2 = try run(kilnBinary, ["upload", v2, "--endpoint-url", standin.endpoint, "--json"], environment: env)
        try #require(up2.succeeded, "\(up2)")
        let report = try JSONSerialization.jsonObject(with: up2.standardOutput) as? [String: Any] ?? [:]
        let id2 = report["snapshotId"] as? String ?? ""
        #expect(report["parentSnapshotId"] as? String == id1 && report["blocksSent"] as? Int == changed, "\(report)")
        let requests = try standin.requests().dropFirst(seen)
        let start = requests.first { $0.op == "StartSnapshot" }
        #expect(start?.parent == id1 && start?.inheritedBlocks == written1, "\(String(describing: start))")
        #expect(requests.filter { $0.op == "PutSnapshotBlock" }.count == changed)
        #expect(changed > 0 && changed < written1, "\(changed) of \(written1)")

        // The child, read back block by block straight from moto, is v2's data.img: listed blocks equal it, and
        // every block it does not list is zero in the image.
        let check = try standin.boto3("""
            ebs = client('ebs')
            img = open('\(v2)/data.img', 'rb').read()
            listed = {int(b['BlockIndex']): b['BlockToken'] for b in ebs.list_snapshot_blocks(SnapshotId='\(id2)')['Blocks']}
            bad = 0
            for i in range((len(img) + 524287) // 524288):
                want = img[i*524288:(i+1)*524288].ljust(524288, b'\\0')
                if i in listed:
                    got = ebs.get_snapshot_block(SnapshotId='\(id2)', BlockIndex=i, BlockToken=listed[i])['BlockData'].read()
                else:
                    got = bytes(524288)
                bad += got != want
            print(bad)
            """)
        #expect(check.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(check)")
        let verify = try run(kilnBinary, ["verify", "ebs://us-east-1/\(id2)", "--manifest", v2 + "/manifest.json", "--download",
                                          "--endpoint-url", standin.endpoint], environment: env)
        #expect(verify.succeeded, "\(verify)")
    }

    @Test("429, throttling, 503, resets and slow answers are retried; the snapshot is exact")
    func faults() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin(["--fault", "PutSnapshotBlock:429:3", "--fault", "PutSnapshotBlock:503:4", "--fault", "PutSnapshotBlock:reset:5",
                                      "--fault", "PutSnapshotBlock:throttle400:7", "--fault", "PutSnapshotBlock:slow:6", "--slow-seconds", "1"])
        defer { standin.stop() }
        let (out, written) = try Self.bake(dir)
        let r = try run(kilnBinary, ["upload", out, "--endpoint-url", standin.endpoint, "--json"], environment: standin.environment())
        #expect(r.succeeded, "\(r)")
        let id = try Self.manifest(out)["snapshotId"] as? String ?? ""
        let requests = try standin.requests()
        #expect(requests.contains { $0.fault == "reset" } && requests.contains { $0.fault == "429" })
        let verify = try run(kilnBinary, ["verify", "ebs://us-east-1/\(id)", "--manifest", out + "/manifest.json", "--download", "--endpoint-url", standin.endpoint],
                             environment: standin.environment())
        #expect(verify.succeeded && verify.stdout.contains("\(written) downloaded"), "\(verify)")
    }

    @Test("AccessDenied stops at once with the API's message, exit 3")
    func accessDenied() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin(["--fault", "StartSnapshot:403:1"])
        defer { standin.stop() }
        let (out, _) = try Self.bake(dir)
        let r = try run(kilnBinary, ["upload", out, "--endpoint-url", standin.endpoint], environment: standin.environment())
        #expect(r.status == 3, "\(r)")
        #expect(r.stderr.contains("AccessDeniedException") && r.stderr.contains("not authorized to perform: ebs:StartSnapshot"), "\(r)")
        #expect(try standin.requests().filter { $0.op == "StartSnapshot" }.count == 1)
        #expect(try Self.manifest(out)["snapshotId"] == nil)
    }

    @Test("a sidecar whose block count is not the image's is refused before any request, even when the manifest agrees with it")
    func sidecarCountingOtherBlocks() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin([])
        defer { standin.stop() }
        let (out, _) = try Self.bake(dir)
        // Header bytes 16..<24 are the block count; the manifest is made to agree (count, sidecar sha256 and size).
        let patched = try run("/usr/bin/python3", ["-c", """
            import hashlib, json, struct, sys
            out = sys.argv[1]
            b = bytearray(open(out + "/manifest.blocks", "rb").read())
            b[16:24] = struct.pack("<Q", 2**64 - 1)
            open(out + "/manifest.blocks", "wb").write(b)
            m = json.load(open(out + "/manifest.json"))
            m["blocks"]["count"] = 2**64 - 1
            m["blockDigests"]["digest"] = "sha256:" + hashlib.sha256(b).hexdigest()
            m["blockDigests"]["size"] = len(b)
            json.dump(m, open(out + "/manifest.json", "w"))
            """, out])
        try #require(patched.succeeded, "\(patched)")
        let r = try run(kilnBinary, ["upload", out, "--encrypted", "--endpoint-url", standin.endpoint],
                        environment: standin.environment())
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("manifest.blocks") && r.stderr.contains("counts 18446744073709551615 blocks"), "\(r)")
        #expect(try standin.requests().isEmpty)
    }

    @Test("kill -9 mid-upload, then upload again: the same snapshot, each remaining block sent once")
    func resumeAfterKill() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let standin = try AWSStandin(["--delay", "PutSnapshotBlock:0.5"])
        defer { standin.stop() }
        let (out, written) = try Self.bake(dir)
        let journal = out + "/manifest.upload-journal"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kilnBinary)
        process.arguments = ["upload", out, "--endpoint-url", standin.endpoint, "--workers", "2", "-q"]
        process.environment = ProcessInfo.processInfo.environment.merging(standin.environment()) { _, n in n }
        try process.run()
        func acked() -> Set<String> {
            let text = (try? String(contentsOfFile: journal, encoding: .utf8)) ?? ""
            return Set(text.split(separator: "\n").filter { $0.hasPrefix("+") }.map { String($0.dropFirst()) })
        }
        let deadline = Date().addingTimeInterval(60)
        while acked().count < 3 && Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let killedAt = Date().timeIntervalSince1970
        let done = acked()
        #expect(done.count >= 3 && done.count < written)
        let header = ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").first.map(String.init) ?? ""
        usleep(1_500_000)  // requests in flight at the kill reach the server
        let r = try run(kilnBinary, ["upload", out, "--endpoint-url", standin.endpoint, "--json"], environment: standin.environment())
        #expect(r.succeeded, "\(r)")
        let report = try JSONSerialization.jsonObject(with: r.standardOutput) as? [String: Any] ?? [:]
        let id = report["snapshotId"] as? String ?? "?"
        #expect(report["resumed"] as? Bool == true && header.contains(id))
        let second = try standin.requests().filter { $0.op == "PutSnapshotBlock" && $0.time > killedAt + 1 }
        let indexes = second.map { String($0.path.split(separator: "/").last ?? "") }
        #expect(indexes.count == written - done.count, "\(indexes) after \(done)")
        #expect(Set(indexes).isDisjoint(with: done) && Set(indexes).count == indexes.count)
        #expect(try standin.requests().filter { $0.op == "StartSnapshot" }.count == 1)
    }
}
