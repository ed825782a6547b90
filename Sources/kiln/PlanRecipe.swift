import Foundation
import KilnPlan
import Yams

/// The `plan:` section of a recipe: defaults for `kiln plan`, one key per command-line option (camelCase).
/// Other sections belong to the bake and are ignored here.
struct PlanRecipe {
    /// Keys the section may hold, with the option each mirrors.
    static let keys: [String: String] = [
        "manifest": "--manifest", "writtenBytes": "--written-bytes", "snapshotSize": "--snapshot-size",
        "rate": "--rate", "deadline": "--deadline", "volumesPerMinute": "--volumes-per-minute", "burst": "--burst",
        "nodes": "--nodes", "arrivals": "--arrivals", "instanceStart": "--instance-start", "modelBytes": "--model-bytes",
        "models": "--models", "streams": "--streams", "streamLimit": "--stream-limit", "schedule": "--schedule",
        "efsMode": "--efs-mode", "efsReadLimit": "--efs-read-limit", "clientLimit": "--client-limit",
        "efsStored": "--efs-stored", "preloadAfter": "--preload-after", "lazyRate": "--lazy-rate",
        "launchBucket": "--launch-bucket", "launchRefill": "--launch-refill", "launchTokens": "--launch-tokens",
        "azs": "--azs", "ratePrice": "--rate-price", "efsReadPrice": "--efs-read-price", "fsrPrice": "--fsr-price",
    ]
    /// Keys whose values are paths, resolved against the recipe's directory.
    static let pathKeys: Set<String> = ["manifest", "models", "arrivals"]

    var values: [String: String] = [:]
    var name: String?

    init() {}

    /// Reads `path` and keeps the raw text of each `plan:` scalar, so `7m`, `200` and `50GB` reach the
    /// same parsers as the command line.
    init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIFailure.input("recipe '\(path)' does not exist") }
        guard let data = PlanFile.read(path), let text = String(data: data, encoding: .utf8) else {
            throw CLIFailure.io("recipe '\(path)' cannot be read")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw CLIFailure.input("recipe '\(path)' is not valid YAML: \(error)")
        }
        guard let root, let mapping = root.mapping else { throw CLIFailure.input("recipe '\(path)' is not a YAML mapping") }
        name = mapping["name"]?.string
        guard let plan = mapping["plan"] else { return }
        if case .scalar(let scalar) = plan, scalar.string.isEmpty || scalar.string == "null" || scalar.string == "~" { return }
        guard let planMapping = plan.mapping else {
            throw CLIFailure.input("recipe '\(path)': 'plan' must be a mapping of option names to values")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        for (keyNode, valueNode) in planMapping {
            guard let key = keyNode.string else { throw CLIFailure.input("recipe '\(path)': plan keys must be strings") }
            guard Self.keys[key] != nil else {
                let known = Self.keys.keys.sorted().joined(separator: ", ")
                throw CLIFailure.input("recipe '\(path)': unknown key 'plan.\(key)' (known: \(known))")
            }
            guard let value = valueNode.string else {
                throw CLIFailure.input("recipe '\(path)': 'plan.\(key)' must be a single value, like the \(Self.keys[key] ?? "") option")
            }
            if Self.pathKeys.contains(key), !value.hasPrefix("/") {
                values[key] = directory.appendingPathComponent(value).path
            } else {
                values[key] = value
            }
        }
    }

    subscript(key: String) -> String? { values[key] }
}
