import Foundation

/// The shared AWS `config` and `credentials` files (INI), as the SDKs read them.
public struct SharedConfig: Sendable, Hashable {
    /// Profile name -> key -> value, merged: the credentials file's keys win over the config file's.
    public var profiles: [String: [String: String]]
    /// Which keys came from the credentials file, per profile.
    public var credentialsFileKeys: [String: Set<String>]
    public var configPath: String
    public var credentialsPath: String

    /// Reads both files (missing files are empty), from `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws`.
    public init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        func expand(_ p: String) -> String { p.hasPrefix("~/") ? home + p.dropFirst(1) : p }
        configPath = expand(environment["AWS_CONFIG_FILE"] ?? "~/.aws/config")
        credentialsPath = expand(environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "~/.aws/credentials")
        profiles = [:]
        credentialsFileKeys = [:]
        for (name, keys) in Self.parse(Self.read(configPath), configFile: true) {
            profiles[name, default: [:]].merge(keys) { _, new in new }
        }
        for (name, keys) in Self.parse(Self.read(credentialsPath), configFile: false) {
            profiles[name, default: [:]].merge(keys) { _, new in new }
            credentialsFileKeys[name, default: []].formUnion(keys.keys)
        }
    }

    static func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Sections and their keys. In the config file a section is `[profile NAME]` or `[default]`; in the
    /// credentials file `[NAME]`. Comments start with `#` or `;`; indented lines continue a nested block and are skipped.
    static func parse(_ text: String, configFile: Bool) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if trimmed.hasPrefix("[") && trimmed.hasSuffix("]") {
                var name = String(trimmed.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if configFile {
                    if name.hasPrefix("profile ") {
                        name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces)
                    } else if name != "default" {
                        current = nil  // sso-session, services and other sections
                        continue
                    }
                }
                current = name
                out[name, default: [:]] = out[name] ?? [:]
                continue
            }
            guard let section = current, line.first != " ", line.first != "\t", let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            var value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            // Inline comments need a space before them.
            if let r = value.range(of: " #") ?? value.range(of: " ;") { value = value[..<r.lowerBound].trimmingCharacters(in: .whitespaces) }
            out[section, default: [:]][key] = value
        }
        return out
    }
}
