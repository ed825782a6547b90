import Foundation

/// `scripts/lib/aws-standin.py serve`: moto (EBS, EC2, STS) behind a logging, signature-checking, fault-injecting
/// proxy on 127.0.0.1, plus container-credentials and IMDSv2 stand-ins. Stopped by ``stop()``.
public final class AWSStandin: @unchecked Sendable {
    /// The python with moto and botocore: `KILN_PYTHON`, or python3.
    public static let python: String = ProcessInfo.processInfo.environment["KILN_PYTHON"] ?? "python3"
    public static let script = KilnPackage.root + "/scripts/lib/aws-standin.py"
    /// The test access key whose signatures the proxy checks with botocore.
    public static let accessKey = "AKIAKILNTEST0000WXYZ"
    public static let secretKey = "kiln/test+secret/key0000000000000000000"

    /// Whether python has moto's server and botocore (probed once).
    public static let requirement: Requirement = {
        let ok = (try? ProcessRunner(timeout: ProcessTimeout(seconds: 60)).run(python, ["-c", "import moto.server, botocore, flask"]))?.succeeded ?? false
        return Requirement("python3 with moto[server] and botocore (pip install 'moto[server]' boto3, or KILN_PYTHON)", isMet: ok)
    }()

    public let proxyPort: Int
    public let motoPort: Int
    public let logPath: String
    let process: Process
    let directory: TemporaryDirectory

    /// Starts the stand-ins; `arguments` add faults (`--fault OP:KIND:EVERY`), delays (`--delay OP:SECONDS`).
    public init(_ arguments: [String] = []) throws {
        directory = try TemporaryDirectory(prefix: "kiln-aws")
        let ready = directory.path("ready.json")
        logPath = directory.path("requests.jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.python, Self.script, "serve", "--ready", ready, "--log", logPath, "--no-stdin",
                             "--secret", "\(Self.accessKey)=\(Self.secretKey)", "--secret", "ASIASTANDIN=standin-secret"] + arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: directory.path("stderr")) ?? FileHandle.standardError
        FileManager.default.createFile(atPath: directory.path("stderr"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: directory.path("stderr"))
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: ready) {
            guard process.isRunning, Date() < deadline else {
                let err = (try? String(contentsOfFile: directory.path("stderr"), encoding: .utf8)) ?? ""
                process.terminate()
                throw StandinFailure(description: "aws-standin did not start: \(err)")
            }
            usleep(50_000)
        }
        let ports = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ready))) as? [String: Int] ?? [:]
        proxyPort = ports["proxy"] ?? 0
        motoPort = ports["moto"] ?? 0
    }

    deinit { stop() }

    /// The proxy's URL, for `--endpoint-url`.
    public var endpoint: String { "http://127.0.0.1:\(proxyPort)" }

    /// Environment for a kiln child: the test keys, no profile or other credential sources from this machine.
    public func environment(region: String = "us-east-1") -> [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": Self.secretKey, "AWS_REGION": region,
         "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"]
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        directory.remove()
    }

    /// One logged request.
    public struct Entry: Sendable, Decodable {
        public var method: String
        public var path: String
        public var op: String
        /// `ok`, `mismatch`, `unknown-key`, or nil when unsigned.
        public var signature: String?
        public var fault: String?
        public var inFlight: Int?
        public var time: Double
        /// StartSnapshot: the ParentSnapshotId asked for, and the parent's blocks the new snapshot started with.
        public var parent: String?
        public var inheritedBlocks: Int?
    }

    /// Every request the proxy saw so far.
    public func requests() throws -> [Entry] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }

    /// Runs a python snippet with boto3 against moto directly (bypassing the proxy); returns stdout.
    public func boto3(_ code: String) throws -> String {
        let prelude = """
            import boto3, json, base64, hashlib, sys
            def client(service, region='us-east-1'):
                return boto3.client(service, region_name=region, endpoint_url='http://127.0.0.1:\(motoPort)',
                                    aws_access_key_id='\(Self.accessKey)', aws_secret_access_key='\(Self.secretKey)')

            """
        let r = try ProcessRunner(timeout: ProcessTimeout(seconds: 120)).run(Self.python, ["-c", prelude + code])
        guard r.succeeded else { throw StandinFailure(description: "boto3 snippet failed: \(r)") }
        return r.stdout
    }
}

public struct StandinFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
}
