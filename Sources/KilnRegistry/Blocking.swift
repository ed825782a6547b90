import Foundation

private final class BlockingBox<T>: @unchecked Sendable {
    var result: Result<T, any Swift.Error>?
}

/// Runs async work from synchronous code (the bake's threads), waiting for it. Never call it on a task or an
/// event loop: it blocks the calling thread.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    guard let result = box.result else { throw CancellationError() }
    return try result.get()
}
