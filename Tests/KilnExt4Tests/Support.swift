import Foundation
import KilnTestSupport
import Testing

import KilnCore
@testable import KilnExt4

/// The e2fsprogs and util-linux tools the tests compare against.
enum Tools {
    /// sbin first: e2fsprogs and util-linux install there, and a shell's PATH may miss it.
    static let locator = ToolLocator(
        directories: ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"],
        installHint: "apt-get install e2fsprogs util-linux")

    static func find(_ name: String) -> String? { locator.find(name) }

    /// Runs a tool with standard input from /dev/null and captures its output.
    @discardableResult
    static func run(_ tool: String, _ args: [String], timeout: ProcessTimeout? = nil) throws -> ProcessResult {
        try ProcessRunner(timeout: timeout, tools: locator).run(tool, args)
    }

    static var haveE2fsprogs: Bool { find("e2fsck") != nil && find("debugfs") != nil && find("mke2fs") != nil }
    static var isRoot: Bool { getuid() == 0 }

    /// Whether loop devices can be attached here (root, losetup present and a free device).
    static let canLoopMount: Bool = {
        guard isRoot, find("losetup") != nil, find("mount") != nil else { return false }
        guard let r = try? run("losetup", ["-f"]), r.status == 0 else { return false }
        return true
    }()
}

/// A scratch directory removed when the test ends.
final class Scratch {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory(prefix: "kiln-ext4") }

    func path(_ name: String) -> String { directory.path(name) }

    deinit {
        // A test that failed half-way may leave a filesystem mounted below the scratch directory: unmount it
        // (and free its loop device) before deleting anything, or the deletion would reach into the mount.
        if let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) {
            for line in mounts.split(separator: "\n").reversed() {
                let fields = line.split(separator: " ")
                guard fields.count > 1, fields[1].hasPrefix(directory.path) else { continue }
                _ = try? Tools.run("umount", ["-l", String(fields[1])])
                if fields[0].hasPrefix("/dev/loop") { _ = try? Tools.run("losetup", ["-d", String(fields[0])]) }
            }
        }
        directory.remove()
    }
}

/// e2fsck -fn on an image (at an offset, through a read-only loop-free offset option when needed).
func fsck(_ image: String, offset: UInt64 = 0) throws -> ProcessResult {
    var args = ["-fn"]
    if offset > 0 {
        // e2fsck reads at an offset through the unix IO manager's offset option.
        args = ["-fn", "\(image)?offset=\(offset)"]
        return try Tools.run("e2fsck", args)
    }
    args.append(image)
    return try Tools.run("e2fsck", args)
}

/// Asserts that e2fsck finds nothing to fix.
func expectClean(_ image: String, offset: UInt64 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
    // Debugging aid: KILN_EXT4_KEEP=dir keeps a copy of every checked image.
    if let keep = ProcessInfo.processInfo.environment["KILN_EXT4_KEEP"] {
        let dest = keep + "/" + URL(fileURLWithPath: image).lastPathComponent
        try? FileManager.default.removeItem(atPath: dest)
        try? FileManager.default.copyItem(atPath: image, toPath: dest)
    }
    let r = try fsck(image, offset: offset)
    #expect(r.status == 0, "e2fsck -fn failed (\(r.status)):\n\(r.output)", sourceLocation: sourceLocation)
    let lines = r.stdout.split(separator: "\n").filter {
        !$0.hasPrefix("Pass ") && !$0.contains(" files (") && !$0.hasPrefix("e2fsck ")
    }
    #expect(lines.isEmpty, "e2fsck -fn reported:\n\(r.output)", sourceLocation: sourceLocation)
}

func debugfs(_ image: String, _ command: String) throws -> String {
    try Tools.run("debugfs", ["-R", command, image]).stdout
}

let testTime = EXT4.Timestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789)

func options(size: EXT4Writer.Size = .automatic, seed: String = "test") -> EXT4Writer.Options {
    EXT4Writer.Options(size: size, seed: Array(seed.utf8), defaultTime: testTime)
}

/// readlink(2) with room for the longest target (Foundation's helper stops short of 4095 bytes).
func readLink(_ path: String) -> String? {
    var buf = [UInt8](repeating: 0, count: 8192)
    let n = readlink(path, &buf, buf.count)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

// The xattr calls are not exported by the Glibc module; look them up at run time.
private typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
private typealias GetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
private typealias ListXattr = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<CChar>?, Int) -> Int

private func symbol<T>(_ name: String, as: T.Type) -> T {
    guard let p = dlsym(nil, name) else { fatalError("libc has no \(name)") }
    return unsafeBitCast(p, to: T.self)
}

func lsetxattr(_ path: String, _ name: String, _ value: UnsafeRawPointer?, _ size: Int, _ flags: Int32) -> Int32 {
    symbol("lsetxattr", as: SetXattr.self)(path, name, value, size, flags)
}

func lgetxattr(_ path: String, _ name: String, _ value: UnsafeMutableRawPointer?, _ size: Int) -> Int {
    symbol("lgetxattr", as: GetXattr.self)(path, name, value, size)
}

func llistxattr(_ path: String, _ list: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int {
    symbol("llistxattr", as: ListXattr.self)(path, list, size)
}

func deviceMajor(_ rdev: UInt) -> UInt32 { UInt32(truncatingIfNeeded: ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff)) }
func deviceMinor(_ rdev: UInt) -> UInt32 { UInt32(truncatingIfNeeded: (rdev & 0xff) | ((rdev >> 12) & ~0xff)) }

/// Creates a file with plain open/write/close (Foundation's createFile writes atomically and syncs, which
/// is slow for thousands of files).
@discardableResult
func writeSmallFile(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}
