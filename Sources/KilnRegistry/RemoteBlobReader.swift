import AsyncHTTPClient
import Foundation
import KilnCore
import KilnDigest
import KilnOCI
import NIOCore

/// A layer blob streamed from a registry as it is read: fetched by a task of its own into a bounded queue,
/// resumed with `Range: bytes=N-` when the connection breaks (only a 206 starting at N is accepted), and
/// copied into the cache as it passes when there is one (renamed into place once its digest matched).
///
/// The reader never holds more than the queue's limit in memory; past it the connection is not read, so a
/// layer fetched ahead of its turn waits in the network.
final class RemoteBlobReader: BlobReader, @unchecked Sendable {
    let descriptor: Descriptor
    private let queue: ChunkQueue
    private var current: ByteBuffer?
    private var task: Task<Void, Never>?

    init(descriptor: Descriptor, repository: String, session: RegistrySession, cache: RegistryCache?, options: RegistryOptions) {
        self.descriptor = descriptor
        let queue = ChunkQueue(limit: options.bufferPerLayer)
        self.queue = queue
        task = Task.detached {
            await Self.fetch(descriptor, repository: repository, session: session, cache: cache, options: options, into: queue)
        }
    }

    deinit { finish() }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !buffer.isEmpty, let base = buffer.baseAddress else { return 0 }
        while true {
            if var c = current, c.readableBytes > 0 {
                let n = min(buffer.count, c.readableBytes)
                c.withUnsafeReadableBytes { source in
                    if let s = source.baseAddress { base.copyMemory(from: s, byteCount: n) }
                }
                c.moveReaderIndex(forwardBy: n)
                current = c
                return n
            }
            guard let next = try queue.pop() else { return 0 }
            current = next
        }
    }

    /// Stops the fetch (when the blob was not read to its end) and lets go of the queue.
    func finish() {
        queue.cancel()
        task?.cancel()
        task = nil
        current = nil
    }

    /// The fetching task: one GET, then ranged GETs after failures, until the descriptor's size has arrived.
    static func fetch(_ descriptor: Descriptor, repository: String, session: RegistrySession, cache: RegistryCache?,
                      options: RegistryOptions, into queue: ChunkQueue) async {
        let host = session.host
        let path = "\(repository)/blobs/\(descriptor.digest)"
        let what = "layer blob \(descriptor.digest) of \(host)/\(repository)"
        var copy: CacheCopy? = cache.map { CacheCopy(cache: $0, digest: descriptor.digest) }
        defer { copy?.discard() }
        let board = options.transfers
        let transfer = board?.begin("\(host)/\(repository) layer \(descriptor.digest.short)", totalBytes: descriptor.size)
        defer { if let board, let transfer { board.end(transfer) } }
        var received: Int64 = 0
        // One byte past the promised size is enough to know the blob is larger than its descriptor says.
        let cap = descriptor.size + 1
        var schedule = RetrySchedule(delays: options.retryDelays, host: host, what: what)
        while true {
            let failure: String
            do {
                let headers = received > 0 ? [("Range", "bytes=\(received)-")] : []
                let response = try await session.send(path, repository: repository, headers: headers, what: what, deadline: 7 * 24 * 3600)
                try Self.check(response, resumingAt: received, descriptor: descriptor, host: host, repository: repository)
                for try await var chunk in response.body {
                    if queue.isCancelled { return }
                    if received + Int64(chunk.readableBytes) > cap { chunk = chunk.getSlice(at: chunk.readerIndex, length: Int(cap - received)) ?? chunk }
                    copy?.append(chunk)
                    received += Int64(chunk.readableBytes)
                    if let board, let transfer { board.add(transfer, bytes: chunk.readableBytes) }
                    guard await queue.push(chunk) else { return }
                    if received >= cap { break }
                }
                if received >= descriptor.size {
                    if let c = copy, received == descriptor.size {
                        try c.commit()
                        copy = nil
                    }
                    queue.finish()
                    return
                }
                failure = "the body ended after \(received) of \(descriptor.size) bytes"
            } catch let e as RegistryError {
                queue.finish(e)
                return
            } catch is CancellationError {
                queue.finish(CancellationError())
                return
            } catch {
                if queue.isCancelled { return }
                failure = RegistryTransport.describe(error)
            }
            do { try await schedule.failed(failure, context: ", resumed at byte \(received)") } catch {
                queue.finish(error)
                return
            }
        }
    }

    /// A first answer must be 200; a resumed one 206 with a `Content-Range` starting where the bytes stopped.
    static func check(_ response: HTTPClientResponse, resumingAt offset: Int64, descriptor: Descriptor, host: String, repository: String) throws {
        let code = response.status.code
        switch code {
        case 200 where offset == 0:
            return
        case 200:
            throw RegistryError.protocolViolation(host: host, detail: "\(repository) blob \(descriptor.digest): asked to resume at byte \(offset), the registry sent the whole blob again (HTTP 200 to a Range request)")
        case 206 where offset > 0:
            let range = response.headers.first(name: "content-range") ?? ""
            guard range.hasPrefix("bytes \(offset)-") else {
                throw RegistryError.protocolViolation(host: host, detail: "\(repository) blob \(descriptor.digest): asked to resume at byte \(offset), the registry answered Content-Range '\(range)'")
            }
        case 404:
            throw RegistryError.notFound(host: host, repository: repository, reference: descriptor.digest.description, detail: "the registry has no such blob (HTTP 404)")
        case 403:
            throw RegistryError.unauthorized(host: host, repository: repository, status: 403, detail: "the registry refuses this blob")
        default:
            throw RegistryError.unavailable(host: host, detail: "\(repository) blob \(descriptor.digest): HTTP \(code)")
        }
    }
}

/// A blob's bytes written beside the cache's copy as they arrive, hashed, and renamed into place only when
/// their digest matches.
final class CacheCopy: @unchecked Sendable {
    let cache: RegistryCache
    let digest: Digest
    let partial: String
    private var fd: Int32
    private let hasher = SHA256Hasher()
    private var failed = false

    init(cache: RegistryCache, digest: Digest) {
        self.cache = cache
        self.digest = digest
        partial = cache.partialPath(for: digest)
        fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        failed = fd < 0
    }

    func append(_ chunk: ByteBuffer) {
        guard !failed else { return }
        chunk.withUnsafeReadableBytes { bytes in
            hasher.update(bytes)
            var done = 0
            while done < bytes.count, let base = bytes.baseAddress {
                let n = write(fd, base + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failed = true; return }
                done += n
            }
        }
    }

    /// Moves the copy into the cache when it is whole and its digest matches; otherwise drops it (the layer's
    /// own check reports the mismatch).
    func commit() throws {
        guard !failed, fd >= 0 else { discard(); return }
        close(fd)
        fd = -1
        guard hasher.finalize() == digest else { unlink(partial); return }
        try cache.commit(partial, as: digest)
    }

    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(partial)
    }
}
