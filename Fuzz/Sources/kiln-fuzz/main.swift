import Foundation

// kiln-fuzz TARGET [libFuzzer options] [CORPUS...]: runs one target under libFuzzer's driver.
// kiln-fuzz TARGET --replay FILE...: runs the target once on each file, without libFuzzer (regression inputs).

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

var arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget.all[arguments[1]] else {
    FileHandle.standardError.write(Data("usage: kiln-fuzz TARGET [libFuzzer options] [CORPUS...]\ntargets: \(FuzzTarget.all.keys.sorted().joined(separator: " "))\n".utf8))
    exit(2)
}
FuzzTarget.selected = target

if arguments.count >= 3, arguments[2] == "--replay" {
    for file in arguments.dropFirst(3) {
        guard let data = FileManager.default.contents(atPath: file) else {
            FileHandle.standardError.write(Data("kiln-fuzz: cannot read \(file)\n".utf8))
            exit(2)
        }
        [UInt8](data).withUnsafeBufferPointer { target.run(UnsafeRawBufferPointer($0)) }
    }
    exit(0)
}

// libFuzzer sees the program name and its own options, not the target's name.
arguments.remove(at: 1)
var cArguments = arguments.map { strdup($0) } + [nil]
var argc = CInt(arguments.count)
let status = cArguments.withUnsafeMutableBufferPointer { buffer -> CInt in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        FuzzTarget.selected?.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
