import Foundation
import KilnDigest
import KilnOCI

extension Bake {
    /// Writes `manifest.json` beside the image (atomically).
    func writeManifest(_ result: Result, partialImage: String) throws {
        var images: [[String: Any]] = []
        for b in result.images {
            let chain = b.image.chainIDs
            images.append([
                "names": b.names,
                "platform": b.image.platform.description,
                "manifest": ["mediaType": b.image.manifestDescriptor.mediaType, "digest": b.image.manifestDescriptor.digest.description, "size": b.image.manifestDescriptor.size],
                "config": ["mediaType": b.image.manifest.config.mediaType, "digest": b.image.manifest.config.digest.description, "size": b.image.manifest.config.size],
                "layers": b.image.layers.enumerated().map { i, l in
                    [
                        "digest": l.descriptor.digest.description, "mediaType": l.descriptor.mediaType, "size": l.descriptor.size,
                        "diffID": l.diffID.description, "chainID": chain[i].description,
                        "uncompressedSize": b.layerReports[i].uncompressedSize, "entries": b.layerReports[i].entryCount,
                    ] as [String: Any]
                },
            ])
        }
        let fs = result.filesystem
        let manifest: [String: Any] = [
            "schemaVersion": 1,
            "kiln": ["version": Bake.toolVersion],
            "name": recipe.name,
            "recipe": ["name": recipe.name, "digest": recipe.digest?.description ?? NSNull()] as [String: Any],
            "createdAt": Self.rfc3339(sourceDateEpoch),
            "images": images,
            "volume": [
                "file": "data.img",
                "size": result.imageFileSize,
                "layout": recipe.layout.rawValue,
                "filesystem": [
                    "type": "ext4", "uuid": fs.uuid, "blockSize": fs.blockSize, "blockCount": fs.blockCount,
                    "inodeCount": fs.inodeCount, "usedBlocks": fs.usedBlocks, "offset": fs.byteOffset, "size": fs.byteSize,
                ] as [String: Any],
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try Self.writeAtomically(data + Data("\n".utf8), to: result.manifestPath)
    }

    /// The kiln version recorded in manifests.
    public static let toolVersion = "0.1.0"

    static func rfc3339(_ seconds: Int64) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func writeAtomically(_ data: Data, to path: String) throws {
        let temp = path + ".partial"
        do {
            try data.write(to: URL(fileURLWithPath: temp))
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: temp, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw Error.io("\(path): \(error.localizedDescription)")
        }
    }
}
