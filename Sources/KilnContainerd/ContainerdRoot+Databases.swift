import Foundation
import KilnBolt
import KilnDigest

extension ContainerdRoot {
    private func times(_ b: inout Bolt.Bucket) {
        b.put(createdAt.marshalBinary(), forKey: "createdat")
        b.put(createdAt.marshalBinary(), forKey: "updatedat")
    }

    private static func labels(_ labels: [String: String]) -> Bolt.Bucket {
        var b = Bolt.Bucket()
        for (k, v) in labels { b.put(v, forKey: k) }
        return b
    }

    /// The metadata plugin's database (`io.containerd.metadata.v1.bolt/meta.db`), schema version 3.
    public func metaDB() throws -> Data {
        var ns = Bolt.Bucket()

        var imagesBucket = Bolt.Bucket()
        for image in images.values {
            var b = Bolt.Bucket()
            times(&b)
            var target = Bolt.Bucket()
            target.put(image.target.digest.description, forKey: "digest")
            target.put(image.target.mediaType, forKey: "mediatype")
            target.put(GoVarint.encode(image.target.size), forKey: "size")
            b.put(bucket: target, named: "target")
            if !image.labels.isEmpty { b.put(bucket: Self.labels(image.labels), named: "labels") }
            imagesBucket.put(bucket: b, named: image.name)
        }
        ns.put(bucket: imagesBucket, named: "images")

        var blobBucket = Bolt.Bucket()
        for blob in blobs.values {
            var b = Bolt.Bucket()
            times(&b)
            b.put(GoVarint.encode(blob.size), forKey: "size")
            if !blob.labels.isEmpty { b.put(bucket: Self.labels(blob.labels), named: "labels") }
            blobBucket.put(bucket: b, named: blob.digest.description)
        }
        var content = Bolt.Bucket()
        content.put(bucket: blobBucket, named: "blob")
        ns.put(bucket: content, named: "content")

        var overlay = Bolt.Bucket(sequence: snapshotSequence)
        for s in orderedSnapshots {
            var b = Bolt.Bucket()
            times(&b)
            b.put(s.backendKey(namespace: namespace), forKey: "name")
            if let p = s.parent { b.put(p.description, forKey: "parent") }
            if !s.children.isEmpty {
                var children = Bolt.Bucket()
                for c in s.children { children.put(Data(), forKey: c.description) }
                b.put(bucket: children, named: "children")
            }
            b.put(bucket: Self.labels(["containerd.io/snapshot.ref": s.chainID.description]), named: "labels")
            overlay.put(bucket: b, named: s.chainID.description)
        }
        var snapshotsBucket = Bolt.Bucket()
        snapshotsBucket.put(bucket: overlay, named: Self.snapshotter)
        ns.put(bucket: snapshotsBucket, named: "snapshots")

        var v1 = Bolt.Bucket()
        v1.put(GoVarint.encode(Self.metaDBVersion), forKey: "version")
        v1.put(bucket: ns, named: namespace)
        var root = Bolt.Bucket()
        root.put(bucket: v1, named: "v1")
        return try Bolt.Writer().serialize(root)
    }

    /// The overlayfs snapshotter's database (`io.containerd.snapshotter.v1.overlayfs/metadata.db`).
    public func snapshotterDB() throws -> Data {
        var snaps = Bolt.Bucket(sequence: snapshotSequence)
        var parents = Bolt.Bucket()
        for s in orderedSnapshots {
            var b = Bolt.Bucket()
            times(&b)
            b.put(GoVarint.encodeUnsigned(s.id), forKey: "id")
            b.put(Data([3]), forKey: "kind")  // committed
            if let p = s.parent, let parent = snapshots[p] {
                b.put(parent.backendKey(namespace: namespace), forKey: "parent")
                var key = GoVarint.encodeUnsigned(parent.id)
                key.append(0)
                key.append(GoVarint.encodeUnsigned(s.id))
                parents.put(Data(s.backendKey(namespace: namespace).utf8), forKey: key)
            }
            b.put(GoVarint.encode(s.inodes), forKey: "inodes")
            b.put(GoVarint.encode(s.size), forKey: "size")
            b.put(bucket: Self.labels(["containerd.io/snapshot.ref": s.chainID.description]), named: "labels")
            snaps.put(bucket: b, named: s.backendKey(namespace: namespace))
        }
        var v1 = Bolt.Bucket()
        v1.put(bucket: snaps, named: "snapshots")
        if !parents.isEmpty { v1.put(bucket: parents, named: "parents") }
        var root = Bolt.Bucket()
        root.put(bucket: v1, named: "v1")
        return try Bolt.Writer().serialize(root)
    }
}
