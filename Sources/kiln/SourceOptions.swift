import ArgumentParser
import Foundation
import KilnCore
import KilnOCI
import KilnRegistry

/// Platform selection shared by commands that read image sources.
struct PlatformOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Platform to take from multi-platform images, e.g. linux/arm64 (repeatable; default: this machine's).", valueName: "os/arch[/variant]"))
    var platform: [String] = []

    @Flag(name: .long, help: "Take every platform a multi-platform image lists.")
    var allPlatforms = false

    func platforms() throws -> [Platform] {
        if platform.isEmpty { return [Platform.host] }
        return try platform.map { text in
            do { return try Platform(parsing: text) } catch { throw CLIFailure.input("--platform: \(error)") }
        }
    }
}

/// How `docker://` sources are reached: credentials, TLS and the blob cache (skopeo's option names).
struct RegistryCLIOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Registry credentials file (containers auth.json or docker config.json format; default: REGISTRY_AUTH_FILE, then containers' auth.json, then ~/.docker/config.json).", valueName: "file"))
    var authfile: String?

    @Option(name: .long, help: ArgumentHelp("Directory of CA certificates (*.crt) and a client certificate (*.cert, *.key) for registries (default: /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST).", valueName: "dir"))
    var certDir: String?

    @Option(name: .long, help: ArgumentHelp("Verify registries' TLS certificates and require https (--tls-verify=false accepts any certificate and plain http; loopback registries may always use http).", valueName: "bool"))
    var tlsVerify: Bool = true

    @Option(name: .long, help: ArgumentHelp("Keep every blob fetched from a registry in this OCI layout, so the next run transfers no blob again.", valueName: "dir"))
    var cache: String?

    @Flag(name: .long, help: "Contact no registry: docker:// sources come from the --cache alone (a tag as the digest the cache last fetched it as).")
    var offline = false

    /// The opener of registry sources, `recipeCache` used when `--cache` is not given; layer downloads report to
    /// `transfers` (a progress display's), and warnings to `warn`.
    func opener(recipeCache: String? = nil, transfers: TransferBoard? = nil,
                warn: @escaping @Sendable (String) -> Void = { Console.warning($0) }) throws -> RegistryImageOpener {
        var options = RegistryOptions()
        options.transfers = transfers
        options.authFile = authfile
        options.certDirectory = certDir
        options.tlsVerify = tlsVerify
        options.cacheDirectory = cache ?? recipeCache
        options.offline = offline
        guard !offline || options.cacheDirectory != nil else {
            throw CLIFailure.input("--offline needs a cache to read from: give --cache DIR (or the recipe's cache:)")
        }
        options.warn = warn
        return try RegistryImageOpener(options: options)
    }
}

/// Opens and resolves sources; a failure names the source and keeps its exit status.
enum SourceLoader {
    static func resolve(_ text: String, platforms: [Platform], allPlatforms: Bool, remote: (any RemoteImageOpener)? = nil) throws -> Resolution {
        do {
            let source = try ImageSource(parsing: text)
            let reader = try SourceReader(source, remote: remote)
            return try reader.resolve(platforms: platforms, allPlatforms: allPlatforms)
        } catch let e as BlobError {
            // Blob errors name the blob, not the source it came from.
            throw CLIFailure.wrapping(text, e)
        }
    }
}

/// Human-readable byte counts: 1.5 MB (decimal, as registries and EBS bill).
func formatBytes(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"]
    var value = Double(n)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    if unit == 0 { return "\(n) B" }
    return String(format: value >= 100 ? "%.0f %@" : value >= 10 ? "%.1f %@" : "%.2f %@", value, units[unit])
}
