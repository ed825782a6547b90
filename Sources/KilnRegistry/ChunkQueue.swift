import Foundation
import NIOCore

/// Hands bytes from an async producer (a response body) to a blocking reader on another thread, holding at
/// most about `limit` bytes: past that the producer waits, and so the connection stops being read.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [ByteBuffer] = []
    private var head = 0
    private var buffered = 0
    private var ended = false
    private var failure: (any Swift.Error)?
    private var cancelled = false
    private var spaceWaiter: CheckedContinuation<Void, Never>?
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Queues bytes; waits while the queue is over its limit. False once the reader has gone.
    func push(_ buffer: ByteBuffer) async -> Bool {
        if enqueue(buffer) {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in waitForSpace(c) }
        }
        return !isCancelled
    }

    /// Appends; true when the queue is now over its limit.
    private func enqueue(_ buffer: ByteBuffer) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if cancelled { return false }
        chunks.append(buffer)
        buffered += buffer.readableBytes
        condition.broadcast()
        return buffered > limit
    }

    private func waitForSpace(_ c: CheckedContinuation<Void, Never>) {
        condition.lock()
        if buffered <= limit || cancelled {
            condition.unlock()
            c.resume()
        } else {
            spaceWaiter = c
            condition.unlock()
        }
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    /// Ends the stream, with an error when it did not end well.
    func finish(_ error: (any Swift.Error)? = nil) {
        condition.lock()
        ended = true
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    /// The next bytes, waiting for them; nil at the end.
    func pop() throws -> ByteBuffer? {
        condition.lock()
        defer { condition.unlock() }
        while head == chunks.count && !ended { condition.wait() }
        if head == chunks.count {
            if let failure { throw failure }
            return nil
        }
        let b = chunks[head]
        head += 1
        if head > 64 && head * 2 > chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
        buffered -= b.readableBytes
        if buffered <= limit / 2, let w = spaceWaiter {
            spaceWaiter = nil
            w.resume()
        }
        return b
    }

    /// The reader is gone: drop what is queued and release the producer.
    func cancel() {
        condition.lock()
        cancelled = true
        chunks = []
        head = 0
        buffered = 0
        let w = spaceWaiter
        spaceWaiter = nil
        condition.broadcast()
        condition.unlock()
        w?.resume()
    }
}
