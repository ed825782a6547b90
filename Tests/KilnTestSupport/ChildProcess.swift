import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts one program with its standard streams on given descriptors, and waits for that program alone.
///
/// Foundation's `Process` is not used on Linux: it hands every child one end of a socket and reports the exit only
/// once every copy of that end is closed, so a daemon the child starts (and that inherits it) keeps
/// `waitUntilExit()` waiting for as long as the daemon runs. Here the child gets only its three standard streams,
/// and `waitpid` returns as soon as the child itself exits.
enum ChildProcess {
    /// Runs `path` with `arguments` and the complete `environment` in `directory`, in a process group of its own
    /// (as `Process` does, so that a terminal's ^C reaches the test runner, not its children), with no signal
    /// blocked or ignored; returns the exit status, or the signal number when a signal ended it.
    static func run(_ path: String, _ arguments: [String], environment: [String: String], directory: String?,
                    stdin: Int32, stdout: Int32, stderr: Int32) throws -> Int32 {
        #if canImport(Glibc)
        try spawnAndWait(path, arguments, environment: environment, directory: directory,
                         stdin: stdin, stdout: stdout, stderr: stderr)
        #else
        try foundationRun(path, arguments, environment: environment, directory: directory,
                          stdin: stdin, stdout: stdout, stderr: stderr)
        #endif
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    #if canImport(Glibc)
    // GNU extensions (glibc 2.29 and 2.34) that the Glibc module does not import: looked up at run time.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) throws -> T {
        guard let pointer = dlsym(nil, name) else { throw Failure(description: "this C library has no \(name) (glibc has it from 2.34)") }
        return unsafeBitCast(pointer, to: type)
    }

    private static func check(_ result: Int32, _ what: String) throws {
        guard result == 0 else { throw Failure(description: "\(what): \(String(cString: strerror(result)))") }
    }

    private static func spawnAndWait(_ path: String, _ arguments: [String], environment: [String: String],
                                     directory: String?, stdin: Int32, stdout: Int32, stderr: Int32) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in [(stdin, STDIN_FILENO), (stdout, STDOUT_FILENO), (stderr, STDERR_FILENO)] {
            try check(posix_spawn_file_actions_adddup2(&actions, source, target), "posix_spawn_file_actions_adddup2")
        }
        // Nothing but the three streams: a descriptor another test opened must not outlive it in this child.
        try check(symbol("posix_spawn_file_actions_addclosefrom_np", as: AddClosefrom.self)(&actions, 3),
                  "posix_spawn_file_actions_addclosefrom_np")
        if let directory {
            try check(symbol("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)(&actions, directory),
                      "posix_spawn_file_actions_addchdir_np")
        }

        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }
        // The calling thread is a test worker that may block signals, and this process may ignore some (SIGPIPE):
        // the child starts with nothing blocked and every signal at its default, as a program started from a shell
        // does. Otherwise a blocked SIGTERM would leave `timeout` unable to stop it.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        try check(posix_spawnattr_setsigmask(&attributes, &none), "posix_spawnattr_setsigmask")
        try check(posix_spawnattr_setsigdefault(&attributes, &all), "posix_spawnattr_setsigdefault")
        let flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        try check(posix_spawnattr_setflags(&attributes, Int16(flags)), "posix_spawnattr_setflags")
        try check(posix_spawnattr_setpgroup(&attributes, 0), "posix_spawnattr_setpgroup")

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw Failure(description: "cannot run \(path): \(String(cString: strerror(spawned)))") }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw Failure(description: "waitpid \(pid): \(String(cString: strerror(errno)))") }
        }
        // The <sys/wait.h> macros are not imported: the low seven bits are the signal that ended the child (0 for a
        // normal exit), the next byte its exit status.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }
    #else
    private static func foundationRun(_ path: String, _ arguments: [String], environment: [String: String],
                                      directory: String?, stdin: Int32, stdout: Int32, stderr: Int32) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = FileHandle(fileDescriptor: stdin, closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: stdout, closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: stderr, closeOnDealloc: false)
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
    #endif
}
