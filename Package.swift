// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnCore", targets: ["KilnCore"]),
        .library(name: "KilnDigest", targets: ["KilnDigest"]),
        .library(name: "KilnDisk", targets: ["KilnDisk"]),
        .library(name: "KilnOCI", targets: ["KilnOCI"]),
        .library(name: "KilnLayer", targets: ["KilnLayer"]),
        .library(name: "KilnExt4", targets: ["KilnExt4"]),
        .library(name: "KilnBolt", targets: ["KilnBolt"]),
        .library(name: "KilnPlan", targets: ["KilnPlan"]),
        .library(name: "KilnManifest", targets: ["KilnManifest"]),
        .library(name: "KilnVolume", targets: ["KilnVolume"]),
        .library(name: "KilnContainerd", targets: ["KilnContainerd"]),
        .library(name: "KilnAWS", targets: ["KilnAWS"]),
        .library(name: "KilnEBS", targets: ["KilnEBS"]),
        .library(name: "KilnRegistry", targets: ["KilnRegistry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System libraries, found through pkg-config. Nothing else lives in these targets.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // What every module shares: exit statuses, the quantity parser, the version.
        .target(name: "KilnCore"),
        .target(name: "KilnDigest", dependencies: ["KilnCore", "COpenSSL"]),
        .target(name: "KilnOCI", dependencies: ["KilnCore", "KilnDigest", "CArchive"]),
        .target(name: "KilnLayer", dependencies: ["KilnCore", "KilnDigest", "KilnOCI", "CArchive", "CZstd", "CISAL"]),
        .target(name: "KilnExt4", dependencies: ["KilnCore", "KilnDigest", "CISAL"]),
        .target(name: "KilnBolt", dependencies: ["KilnCore"]),
        .target(name: "KilnDisk", dependencies: ["KilnCore", "KilnExt4"]),
        .target(name: "KilnPlan", dependencies: ["KilnCore"]),
        .target(name: "KilnManifest", dependencies: ["KilnCore", "KilnDigest", "KilnDisk"]),
        .target(name: "KilnContainerd", dependencies: ["KilnCore", "KilnDigest", "KilnOCI", "KilnBolt", "KilnExt4"]),
        .target(
            name: "KilnVolume",
            dependencies: [
                "KilnCore", "KilnDigest", "KilnOCI", "KilnLayer", "KilnExt4", "KilnDisk", "KilnManifest", "KilnContainerd",
                "KilnBolt", "KilnPlan", .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Credentials chain, SigV4, the HTTP client and the EBS, EC2 and STS calls.
        .target(
            name: "KilnAWS",
            dependencies: ["KilnCore", "KilnDigest", "COpenSSL", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // The resumable uploader and its journal, and the snapshot check against a manifest.
        .target(name: "KilnEBS", dependencies: ["KilnCore", "KilnDigest", "KilnManifest", "KilnAWS"]),
        // The OCI distribution client: references, credentials and tokens, TLS, retries, streamed blobs, the cache.
        .target(
            name: "KilnRegistry",
            dependencies: ["KilnCore", "KilnDigest", "KilnOCI", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnCore", "KilnDigest", "KilnOCI", "KilnLayer", "KilnDisk", "KilnPlan", "KilnManifest",
                "KilnVolume", "KilnContainerd", "KilnAWS", "KilnEBS", "KilnRegistry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Process runner, temporary directories, seeded random data, the package root: shared by every test target.
        .target(name: "KilnTestSupport", path: "Tests/KilnTestSupport"),

        .testTarget(name: "KilnDigestTests", dependencies: ["KilnDigest", "KilnTestSupport"]),
        .testTarget(name: "KilnOCITests", dependencies: ["KilnOCI", "KilnCore", "KilnDigest", "KilnTestSupport"]),
        .testTarget(name: "KilnLayerTests", dependencies: ["KilnLayer", "KilnCore", "KilnOCI", "KilnDigest", "KilnTestSupport"]),
        .testTarget(name: "KilnExt4Tests", dependencies: ["KilnExt4", "KilnCore", "KilnTestSupport"]),
        .testTarget(name: "KilnBoltTests", dependencies: ["KilnBolt", "KilnTestSupport"]),
        .testTarget(name: "KilnCoreTests", dependencies: ["KilnCore", "KilnTestSupport"]),
        .testTarget(name: "KilnDiskTests", dependencies: ["KilnDisk", "KilnExt4", "KilnCore", "KilnTestSupport"]),
        .testTarget(name: "KilnPlanTests", dependencies: ["KilnPlan", "KilnCore", "KilnTestSupport"]),
        .testTarget(name: "KilnManifestTests", dependencies: ["KilnManifest", "KilnDigest", "KilnDisk", "KilnTestSupport"]),
        .testTarget(name: "KilnContainerdTests", dependencies: ["KilnContainerd", "KilnBolt", "KilnOCI", "KilnDigest", "KilnTestSupport"]),
        .testTarget(name: "KilnVolumeTests", dependencies: ["KilnVolume", "KilnCore", "KilnExt4", "KilnLayer", "KilnOCI", "KilnDigest", "KilnDisk", "KilnPlan", "KilnContainerd", "KilnManifest", "KilnTestSupport"]),
        // Needs root, loop devices and a real containerd and registry (scripts/lib/containerd-env.sh starts them).
        .testTarget(name: "KilnRegistryTests", dependencies: ["KilnRegistry", "KilnOCI", "KilnCore", "KilnTestSupport"]),
        // Replays Fuzz/regressions/ through the fuzz targets' own code (FuzzTarget.swift is shared with Fuzz/).
        .testTarget(name: "KilnFuzzTests", dependencies: ["KilnCore", "KilnOCI", "KilnLayer", "KilnDisk", "KilnExt4", "KilnBolt",
                                                          "KilnManifest", "KilnVolume", "KilnTestSupport"]),
        .testTarget(name: "KilnAWSTests", dependencies: ["KilnAWS", "KilnCore", "KilnTestSupport"]),
        .testTarget(name: "KilnIntegrationTests", dependencies: ["KilnDigest", "KilnTestSupport"]),
        // Runs the built `kiln` binary against fixtures and peers (umoci, skopeo, e2fsck).
        .testTarget(name: "KilnCLITests", dependencies: ["KilnDigest", "KilnPlan", "KilnTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
