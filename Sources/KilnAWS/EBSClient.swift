import Foundation

/// The EBS direct APIs (service `ebs`, REST-JSON).
public struct EBSClient: Sendable {
    /// The only block size of the direct APIs, whatever a server answers.
    public static let blockSize = 524_288

    public var client: AWSClient

    public init(client: AWSClient) { self.client = client }

    /// What StartSnapshot is given.
    public struct StartRequest: Sendable, Hashable, Codable {
        public var volumeSizeGiB: Int
        public var description: String?
        public var tags: [Tag]
        public var encrypted: Bool
        public var kmsKeyARN: String?
        public var timeoutMinutes: Int?
        public var clientToken: String
        public var parentSnapshotID: String?

        public init(volumeSizeGiB: Int, description: String? = nil, tags: [Tag] = [], encrypted: Bool = false, kmsKeyARN: String? = nil,
                    timeoutMinutes: Int? = nil, clientToken: String, parentSnapshotID: String? = nil) {
            self.volumeSizeGiB = volumeSizeGiB
            self.description = description
            self.tags = tags
            self.encrypted = encrypted
            self.kmsKeyARN = kmsKeyARN
            self.timeoutMinutes = timeoutMinutes
            self.clientToken = clientToken
            self.parentSnapshotID = parentSnapshotID
        }
    }

    /// A snapshot tag.
    public struct Tag: Sendable, Hashable, Codable {
        public var key: String
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// What StartSnapshot answers.
    public struct StartedSnapshot: Sendable, Hashable {
        public var snapshotID: String
        public var status: String?
    }

    /// The JSON body of StartSnapshot.
    public static func startBody(_ r: StartRequest) -> [UInt8] {
        var object: [String: Any] = ["VolumeSize": r.volumeSizeGiB, "ClientToken": r.clientToken]
        if let d = r.description { object["Description"] = d }
        if !r.tags.isEmpty { object["Tags"] = r.tags.map { ["Key": $0.key, "Value": $0.value] } }
        if r.encrypted { object["Encrypted"] = true }
        if let k = r.kmsKeyARN { object["KmsKeyArn"] = k }
        if let t = r.timeoutMinutes { object["Timeout"] = t }
        if let p = r.parentSnapshotID { object["ParentSnapshotId"] = p }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }

    /// StartSnapshot: `POST /snapshots`.
    public func startSnapshot(_ request: StartRequest) async throws -> StartedSnapshot {
        let response = try await client.send(AWSCall(operation: "StartSnapshot", method: "POST", path: "/snapshots",
                                                     headers: [("content-type", "application/json")], body: Self.startBody(request)))
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let id = object["SnapshotId"] as? String, !id.isEmpty
        else {
            throw AWSError(kind: .fatal, operation: "StartSnapshot", status: response.status, message: "the answer has no SnapshotId")
        }
        return StartedSnapshot(snapshotID: id, status: object["Status"] as? String)
    }

    /// PutSnapshotBlock: `PUT /snapshots/ID/blocks/INDEX` with the block's base64 sha256.
    public func putSnapshotBlock(snapshotID: String, index: UInt64, data: [UInt8], checksum: String, progress: Int? = nil) async throws {
        var headers = [("x-amz-Data-Length", "\(data.count)"), ("x-amz-Checksum", checksum), ("x-amz-Checksum-Algorithm", "SHA256"),
                       ("content-type", "application/octet-stream")]
        if let progress { headers.append(("x-amz-Progress", "\(max(0, min(100, progress)))")) }
        _ = try await client.send(AWSCall(operation: "PutSnapshotBlock", method: "PUT",
                                          path: "/snapshots/\(SigV4Signer.uriEncode(snapshotID))/blocks/\(index)",
                                          headers: headers, body: data, unsignedPayload: true, retryNotFound: true))
    }

    /// CompleteSnapshot: `POST /snapshots/completion/ID` with the changed-block count and LINEAR checksum.
    public func completeSnapshot(snapshotID: String, changedBlocks: UInt64, checksum: String) async throws -> String? {
        let response = try await client.send(AWSCall(
            operation: "CompleteSnapshot", method: "POST", path: "/snapshots/completion/\(SigV4Signer.uriEncode(snapshotID))",
            headers: [("x-amz-ChangedBlocksCount", "\(changedBlocks)"), ("x-amz-Checksum", checksum), ("x-amz-Checksum-Algorithm", "SHA256"),
                      ("x-amz-Checksum-Aggregation-Method", "LINEAR")],
            retryNotFound: true))
        return (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["Status"] as? String
    }

    /// A block of a completed snapshot, as ListSnapshotBlocks names it.
    public struct ListedBlock: Sendable, Hashable {
        public var index: UInt64
        public var token: String
    }

    /// ListSnapshotBlocks, every page: the snapshot's stored blocks in ascending index.
    public func listSnapshotBlocks(snapshotID: String, pageSize: Int = 10_000) async throws -> (blocks: [ListedBlock], volumeSizeGiB: Int?) {
        var blocks: [ListedBlock] = []
        var token: String?
        var volume: Int?
        repeat {
            var query = [("maxResults", "\(pageSize)")]
            if let token { query.append(("pageToken", token)) }
            let response = try await client.send(AWSCall(operation: "ListSnapshotBlocks", method: "GET",
                                                         path: "/snapshots/\(SigV4Signer.uriEncode(snapshotID))/blocks", query: query,
                                                         maxResponseBytes: 64 << 20))
            guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
                throw AWSError(kind: .fatal, operation: "ListSnapshotBlocks", status: response.status, message: "the answer is not JSON")
            }
            volume = (object["VolumeSize"] as? NSNumber)?.intValue ?? volume
            for item in object["Blocks"] as? [[String: Any]] ?? [] {
                // The index is a number; some stand-ins send a string.
                let index: UInt64? = (item["BlockIndex"] as? NSNumber)?.uint64Value ?? (item["BlockIndex"] as? String).flatMap { UInt64($0) }
                guard let index else { continue }
                blocks.append(ListedBlock(index: index, token: item["BlockToken"] as? String ?? ""))
            }
            let next = object["NextToken"] as? String
            token = (next?.isEmpty ?? true) ? nil : next
        } while token != nil
        blocks.sort { $0.index < $1.index }
        return (blocks, volume)
    }

    /// GetSnapshotBlock: the block's bytes and the checksum the service reports.
    public func getSnapshotBlock(snapshotID: String, index: UInt64, token: String) async throws -> (data: [UInt8], checksum: String?) {
        let response = try await client.send(AWSCall(operation: "GetSnapshotBlock", method: "GET",
                                                     path: "/snapshots/\(SigV4Signer.uriEncode(snapshotID))/blocks/\(index)",
                                                     query: [("blockToken", token)], maxResponseBytes: Self.blockSize * 2))
        return (response.body, response.header("x-amz-Checksum"))
    }
}
