import Foundation
import KilnDigest
import KilnTestSupport
import Testing

/// Short names for the package's paths, used throughout these tests.
let packageRoot = KilnPackage.root
let fixtures = KilnPackage.fixtures
let kilnBinary = KilnPackage.kilnBinary

/// Runs a program (a path, or a name on PATH, /usr/sbin or /sbin) and captures its output (no shell).
@discardableResult
func run(_ executable: String, _ arguments: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    try ProcessRunner(directory: cwd, environment: environment).run(executable, arguments)
}

func kiln(_ arguments: String...) throws -> ProcessResult { try run(kilnBinary, arguments) }

/// Checks `document` against the JSON Schema at `schema` with python3-jsonschema (an independent validator):
/// the schema itself must be valid 2020-12, and the document must fit it. Returns the validator's run.
func validateJSON(schema: String, document: String) throws -> ProcessResult {
    try run("python3", ["-c", """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))
        """, schema, document])
}
func kiln(_ arguments: [String]) throws -> ProcessResult { try run(kilnBinary, arguments) }

/// Copies an OCI layout and edits it the way an attacker or a broken tool would, keeping the edits consistent
/// up the tree when asked (so that only one specific check can catch them).
struct LayoutEditor {
    let root: String

    init(copying source: String, into dir: String) throws {
        root = dir + "/layout"
        try FileManager.default.copyItem(atPath: source, toPath: root)
    }

    func blobPath(_ digest: String) -> String { root + "/blobs/sha256/" + digest.replacingOccurrences(of: "sha256:", with: "") }

    func read(_ digest: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: blobPath(digest))) }

    func json(_ digest: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: read(digest)) as? [String: Any] ?? [:]
    }

    func index() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/index.json"))) as? [String: Any] ?? [:]
    }

    /// The manifest digest a tag points at.
    func manifestDigest(tag: String) throws -> String {
        let manifests = try index()["manifests"] as? [[String: Any]] ?? []
        for m in manifests where (m["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag {
            return m["digest"] as? String ?? ""
        }
        throw LayoutError(description: "no manifest tagged \(tag) in \(root)/index.json")
    }

    /// Writes `bytes` as a new blob and rewrites every descriptor pointing at `old` (recursively up to index.json).
    @discardableResult
    func replace(_ old: String, with bytes: Data, sizeOverride: Int? = nil) throws -> String {
        let new = SHA256Hasher.hash(Array(bytes)).description
        try bytes.write(to: URL(fileURLWithPath: blobPath(new)))
        try repoint(old, to: new, size: sizeOverride ?? bytes.count)
        return new
    }

    /// Rewrites every descriptor with digest `old` to `new`/`size` in all JSON documents, re-hashing parents.
    func repoint(_ old: String, to new: String, size: Int) throws {
        let blobs = try FileManager.default.contentsOfDirectory(atPath: root + "/blobs/sha256")
        for hex in blobs {
            let digest = "sha256:" + hex
            guard let data = try? read(digest), data.count < 1 << 20,
                  var obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            if Self.rewrite(&obj, old: old, new: new, size: size) {
                let bytes = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
                try replace(digest, with: bytes)
            }
        }
        var idx = try index()
        if Self.rewrite(&idx, old: old, new: new, size: size) {
            try JSONSerialization.data(withJSONObject: idx, options: [.sortedKeys]).write(to: URL(fileURLWithPath: root + "/index.json"))
        }
    }

    static func rewrite(_ obj: inout [String: Any], old: String, new: String, size: Int) -> Bool {
        var changed = false
        if obj["digest"] as? String == old, obj["mediaType"] != nil {
            obj["digest"] = new
            obj["size"] = size
            changed = true
        }
        for (k, v) in obj {
            if var d = v as? [String: Any], rewrite(&d, old: old, new: new, size: size) { obj[k] = d; changed = true }
            if var list = v as? [[String: Any]] {
                var any = false
                for i in list.indices where rewrite(&list[i], old: old, new: new, size: size) { any = true }
                if any { obj[k] = list; changed = true }
            }
        }
        return changed
    }
}

struct LayoutError: Error, CustomStringConvertible {
    var description: String
}
