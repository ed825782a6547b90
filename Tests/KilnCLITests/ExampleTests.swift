import Foundation
import KilnTestSupport
import Testing

/// docs/examples: the GitHub Actions workflow and the Argo Workflows template both run
/// docs/examples/bake-and-upload.sh; the script runs here against the local stand-ins (moto for EBS and EC2, a
/// docker-registry with htpasswd auth for the image), so the examples cannot rot.
@Suite("docs/examples run", .requires(.kilnBinary, AWSStandin.requirement, RegistryStandin.requirement))
struct ExampleTests {
    static let examples = KilnPackage.root + "/docs/examples"

    @Test func theWorkflowAndTheTemplateRunTheScript() throws {
        let workflow = try String(contentsOfFile: Self.examples + "/github-actions.yml", encoding: .utf8)
        #expect(workflow.contains("run: kiln/docs/examples/bake-and-upload.sh"))
        #expect(workflow.contains("id-token: write") && workflow.contains("AWS_WEB_IDENTITY_TOKEN_FILE"))
        let template = try String(contentsOfFile: Self.examples + "/argo-workflow.yaml", encoding: .utf8)
        #expect(template.contains("docs/examples/bake-and-upload.sh") && template.contains("withParam"))
    }

    @Test func bakeVerifyUploadCopyAndEmit() throws {
        let standin = try AWSStandin()
        defer { standin.stop() }
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        let registry = try RegistryStandin(auth: .basic)
        defer { registry.stop() }
        try registry.push("oci:\(KilnPackage.fixtures)/example-oci:app:v1", as: "team/app:v1")
        // Credentials where `docker login` leaves them.
        let docker = scratch.path("docker")
        try FileManager.default.createDirectory(atPath: docker, withIntermediateDirectories: true)
        let basic = Data("\(registry.user):\(registry.password)".utf8).base64EncodedString()
        try Data(#"{"auths": {"\#(registry.registry)": {"auth": "\#(basic)"}}}"#.utf8).write(to: URL(fileURLWithPath: docker + "/config.json"))

        var environment = standin.environment()
        environment["IMAGE"] = "docker://\(registry.registry)/team/app:v1"
        environment["DOCKER_CONFIG"] = docker
        environment["REGISTRY_AUTH_FILE"] = ""
        environment["XDG_RUNTIME_DIR"] = ""
        environment["XDG_CONFIG_HOME"] = scratch.path("xdg")
        environment["CACHE"] = scratch.path("cache")
        environment["REGION"] = "us-east-1"
        environment["COPY_TO_REGIONS"] = "us-west-2"
        environment["OUT"] = out
        environment["KILN"] = KilnPackage.kilnBinary
        environment["AWS_ENDPOINT_URL"] = standin.endpoint
        environment["SOURCE_DATE_EPOCH"] = "1700000000"
        environment["CI"] = "true"
        let r = try ProcessRunner(directory: KilnPackage.root, environment: environment)
            .run("/bin/bash", [Self.examples + "/bake-and-upload.sh"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(!r.output.contains(AWSStandin.secretKey))
        #expect(!r.output.contains(registry.password) && !r.output.contains(basic))
        #expect(FileManager.default.fileExists(atPath: scratch.path("cache") + "/index.json"))

        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/volume/manifest.json")))
            as? [String: Any] ?? [:]
        let snapshots = manifest["snapshots"] as? [String: String] ?? [:]
        // Without NAME the image is known by its reference.
        let names = (manifest["images"] as? [[String: Any]])?.first?["names"] as? [String]
        #expect(names == ["\(registry.registry)/team/app:v1"], "\(names ?? [])")
        #expect(Set(snapshots.keys) == ["us-east-1", "us-west-2"], "\(snapshots)")
        for (region, id) in snapshots {
            let nodeClass = try String(contentsOfFile: out + "/ec2nodeclass-\(region).yaml", encoding: .utf8)
            #expect(nodeClass.contains("blockDeviceMappings:") && nodeClass.contains("snapshotID: \"\(id)\""), "\(region): \(nodeClass)")
        }
        #expect(try standin.requests().contains { $0.op == "CompleteSnapshot" })

        // upload --json (written by the script) and verify ebs:// --json follow their schemas.
        let id = try #require(snapshots["us-east-1"])
        let verify = try ProcessRunner(directory: KilnPackage.root, environment: environment)
            .run(KilnPackage.kilnBinary, ["verify", "--json", "ebs://us-east-1/\(id)", "--manifest", out + "/volume/manifest.json",
                                          "--endpoint-url", standin.endpoint])
        #expect(verify.status == 0, "\(verify.stderr)")
        try Data(verify.stdout.utf8).write(to: URL(fileURLWithPath: out + "/verify-snapshot.json"))
        // Without --json, a CI log gets upload progress lines as it gets bake's.
        let again = try ProcessRunner(directory: KilnPackage.root, environment: environment)
            .run(KilnPackage.kilnBinary, ["upload", out + "/volume", "--region", "us-west-2", "--force", "--endpoint-url", standin.endpoint])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("kiln: upload: blocks ") && again.stderr.contains("% "), "\(again.stderr)")
        #expect(!again.stdout.contains("kiln: upload:"))

        try #require(BakeManifestTests.hasJSONSchema, "python3-jsonschema is needed (apt-get install python3-jsonschema)")
        do {
            for (schema, file) in [("upload", "upload.json"), ("verify-snapshot", "verify-snapshot.json")] {
                let check = try validateJSON(schema: KilnPackage.root + "/docs/schemas/\(schema).schema.json", document: out + "/" + file)
                #expect(check.status == 0, "\(schema): \(check.stderr.suffix(2000))")
            }
        }
    }
}
