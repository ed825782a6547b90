import Foundation

/// The EC2 snapshot calls (query API, XML answers): DescribeSnapshots and CopySnapshot.
public struct EC2Client: Sendable {
    public static let apiVersion = "2016-11-15"
    public var client: AWSClient

    public init(client: AWSClient) { self.client = client }

    func call(_ action: String, _ parameters: [(String, String)]) async throws -> String {
        let body = XMLFields.formEncode([("Action", action), ("Version", Self.apiVersion)] + parameters)
        let response = try await client.send(AWSCall(operation: action, method: "POST", path: "/",
                                                     headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body: body))
        return response.text
    }

    /// A snapshot's state as DescribeSnapshots tells it.
    public struct SnapshotState: Sendable, Hashable {
        public var snapshotID: String
        /// `pending`, `completed`, `error`, `recoverable`, `recovering`.
        public var state: String
        public var progress: String?
        public var stateMessage: String?
    }

    /// DescribeSnapshots of one snapshot; nil when EC2 does not know it (yet).
    public func describeSnapshot(_ id: String) async throws -> SnapshotState? {
        let xml: String
        do {
            xml = try await call("DescribeSnapshots", [("SnapshotId.1", id)])
        } catch let e as AWSError where e.code == "InvalidSnapshot.NotFound" {
            return nil
        }
        // Tags are nested items: drop them so that each remaining item is one snapshot.
        let flat = XMLFields.removing("tagSet", in: xml)
        guard let item = XMLFields.elements("item", in: flat).first(where: { XMLFields.first("snapshotId", in: $0) == id }),
            let state = XMLFields.first("status", in: item)
        else { return nil }
        return SnapshotState(snapshotID: id, state: state, progress: XMLFields.first("progress", in: item),
                             stateMessage: XMLFields.first("statusMessage", in: item))
    }

    /// Polls DescribeSnapshots until the snapshot is `completed` (or fails, or `timeout` passes).
    public func waitUntilCompleted(_ id: String, interval: TimeInterval = 5, timeout: TimeInterval = 3 * 3600,
                                   onPoll: (@Sendable (SnapshotState?) -> Void)? = nil) async throws -> SnapshotState {
        let started = Date()
        while true {
            let state = try await describeSnapshot(id)
            onPoll?(state)
            if let state {
                if state.state == "completed" { return state }
                if state.state == "error" {
                    throw AWSError(kind: .fatal, operation: "DescribeSnapshots", message: "snapshot \(id) is in state error\(state.stateMessage.map { ": \($0)" } ?? "")")
                }
            }
            guard Date().timeIntervalSince(started) < timeout else {
                throw AWSError(kind: .fatal, operation: "DescribeSnapshots", message: "snapshot \(id) not completed after \(Int(timeout)) s (state \(state?.state ?? "unknown"))")
            }
            try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        }
    }

    /// CopySnapshot, called in the destination region (this client's): the new snapshot's id.
    public func copySnapshot(sourceRegion: String, sourceSnapshotID: String, description: String?, encrypted: Bool, kmsKeyID: String?,
                             tags: [EBSClient.Tag]) async throws -> String {
        var p: [(String, String)] = [("SourceRegion", sourceRegion), ("SourceSnapshotId", sourceSnapshotID)]
        if let description { p.append(("Description", description)) }
        if encrypted { p.append(("Encrypted", "true")) }
        if let kmsKeyID { p.append(("KmsKeyId", kmsKeyID)) }
        if !tags.isEmpty {
            p.append(("TagSpecification.1.ResourceType", "snapshot"))
            for (i, t) in tags.enumerated() {
                p.append(("TagSpecification.1.Tag.\(i + 1).Key", t.key))
                p.append(("TagSpecification.1.Tag.\(i + 1).Value", t.value))
            }
        }
        let xml = try await call("CopySnapshot", p)
        guard let id = XMLFields.first("snapshotId", in: xml), !id.isEmpty else {
            throw AWSError(kind: .fatal, operation: "CopySnapshot", message: "the answer has no snapshotId")
        }
        return id
    }
}
