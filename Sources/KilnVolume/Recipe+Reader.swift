import Foundation
import KilnCore
import KilnDigest
import KilnOCI
import KilnPlan
import Yams

extension Recipe {
    /// Every key a recipe may hold, by section; the reader refuses any other.
    enum Keys {
        static let top = ["name", "platform", "platforms", "images", "cache", "volume", "manifest", "plan"]
        static let image = ["source", "names"]
        static let volume = ["layout", "size", "keepLayerBlobs", "namespace", "base", "baseOptional"]
        static let manifest = ["fileDigest"]
        static let plan = PlanOption.allCases.map(\.rawValue)
    }

    /// Loads and validates a recipe file, strictly: unknown or duplicate keys at any level, values of the
    /// wrong type and values that do not read (sizes, platforms, plan options) are input errors naming the
    /// file and the key's full path (`volume.size`, `images[1].names[0]`, `plan.deadline`).
    public init(path: String) throws(Error) {
        guard FileManager.default.fileExists(atPath: path) else { throw .notFound(path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path, (error as NSError).localizedFailureReason ?? "not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .malformed(path, "not UTF-8 text") }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw .malformed(path, "\(error)".split(separator: "\n").first.map(String.init) ?? "invalid YAML")
        }
        guard let root else { throw .malformed(path, "the file is empty") }
        let reader = RecipeNode(node: root, key: "", file: path)
        let top = try reader.mapping(allowed: Keys.top)

        // A recipe without images still serves `kiln plan`; the bake refuses it.
        var images: [Image] = []
        for item in try top["images"]?.list() ?? [] {
            let fields = try item.mapping(allowed: Keys.image)
            guard let sourceNode = fields["source"] else { throw .invalid(file: path, key: item.key + ".source", "is missing") }
            let source = try sourceNode.string()
            guard !source.isEmpty else { throw .invalid(file: path, key: sourceNode.key, "is empty") }
            var names: [String]? = nil
            if let list = fields["names"] {
                names = []
                for node in try list.list() { names?.append(try node.string()) }
            }
            images.append(Image(source: source, names: names))
        }

        var platforms: [Platform] = []
        var platformNodes: [RecipeNode] = []
        if let list = top["platforms"] { platformNodes += try list.list() }
        if let one = top["platform"] { platformNodes.append(one) }
        for node in platformNodes {
            let text = try node.string()
            do { platforms.append(try Platform(parsing: text)) } catch { throw .invalid(file: path, key: node.key, "\(error)") }
        }

        let volume = try top["volume"]?.mapping(allowed: Keys.volume) ?? [:]
        var layout = Layout.bottlerocket
        if let node = volume["layout"] {
            let text = try node.string()
            guard let value = Layout(rawValue: text) else {
                throw .invalid(file: path, key: node.key, "'\(text)' is not a layout (\(Layout.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            layout = value
        }
        var size = VolumeSize.automatic
        if let node = volume["size"] {
            let text = try node.string()
            do { size = try VolumeSize(parsing: text) } catch { throw .invalid(file: path, key: node.key, "\(error)") }
        }
        var namespace = "k8s.io"
        if let node = volume["namespace"] {
            namespace = try node.string()
            guard Self.isValidNamespace(namespace) else { throw .invalid(file: path, key: node.key, "'\(namespace)' is not a valid containerd namespace") }
        }

        let name = try top["name"]?.string() ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        self.init(name: name, platforms: platforms.isEmpty ? [Platform.host] : platforms, images: images, layout: layout,
                  size: size, keepLayerBlobs: try volume["keepLayerBlobs"]?.bool() ?? true, namespace: namespace)
        let manifest = try top["manifest"]?.mapping(allowed: Keys.manifest) ?? [:]
        fileDigest = try manifest["fileDigest"]?.bool() ?? false
        self.path = path
        self.digest = SHA256Hasher.hash(Array(data))
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        self.baseDirectory = directory.path

        var plan = PlanOptions(name: top["name"] != nil ? name : nil)
        for (key, node) in try top["plan"]?.mappingPairs(allowed: Keys.plan) ?? [] {
            guard let option = PlanOption(key: key) else { continue }
            var value = try node.string()
            if option.kind == .path, !value.hasPrefix("/") { value = directory.appendingPathComponent(value).path }
            plan[option] = PlanSetting(value, origin: .recipe(path))
        }
        do { try plan.validate() } catch { throw .plan(error) }
        self.plan = plan
        if let node = volume["base"] {
            let value = try node.string()
            guard !value.isEmpty else { throw .invalid(file: path, key: node.key, "is empty") }
            base = value.hasPrefix("/") ? value : directory.appendingPathComponent(value).path
        }
        baseOptional = try volume["baseOptional"]?.bool() ?? false
        if let node = top["cache"] {
            let value = try node.string()
            guard !value.isEmpty else { throw .invalid(file: path, key: node.key, "is empty") }
            cache = value.hasPrefix("/") ? value : directory.appendingPathComponent(value).path
        }
    }
}

/// One node of a recipe's YAML tree and the full path of the key that holds it, for messages.
struct RecipeNode {
    let node: Node
    /// `volume.size`, `images[0].source`; empty at the top.
    let key: String
    let file: String

    private var label: String { key.isEmpty ? "the top level" : key }

    /// True for an empty value (`key:` or `key: ~`), which counts as absent.
    var isNull: Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// The mapping's values by key, refusing keys outside `allowed` and keys given twice.
    func mapping(allowed: [String]) throws(Recipe.Error) -> [String: RecipeNode] {
        var out: [String: RecipeNode] = [:]
        for (k, v) in try mappingPairs(allowed: allowed) { out[k] = v }
        return out
    }

    /// The mapping's pairs in file order; an empty value is an empty mapping.
    func mappingPairs(allowed: [String]) throws(Recipe.Error) -> [(String, RecipeNode)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else { throw .invalid(file: file, key: label, "expected a mapping of keys to values") }
        var seen: Set<String> = []
        var out: [(String, RecipeNode)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw .invalid(file: file, key: label, "keys must be plain words") }
            let name = scalar.string
            let full = key.isEmpty ? name : "\(key).\(name)"
            guard allowed.contains(name) else {
                throw .unknownKey(file: file, key: full, closest: Self.closest(to: name, in: allowed), valid: allowed)
            }
            guard seen.insert(name).inserted else { throw .duplicateKey(file: file, key: full) }
            let child = RecipeNode(node: valueNode, key: full, file: file)
            if child.isNull { continue }
            out.append((name, child))
        }
        return out
    }

    /// The list's items; a single scalar is not taken as a one-item list.
    func list() throws(Recipe.Error) -> [RecipeNode] {
        if isNull { return [] }
        guard case .sequence(let sequence) = node else { throw .invalid(file: file, key: label, "expected a list") }
        return sequence.enumerated().map { i, item in RecipeNode(node: item, key: "\(key)[\(i)]", file: file) }
    }

    func string() throws(Recipe.Error) -> String {
        guard case .scalar(let s) = node else { throw .invalid(file: file, key: label, "expected a single value") }
        return s.string
    }

    /// `true` or `false` (any case); YAML 1.1's `yes`/`no`/`on`/`off` are refused as ambiguous.
    func bool() throws(Recipe.Error) -> Bool {
        let text = try string()
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw .invalid(file: file, key: label, "'\(text)' is not true or false")
        }
    }

    /// The valid key nearest to `name` by edit distance (ignoring case), when it is near enough to be a typo.
    static func closest(to name: String, in candidates: [String]) -> String? {
        let lowered = Array(name.lowercased())
        var best: (String, Int)? = nil
        for candidate in candidates {
            let d = editDistance(lowered, Array(candidate.lowercased()))
            if let current = best, d >= current.1 { continue }
            best = (candidate, d)
        }
        guard let (match, distance) = best, distance <= max(2, name.count / 3) else { return nil }
        return match
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
