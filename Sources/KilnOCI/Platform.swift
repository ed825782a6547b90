#if canImport(Glibc)
import Glibc
#endif

/// An image platform: `os/architecture[/variant]`, compared the way containerd's platform matcher does.
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case malformed(String)
        public var description: String {
            switch self {
            case .malformed(let s): return "malformed platform '\(s)' (expected os/arch[/variant], e.g. linux/amd64)"
            }
        }
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant?.isEmpty == true ? nil : variant
    }

    /// Parses `os/arch[/variant]`; a bare architecture means linux.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: \.isEmpty) else { throw Error.malformed(text) }
        switch parts.count {
        case 1: self.init(os: "linux", architecture: parts[0])
        case 2: self.init(os: parts[0], architecture: parts[1])
        case 3: self.init(os: parts[0], architecture: parts[1], variant: parts[2])
        default: throw Error.malformed(text)
        }
    }

    /// The same platform with architecture aliases and default variants filled in
    /// (`aarch64` is `arm64`, `arm64` is `arm64/v8`, `x86_64` is `amd64`, `arm` is `arm/v7`).
    public var normalized: Platform {
        var arch = architecture.lowercased()
        var variant = self.variant?.lowercased()
        switch arch {
        case "x86_64", "x86-64": arch = "amd64"
        case "aarch64": arch = "arm64"
        case "armhf": arch = "arm"; variant = variant ?? "v7"
        case "armel": arch = "arm"; variant = variant ?? "v6"
        case "i386", "i686": arch = "386"
        default: break
        }
        switch arch {
        case "arm64": if variant == nil || variant == "8" { variant = "v8" }
        case "arm": if variant == nil { variant = "v7" } else if let v = variant, !v.hasPrefix("v") { variant = "v" + v }
        case "amd64": if variant == "v1" { variant = nil }
        default: break
        }
        return Platform(os: os.lowercased(), architecture: arch, variant: variant)
    }

    /// True when an image built for `candidate` runs as this platform.
    public func matches(_ candidate: Platform) -> Bool {
        let a = normalized, b = candidate.normalized
        guard a.os == b.os, a.architecture == b.architecture else { return false }
        if a.variant == nil || b.variant == nil { return true }
        return a.variant == b.variant
    }

    public var description: String {
        if let variant { return "\(os)/\(architecture)/\(variant)" }
        return "\(os)/\(architecture)"
    }

    /// The platform of the machine kiln runs on.
    public static var host: Platform {
        #if arch(arm64)
        return Platform(os: "linux", architecture: "arm64", variant: "v8")
        #elseif arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #else
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Platform(os: "linux", architecture: machine).normalized
        #endif
    }

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
    }
}
