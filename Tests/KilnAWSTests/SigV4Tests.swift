import Foundation
import KilnAWS
import KilnTestSupport
import Testing

@Suite("SigV4 against botocore")
struct SigV4Tests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", source: "test")
    static let temporary = AWSCredentials(accessKeyID: "ASIAEXAMPLE", secretAccessKey: "secret/with+chars", sessionToken: "FwoGZXIvYXdzE//token==", source: "test")

    struct Case {
        var service: String
        var region: String
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var body: [UInt8]?
        var unsigned: Bool
        var credentials: AWSCredentials
    }

    static var cases: [Case] {
        let block = [UInt8](repeating: 7, count: 524_288)
        let start = EBSClient.startBody(.init(volumeSizeGiB: 11, description: "kiln example", tags: [.init(key: "team", value: "ml ops/α")],
                                              clientToken: String(repeating: "ab", count: 32)))
        return [
            Case(service: "ebs", region: "us-east-1", method: "POST", path: "/snapshots", query: [], headers: [("content-type", "application/json")],
                 body: start, unsigned: false, credentials: credentials),
            Case(service: "ebs", region: "eu-west-1", method: "PUT", path: "/snapshots/snap-0123456789abcdef0/blocks/42", query: [],
                 headers: [("x-amz-Data-Length", "524288"), ("x-amz-Checksum", "jTlrBPgftkOxYdc18/9GYD4TWWEImzRMYLC98AwfQYc="),
                           ("x-amz-Checksum-Algorithm", "SHA256"), ("x-amz-Progress", "50"), ("content-type", "application/octet-stream")],
                 body: block, unsigned: true, credentials: temporary),
            Case(service: "ebs", region: "us-west-2", method: "POST", path: "/snapshots/completion/snap-0123456789abcdef0", query: [],
                 headers: [("x-amz-ChangedBlocksCount", "10"), ("x-amz-Checksum", "a+b/c=="), ("x-amz-Checksum-Algorithm", "SHA256"),
                           ("x-amz-Checksum-Aggregation-Method", "LINEAR")], body: nil, unsigned: false, credentials: credentials),
            Case(service: "ebs", region: "us-east-1", method: "GET", path: "/snapshots/snap-1/blocks",
                 query: [("maxResults", "10000"), ("pageToken", "AAAB+/x== ;&?")], headers: [], body: nil, unsigned: false, credentials: temporary),
            Case(service: "ebs", region: "us-east-1", method: "GET", path: "/snapshots/snap-1/blocks/3",
                 query: [("blockToken", "EXAMPLE/token+=="), ("a", "2"), ("a", "1")], headers: [], body: nil, unsigned: false, credentials: credentials),
            Case(service: "ec2", region: "ap-southeast-2", method: "POST", path: "/", query: [],
                 headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                 body: XMLFields.formEncode([("Action", "CopySnapshot"), ("Version", "2016-11-15"), ("SourceRegion", "us-east-1"),
                                             ("SourceSnapshotId", "snap-1"), ("TagSpecification.1.Tag.1.Value", "a b&c")]),
                 unsigned: false, credentials: temporary),
            Case(service: "sts", region: "us-east-1", method: "POST", path: "/", query: [],
                 headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8"), ("X-Custom", "  spaced   value ")],
                 body: XMLFields.formEncode([("Action", "AssumeRole"), ("RoleArn", "arn:aws:iam::123456789012:role/x")]),
                 unsigned: false, credentials: credentials),
        ]
    }

    @Test("kiln's Authorization equals botocore's for the EBS, EC2 and STS requests kiln sends",
          .requires(AWSStandin.requirement))
    func matchesBotocore() throws {
        let date = Date(timeIntervalSince1970: 1_790_000_000)
        var oracleInput: [[String: Any]] = []
        var ours: [String] = []
        for c in Self.cases {
            let hash = c.unsigned ? SigV4Signer.unsignedPayload : SigV4Signer.payloadHash(c.body ?? [])
            let host = "\(c.service).\(c.region).amazonaws.com"
            let request = SigV4Signer.Request(method: c.method, path: c.path, query: c.query,
                                              headers: [("host", host), ("x-amz-content-sha256", hash)] + c.headers, payloadHash: hash)
            let signed = SigV4Signer(service: c.service, region: c.region).sign(request, credentials: c.credentials, date: date)
            let authorization = signed.first { $0.0 == "Authorization" }?.1 ?? ""
            ours.append(authorization)
            let toSign = signed.filter { $0.0 != "Authorization" }
            oracleInput.append([
                "method": c.method, "host": host, "path": c.path, "query": c.query.map { [$0.0, $0.1] },
                "headers": toSign.map { [$0.0, $0.1] }, "accessKey": c.credentials.accessKeyID, "secret": c.credentials.secretAccessKey,
                "token": c.credentials.sessionToken as Any, "service": c.service, "region": c.region, "amzDate": SigV4Signer.amzDate(date),
            ])
        }
        let input = try JSONSerialization.data(withJSONObject: oracleInput)
        let result = try ProcessRunner(timeout: ProcessTimeout(seconds: 60)).run(AWSStandin.python, [AWSStandin.script, "sign"], input: input)
        #expect(result.succeeded, "\(result)")
        let theirs = try JSONSerialization.jsonObject(with: result.standardOutput) as? [String] ?? []
        #expect(theirs.count == ours.count)
        for (i, (a, b)) in zip(ours, theirs).enumerated() {
            #expect(a == b, "case \(i) (\(Self.cases[i].service) \(Self.cases[i].method) \(Self.cases[i].path))")
        }
    }

    @Test("the AWS documentation's example key derivation")
    func documentationExample() {
        // docs.aws.amazon.com "Examples of how to derive a signing key for Signature Version 4" (iam, us-east-1, 20150830).
        var key = HMACSHA256.mac(key: Array("AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".utf8), message: "20150830")
        key = HMACSHA256.mac(key: key, message: "us-east-1")
        key = HMACSHA256.mac(key: key, message: "iam")
        key = HMACSHA256.mac(key: key, message: "aws4_request")
        #expect(key.lowercaseHex == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    }

    @Test("credentials print masked")
    func masked() {
        #expect(!"\(Self.temporary)".contains("secret"))
        #expect("\(Self.credentials)" == "*******MPLE from test")
    }

    @Test("errors are classified for retrying as the SDKs do")
    func classification() {
        #expect(AWSError.classify(status: 400, code: "RequestThrottledException", message: "", operation: "x").kind == .transient)
        #expect(AWSError.classify(status: 429, code: nil, message: "", operation: "x").kind == .transient)
        #expect(AWSError.classify(status: 503, code: nil, message: "", operation: "x").kind == .transient)
        #expect(AWSError.classify(status: 404, code: "ResourceNotFoundException", message: "", operation: "x").kind == .notFoundYet)
        #expect(AWSError.classify(status: 403, code: "AccessDeniedException", message: "", operation: "x").kind == .fatal)
        #expect(AWSError.classify(status: 400, code: "ValidationException", message: "bad", operation: "x").kind == .fatal)
        #expect(AWSError.classify(status: 400, code: "ValidationException", message: "Failed to read block data", operation: "x").kind == .transient)
        #expect(AWSError.classify(status: 402, code: "ServiceQuotaExceededException", message: "", operation: "x").kind == .fatal)
    }
}
