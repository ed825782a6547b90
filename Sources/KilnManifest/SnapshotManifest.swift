/// Snapshot manifests: what a baked volume holds, down to every 512 KiB EBS block.
public enum SnapshotManifest {}
