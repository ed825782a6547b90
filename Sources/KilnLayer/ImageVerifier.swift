import Dispatch
import Foundation
import KilnCore
import KilnDigest
import KilnOCI

/// The outcome of verifying one image.
public struct ImageVerification: Sendable {
    public var image: ResolvedImage
    /// One report per layer (nil where the blob is missing).
    public var layerReports: [LayerReport?]
    public var problems: [Problem]
    /// What is sound but worth a word (duplicate paths: the last wins).
    public var warnings: [String] = []
    public var ok: Bool { problems.isEmpty }
}

/// Verifies resolved images: every distinct layer blob is streamed once, in parallel, largest first.
public enum ImageVerifier {
    /// Scans all layers of `images` and compares them with their descriptors and configs.
    ///
    /// - Parameters:
    ///   - resolutionProblems: problems already found while resolving (manifests, configs); attached to their images.
    ///   - jobs: layers scanned at once (default: the number of cores).
    ///   - counter: given the stored bytes of every distinct blob to read, then each byte as it is read.
    ///   - progress: called after each layer finishes (from worker threads).
    public static func verify(
        _ images: [ResolvedImage],
        resolutionProblems: [Problem] = [],
        jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
        counter: ProgressCounter? = nil,
        progress: (@Sendable (String) -> Void)? = nil
    ) -> [ImageVerification] {
        struct Job: Sendable {
            var key: String
            var location: BlobLocation
            var compression: Compression
        }
        var jobs_: [Job] = []
        var keys: [[String?]] = []
        var missing: [String: Swift.Error] = [:]
        var seen = Set<String>()
        for image in images {
            var imageKeys: [String?] = []
            for layer in image.layers {
                let key = "\(image.store.displayName)|\(layer.descriptor.digest)|\(layer.compression)"
                do {
                    if let location = try image.store.locate(layer.descriptor) {
                        if seen.insert(key).inserted { jobs_.append(Job(key: key, location: location, compression: layer.compression)) }
                        imageKeys.append(key)
                    } else {
                        imageKeys.append(nil)
                    }
                } catch {
                    missing[key] = error
                    imageKeys.append(nil)
                }
            }
            keys.append(imageKeys)
        }
        jobs_.sort { $0.location.length > $1.location.length }
        counter?.start(phase: "layers", totalBytes: jobs_.reduce(0) { $0 + Int64($1.location.length) })
        let sink = counter.map { c in StoredBytesSink { c.add($0.count) } }

        let results = ResultBox(count: jobs_.count)
        let queue = DispatchQueue(label: "kiln.verify", attributes: .concurrent)
        let semaphore = DispatchSemaphore(value: max(1, jobs))
        let group = DispatchGroup()
        for (i, job) in jobs_.enumerated() {
            semaphore.wait()
            queue.async(group: group) {
                defer { semaphore.signal() }
                let result: Result<LayerReport, Swift.Error>
                do { result = .success(try LayerScanner.scan(job.location, compression: job.compression, storedSink: sink)) } catch {
                    result = .failure(error)
                }
                results.set(i, result)
                progress?(job.location.displayName)
            }
        }
        group.wait()

        var byKey: [String: Result<LayerReport, Swift.Error>] = [:]
        for (i, job) in jobs_.enumerated() { byKey[job.key] = results.get(i) }

        var out: [ImageVerification] = []
        for (imageIndex, image) in images.enumerated() {
            let name = image.displayName
            var problems = resolutionProblems.filter { $0.image == name }
            var reports: [LayerReport?] = []
            var warnings: [String] = []
            for (layerIndex, layer) in image.layers.enumerated() {
                guard let key = keys[imageIndex][layerIndex], let result = byKey[key] else {
                    let failedKey = "\(image.store.displayName)|\(layer.descriptor.digest)|\(layer.compression)"
                    let message = missing[failedKey].map { "blob cannot be used: \($0)" } ?? "blob is missing from \(image.store.displayName)"
                    problems.append(Problem(image: name, subject: "layer \(layerIndex)", digest: layer.descriptor.digest.description,
                                            message: message))
                    reports.append(nil)
                    continue
                }
                switch result {
                case .success(let report):
                    reports.append(report)
                    problems += report.problems(against: layer, image: name)
                    warnings += report.warnings(against: layer, image: name)
                case .failure(let error):
                    reports.append(nil)
                    problems.append(Problem(image: name, subject: "layer \(layerIndex)", digest: layer.descriptor.digest.description,
                                            message: "cannot read: \(error)"))
                }
            }
            out.append(ImageVerification(image: image, layerReports: reports, problems: problems, warnings: warnings))
        }
        return out
    }
}

/// Results written by worker threads, each slot once.
private final class ResultBox: @unchecked Sendable {
    private var slots: [Result<LayerReport, Swift.Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<LayerReport, Swift.Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    func get(_ i: Int) -> Result<LayerReport, Swift.Error>? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}
