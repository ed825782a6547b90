import Foundation
import KilnTestSupport
import Testing

@testable import KilnPlan

/// Runs python3 with a script and stdin; `output` is its stdout, then its stderr. Throws when python3 is missing.
func runPython(_ script: String, input: String) throws -> ProcessResult {
    try ProcessRunner().run("python3", ["-c", script], input: Data(input.utf8))
}

let havePyYAML: Bool = {
    (try? runPython("import yaml", input: ""))?.status == 0
}()

@Suite("Karpenter and launch-template snippets")
struct EmitTests {
    static let image = UInt64(20) * 1_073_741_824 + 1  // just over 20 GiB: needs 21 GiB

    /// Checks the YAML with PyYAML against Karpenter v1's EC2NodeClass schema for block devices.
    static let karpenterCheck = #"""
        import sys, yaml, re
        doc = yaml.safe_load(sys.stdin)
        allowed = {"volumeSize", "volumeType", "iops", "throughput", "encrypted", "kmsKeyID", "snapshotID",
                   "volumeInitializationRate", "deleteOnTermination"}
        m = doc["blockDeviceMappings"]
        assert [d["deviceName"] for d in m] == ["/dev/xvda", "/dev/xvdb"], m
        size = re.compile(r"^((?:[1-9][0-9]{0,3}|[1-4][0-9]{4}|[5][0-8][0-9]{3}|59000)Gi|(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|[6][0-3][0-9]{3}|64000)G|([1-9]||[1-5][0-7]|58)Ti|([1-9]||[1-5][0-9]|6[0-3]|64)T)$")
        for d in m:
            ebs = d["ebs"]
            assert set(ebs) <= allowed, set(ebs) - allowed
            assert size.match(ebs["volumeSize"]), ebs["volumeSize"]
            assert ebs["volumeType"] in {"standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"}
            if "volumeInitializationRate" in ebs:
                assert isinstance(ebs["volumeInitializationRate"], int) and 100 <= ebs["volumeInitializationRate"] <= 300
                assert ebs.get("snapshotID")
            if "iops" in ebs: assert 3000 <= ebs["iops"] <= 16000
            if "throughput" in ebs: assert 125 <= ebs["throughput"] <= 1000
            for key in ("encrypted", "deleteOnTermination"):
                if key in ebs: assert isinstance(ebs[key], bool), key
        data = m[1]["ebs"]
        print(data["snapshotID"], data["volumeSize"], data.get("volumeInitializationRate"), data.get("kmsKeyID"))
        """#

    @Test(.enabled(if: havePyYAML, "python3 with PyYAML is not installed"))
    func karpenterYAMLParsesAndFitsTheSchema() throws {
        let mapping = try DataVolumeMapping(
            snapshotID: "snap-0123456789abcdef0", imageBytes: Self.image, initializationRate: ProvisionedRate(mibPerSecond: 250),
            kmsKeyID: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        let yaml = mapping.karpenterYAML(header: ["image 'gpu: serving' # with: colons"])
        let result = try runPython(Self.karpenterCheck, input: yaml)
        #expect(result.status == 0, "\(result.output)\n\(yaml)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            == "snap-0123456789abcdef0 21Gi 250 arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    }

    @Test(.enabled(if: havePyYAML, "python3 with PyYAML is not installed"))
    func karpenterYAMLWithGp3Performance() throws {
        let mapping = try DataVolumeMapping(
            snapshotID: "snap-0123456789abcdef0", imageBytes: Self.image, volumeSizeGiB: 200, iops: 16000, throughput: 1000,
            initializationRate: nil, encrypted: nil)
        let result = try runPython(Self.karpenterCheck, input: mapping.karpenterYAML())
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == "snap-0123456789abcdef0 200Gi None None")
    }

    @Test func launchTemplateJSON() throws {
        let mapping = try DataVolumeMapping(
            snapshotID: "snap-0123456789abcdef0", imageBytes: Self.image, volumeSizeGiB: 100, initializationRate: ProvisionedRate(mibPerSecond: 300))
        let data = try JSONEncoder().encode(mapping.launchTemplateData())
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let mappings = try #require(object["BlockDeviceMappings"] as? [[String: Any]])
        #expect(mappings.map { $0["DeviceName"] as? String } == ["/dev/xvda", "/dev/xvdb"])
        let ebs = try #require(mappings[1]["Ebs"] as? [String: Any])
        let allowed: Set<String> = ["SnapshotId", "VolumeSize", "VolumeType", "Iops", "Throughput", "Encrypted", "KmsKeyId", "VolumeInitializationRate", "DeleteOnTermination"]
        #expect(Set(ebs.keys).isSubset(of: allowed))
        #expect(ebs["SnapshotId"] as? String == "snap-0123456789abcdef0")
        #expect(ebs["VolumeSize"] as? Int == 100)
        #expect(ebs["VolumeInitializationRate"] as? Int == 300)
        #expect(ebs["Encrypted"] as? Bool == true)
        #expect(ebs["DeleteOnTermination"] as? Bool == true)
        let os = try #require(mappings[0]["Ebs"] as? [String: Any])
        #expect(os["SnapshotId"] == nil && os["VolumeInitializationRate"] == nil)
    }

    @Test func volumeSizeCoversTheImage() throws {
        #expect(DataVolumeMapping.minimumSizeGiB(imageBytes: Self.image) == 21)
        #expect(DataVolumeMapping.minimumSizeGiB(imageBytes: UInt64(20) << 30) == 20)
        #expect(throws: DataVolumeMapping.Error.tooSmall(20, 21)) {
            try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: Self.image, volumeSizeGiB: 20)
        }
        #expect(throws: DataVolumeMapping.Error.self) {
            try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: Self.image, volumeSizeGiB: 20000)
        }
    }

    @Test func invalidValuesAreRejected() {
        #expect(throws: DataVolumeMapping.Error.snapshotID("ami-123")) { try DataVolumeMapping(snapshotID: "ami-123", imageBytes: 1) }
        #expect(throws: DataVolumeMapping.Error.self) { try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: 1, iops: 20000) }
        #expect(throws: DataVolumeMapping.Error.self) { try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: 1, throughput: 100) }
        #expect(throws: DataVolumeMapping.Error.self) { try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: 1, volumeType: "gp4") }
        #expect(throws: DataVolumeMapping.Error.kmsWithoutEncryption) {
            try DataVolumeMapping(snapshotID: "snap-0123456789abcdef0", imageBytes: 1, encrypted: false, kmsKeyID: "alias/x")
        }
        #expect(DataVolumeMapping.isSnapshotID("snap-12345678"))
        #expect(!DataVolumeMapping.isSnapshotID("snap-0123456789ABCDEF0"))
    }
}
