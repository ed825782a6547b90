import AsyncHTTPClient
import Foundation
import KilnDigest
import KilnOCI
import NIOCore
import NIOHTTP1

/// Fetches manifests and blobs of registries (the OCI distribution API), sharing one connection pool and one
/// session (scheme, auth, tokens) per registry host.
public final class RegistryClient: @unchecked Sendable {
    public let options: RegistryOptions
    let transport: RegistryTransport
    public let cache: RegistryCache?
    private let lock = NSLock()
    private var sessions: [String: RegistrySession] = [:]

    public init(options: RegistryOptions) throws {
        self.options = options
        self.cache = try options.cacheDirectory.map { try RegistryCache(root: $0) }
        transport = RegistryTransport(options: options)
    }

    deinit { transport.shutdown() }

    func session(_ host: String) throws -> RegistrySession {
        try lock.withLock {
            if let s = sessions[host] { return s }
            let s = try RegistrySession(host: host, transport: transport, options: options)
            sessions[host] = s
            return s
        }
    }

    /// What a registry serves a manifest or index as. Schema 1 is not asked for: containerd refuses it.
    static let accept = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].joined(separator: ", ")

    /// A manifest or index: its bytes, and the descriptor they make (media type from the answer, digest of the
    /// bytes, which must agree with the reference's digest and with `Docker-Content-Digest`).
    public struct FetchedManifest: Sendable {
        public var descriptor: Descriptor
        public var bytes: [UInt8]
        /// True when it came from the cache (no bytes transferred).
        public var fromCache: Bool
    }

    /// Resolves `name` to its manifest. With a cache, a manifest already held is taken from it: by digest
    /// without asking the registry, by tag after a `HEAD` that says which digest the tag is now.
    public func manifest(_ name: ImageName) async throws -> FetchedManifest {
        let session = try session(name.host)
        let repo = name.path
        let reference = name.apiReference
        if options.offline { return try cachedManifest(name) }
        if let cache {
            var digest = name.digest.flatMap { try? Digest(parsing: $0) }
            var mediaType: String? = nil
            if digest == nil {
                let head: HTTPClientResponse
                do {
                    head = try await session.send("\(repo)/manifests/\(reference)", repository: repo, headers: [("Accept", Self.accept)],
                                                  method: .HEAD, what: "manifest \(name)")
                } catch RegistryError.unavailable(let host, let detail) {
                    // A registry that cannot be reached does not stop a bake whose tag the cache has seen: the
                    // digest it had then is baked, and said so, since the tag may have moved.
                    guard let recorded = cache.recorded(name: name.description),
                          let bytes = cache.document(recorded.digest, limit: SourceReader.jsonLimit)
                    else { throw RegistryError.unavailable(host: host, detail: detail) }
                    options.warn?("registry \(host) is unavailable (\(detail)); \(name) is baked as \(recorded.digest), the digest the cache recorded when it last fetched the tag, which may have moved since")
                    return FetchedManifest(descriptor: Self.stripped(recorded), bytes: bytes, fromCache: true)
                }
                if head.status.code == 200 {
                    digest = head.headers.first(name: "docker-content-digest").flatMap { try? Digest(parsing: $0) }
                    mediaType = head.headers.first(name: "content-type").map(Self.bareType)
                }
            }
            if let digest, let bytes = cache.document(digest, limit: SourceReader.jsonLimit) {
                let type = mediaType ?? Self.declaredType(bytes) ?? MediaType.ociManifest
                return FetchedManifest(descriptor: Descriptor(mediaType: type, digest: digest, size: Int64(bytes.count)), bytes: bytes, fromCache: true)
            }
        }
        let fetched = try await fetchManifest(repo: repo, reference: reference, session: session, display: name.description)
        if let cache {
            try cache.store(fetched.bytes, digest: fetched.descriptor.digest)
        }
        return fetched
    }

    /// `--offline`: the manifest of `name` from the cache alone, by its digest or by the digest the cache
    /// recorded for its tag.
    func cachedManifest(_ name: ImageName) throws -> FetchedManifest {
        guard let cache else { throw RegistryError.notCached(name: name.description, detail: "no --cache is given") }
        let descriptor: Descriptor
        if let text = name.digest {
            let digest = try Digest(parsing: text)
            guard let bytes = cache.document(digest, limit: SourceReader.jsonLimit) else {
                throw RegistryError.notCached(name: name.description, detail: "the cache \(cache.root) does not hold its manifest")
            }
            let type = Self.declaredType(bytes) ?? MediaType.ociManifest
            return FetchedManifest(descriptor: Descriptor(mediaType: type, digest: digest, size: Int64(bytes.count)), bytes: bytes, fromCache: true)
        }
        guard let recorded = cache.recorded(name: name.description) else {
            throw RegistryError.notCached(name: name.description, detail: "the cache \(cache.root) has never fetched this tag")
        }
        descriptor = Self.stripped(recorded)
        guard let bytes = cache.document(descriptor.digest, limit: SourceReader.jsonLimit) else {
            throw RegistryError.notCached(name: name.description, detail: "the cache \(cache.root) records it as \(descriptor.digest) but does not hold that manifest")
        }
        return FetchedManifest(descriptor: descriptor, bytes: bytes, fromCache: true)
    }

    /// A descriptor from the cache's index, without the name annotation the index keeps on it.
    static func stripped(_ recorded: Descriptor) -> Descriptor {
        var d = recorded
        d.annotations = nil
        return d
    }

    func fetchManifest(repo: String, reference: String, session: RegistrySession, display: String) async throws -> FetchedManifest {
        let (response, body) = try await session.document("\(repo)/manifests/\(reference)", repository: repo, headers: [("Accept", Self.accept)],
                                                          what: "manifest \(display)", limit: Int(SourceReader.jsonLimit))
        switch response.status.code {
        case 200: break
        case 404:
            throw RegistryError.notFound(host: session.host, repository: repo, reference: reference,
                                         detail: "the registry has no such repository, tag or digest (HTTP 404\(Self.errorCode(body).map { ", \($0)" } ?? ""))")
        case 403:
            throw RegistryError.unauthorized(host: session.host, repository: repo, status: 403,
                                             detail: "the credentials do not allow pulling this repository\(Self.errorCode(body).map { " (\($0))" } ?? "")")
        default:
            throw RegistryError.unavailable(host: session.host, detail: "manifest \(display): HTTP \(response.status.code)")
        }
        let digest = SHA256Hasher.hash(body)
        if reference.hasPrefix("sha256:"), digest.description != reference {
            throw RegistryError.digestMismatch(host: session.host, repository: repo, reference: reference, expected: reference, actual: digest.description)
        }
        if let header = response.headers.first(name: "docker-content-digest"), header.hasPrefix("sha256:"), header != digest.description {
            throw RegistryError.digestMismatch(host: session.host, repository: repo, reference: reference, expected: header, actual: digest.description)
        }
        let contentType = response.headers.first(name: "content-type").map(Self.bareType)
        let declared = Self.declaredType(body)
        if let contentType, contentType.contains("prettyjws") || contentType == "application/vnd.docker.distribution.manifest.v1+json" {
            throw RegistryError.protocolViolation(host: session.host, detail: "\(display) is a schema 1 manifest (\(contentType)), which containerd no longer pulls; push it again with a current tool")
        }
        if let declared, let contentType, contentType != "application/json", declared != contentType {
            throw RegistryError.protocolViolation(host: session.host, detail: "\(display): served as '\(contentType)' but its mediaType is '\(declared)'")
        }
        guard let type = declared ?? contentType.flatMap({ $0 == "application/json" ? nil : $0 }) else {
            throw RegistryError.protocolViolation(host: session.host, detail: "\(display): neither the answer nor the document says what media type it is")
        }
        return FetchedManifest(descriptor: Descriptor(mediaType: type, digest: digest, size: Int64(body.count)), bytes: body, fromCache: false)
    }

    /// A small blob (an image config), read whole and checked by the caller.
    func documentBlob(_ descriptor: Descriptor, repo: String, session: RegistrySession) async throws -> [UInt8] {
        let (response, body) = try await session.document("\(repo)/blobs/\(descriptor.digest)", repository: repo,
                                                          what: "blob \(descriptor.digest)", limit: Int(SourceReader.jsonLimit))
        switch response.status.code {
        case 200: return body
        case 404:
            throw RegistryError.notFound(host: session.host, repository: repo, reference: descriptor.digest.description, detail: "the registry has no such blob (HTTP 404)")
        default:
            throw RegistryError.unavailable(host: session.host, detail: "blob \(descriptor.digest) of \(repo): HTTP \(response.status.code)")
        }
    }

    static func bareType(_ header: String) -> String {
        String(header.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
    }

    struct Declared: Decodable { var mediaType: String? }
    static func declaredType(_ bytes: [UInt8]) -> String? { (try? JSONDecoder().decode(Declared.self, from: Data(bytes)))?.mediaType }

    struct ErrorBody: Decodable {
        struct Item: Decodable { var code: String?; var message: String? }
        var errors: [Item]?
    }
    static func errorCode(_ body: [UInt8]) -> String? {
        guard let item = (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.errors?.first else { return nil }
        return [item.code, item.message].compactMap { $0 }.joined(separator: ": ")
    }
}
