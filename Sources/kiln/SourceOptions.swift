import ArgumentParser
import KilnOCI

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

/// Opens and resolves sources; a failure names the source and keeps its exit status.
enum SourceLoader {
    static func resolve(_ text: String, platforms: [Platform], allPlatforms: Bool) throws -> Resolution {
        do {
            let source = try ImageSource(parsing: text)
            let reader = try SourceReader(source)
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
