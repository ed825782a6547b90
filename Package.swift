// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnDigest", targets: ["KilnDigest"]),
        .library(name: "KilnOCI", targets: ["KilnOCI"]),
        .library(name: "KilnLayer", targets: ["KilnLayer"]),
        .library(name: "KilnExt4", targets: ["KilnExt4"]),
        .library(name: "KilnBolt", targets: ["KilnBolt"]),
        .library(name: "KilnPlan", targets: ["KilnPlan"]),
        .library(name: "KilnManifest", targets: ["KilnManifest"]),
        .library(name: "KilnVolume", targets: ["KilnVolume"]),
        .library(name: "KilnContainerd", targets: ["KilnContainerd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // System libraries, found through pkg-config. Nothing else lives in these targets.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "KilnDigest", dependencies: ["COpenSSL"]),
        .target(
            name: "KilnOCI",
            dependencies: ["KilnDigest", "CArchive"]
        ),
        .target(
            name: "KilnLayer",
            dependencies: ["KilnDigest", "KilnOCI", "CArchive", "CZstd", "CISAL"]
        ),
        .target(name: "KilnExt4", dependencies: ["KilnDigest", "CISAL"]),
        .target(name: "KilnBolt"),
        .target(name: "KilnPlan"),
        .target(name: "KilnManifest", dependencies: ["KilnDigest"]),
        .target(name: "KilnContainerd", dependencies: ["KilnDigest", "KilnOCI", "KilnBolt"]),
        .target(
            name: "KilnVolume",
            dependencies: [
                "KilnDigest", "KilnOCI", "KilnLayer", "KilnExt4", "KilnManifest", "KilnContainerd",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnDigest", "KilnOCI", "KilnLayer", "KilnExt4", "KilnBolt", "KilnPlan", "KilnManifest", "KilnVolume", "KilnContainerd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        .testTarget(name: "KilnDigestTests", dependencies: ["KilnDigest"]),
        .testTarget(name: "KilnOCITests", dependencies: ["KilnOCI", "KilnDigest"]),
        .testTarget(name: "KilnLayerTests", dependencies: ["KilnLayer", "KilnOCI", "KilnDigest"]),
        .testTarget(name: "KilnExt4Tests", dependencies: ["KilnExt4"]),
        .testTarget(name: "KilnBoltTests", dependencies: ["KilnBolt"]),
        .testTarget(name: "KilnPlanTests", dependencies: ["KilnPlan"]),
        .testTarget(name: "KilnManifestTests", dependencies: ["KilnManifest", "KilnDigest"]),
        .testTarget(name: "KilnContainerdTests", dependencies: ["KilnContainerd", "KilnBolt", "KilnOCI", "KilnDigest"]),
        .testTarget(name: "KilnVolumeTests", dependencies: ["KilnVolume", "KilnExt4", "KilnLayer", "KilnOCI", "KilnDigest"]),
        // Needs root, loop devices and a real containerd and registry (scripts/lib/containerd-env.sh starts them).
        .testTarget(name: "KilnIntegrationTests", dependencies: ["KilnDigest"]),
        // Runs the built `kiln` binary against fixtures and peers (umoci, skopeo, e2fsck).
        .testTarget(name: "KilnCLITests", dependencies: ["KilnDigest"]),
    ],
    swiftLanguageModes: [.v6]
)
