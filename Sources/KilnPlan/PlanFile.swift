import Foundation

/// Reads the planner's input files.
public enum PlanFile {
    /// The whole file, read through a file handle so pipes and process substitutions (`<(...)`) work too;
    /// nil when it cannot be opened or read.
    public static func read(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd() ?? Data()
    }
}
