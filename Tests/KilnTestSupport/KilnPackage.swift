import Foundation

/// Where things are in the package the tests belong to.
public enum KilnPackage {
    /// The package root: the first directory above this source file that holds Package.swift (the working
    /// directory if none does).
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// The bundled fixtures (`<root>/fixtures`).
    public static let fixtures: String = root + "/fixtures"

    /// The `kiln` binary: `KILN_BIN` when set, else the one built beside the test runner (`swift build` puts both in
    /// `<scratch>/<triple>/<config>/`), else `.build/debug/kiln`, else `.build/release/kiln`. When none exists it is
    /// the debug path, so that a failure names where the binary was expected.
    public static let kilnBinary: String = {
        if let path = ProcessInfo.processInfo.environment["KILN_BIN"], !path.isEmpty { return path }
        var candidates: [String] = []
        if let runner = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(runner.deletingLastPathComponent().appendingPathComponent("kiln").path)
        }
        candidates += ["\(root)/.build/debug/kiln", "\(root)/.build/release/kiln"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "\(root)/.build/debug/kiln"
    }()
}
