// swift-tools-version:6.0
// libFuzzer targets for kiln's readers of untrusted input. Built and run by `scripts/fuzz` (it adds the coverage
// instrumentation and libFuzzer's runtime, which SwiftPM's own `--sanitize=fuzzer` cannot link here).
import PackageDescription

let package = Package(
    name: "kiln-fuzz",
    dependencies: [.package(name: "kiln", path: "..")],
    targets: [
        .executableTarget(
            name: "kiln-fuzz",
            dependencies: [
                .product(name: "KilnCore", package: "kiln"), .product(name: "KilnOCI", package: "kiln"),
                .product(name: "KilnLayer", package: "kiln"), .product(name: "KilnDisk", package: "kiln"),
                .product(name: "KilnExt4", package: "kiln"), .product(name: "KilnBolt", package: "kiln"),
                .product(name: "KilnManifest", package: "kiln"), .product(name: "KilnVolume", package: "kiln"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
