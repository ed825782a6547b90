import Testing
@testable import KilnOCI

@Test(arguments: [
    ("linux/amd64", "linux/amd64"),
    ("linux/arm64", "linux/arm64/v8"),
    ("linux/aarch64", "linux/arm64/v8"),
    ("linux/x86_64", "linux/amd64"),
    ("arm64", "linux/arm64/v8"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/arm/6", "linux/arm/v6"),
])
func platformsNormalize(text: String, normalized: String) throws {
    #expect(try Platform(parsing: text).normalized.description == normalized)
}

@Test func variantsMatchLikeContainerd() throws {
    let arm64 = try Platform(parsing: "linux/arm64")
    #expect(arm64.matches(try Platform(parsing: "linux/arm64/v8")))
    #expect(arm64.matches(Platform(os: "linux", architecture: "arm64")))
    #expect(!arm64.matches(try Platform(parsing: "linux/amd64")))
    #expect(!(try Platform(parsing: "linux/arm/v7")).matches(try Platform(parsing: "linux/arm/v6")))
    #expect(!(try Platform(parsing: "windows/amd64")).matches(try Platform(parsing: "linux/amd64")))
}

@Test(arguments: ["", "linux/", "/amd64", "a/b/c/d"])
func malformedPlatformsAreRejected(text: String) {
    #expect(throws: Platform.Error.self) { try Platform(parsing: text) }
}

@Test func sourcesParseLikeSkopeo() throws {
    let a = try ImageSource(parsing: "oci:some/dir:app:v1")
    #expect(a.kind == .ociLayout && a.path == "some/dir" && a.reference == "app:v1")
    let b = try ImageSource(parsing: "docker-archive:x.tar:example.com/app:v1")
    #expect(b.kind == .dockerArchive && b.path == "x.tar" && b.reference == "example.com/app:v1")
    let c = try ImageSource(parsing: "oci-archive:/tmp/a.tar")
    #expect(c.kind == .ociArchive && c.path == "/tmp/a.tar" && c.reference == nil)
    let d = try ImageSource(parsing: "docker://busybox")
    #expect(d.kind == .registry && d.path == "docker.io/library/busybox:latest")
    #expect(throws: ImageSource.Error.self) { try ImageSource(parsing: "containers-storage:busybox") }
    #expect(throws: ImageSource.Error.self) { try ImageSource(parsing: "/definitely/not/here") }
}

@Test func compressionIsSniffedFromMagicBytes() {
    #expect(Compression.sniff([0x1f, 0x8b, 8, 0]) == .gzip)
    #expect(Compression.sniff([0x28, 0xb5, 0x2f, 0xfd]) == .zstd)
    #expect(Compression.sniff([0x50, 0x2a, 0x4d, 0x18]) == .zstd)
    #expect(Compression.sniff(Array("usr/".utf8)) == .none)
}

@Test func layerMediaTypesDeclareTheirCompression() {
    #expect(MediaType.layerCompression(MediaType.ociLayerGzip) == .gzip)
    #expect(MediaType.layerCompression(MediaType.dockerLayerGzip) == .gzip)
    #expect(MediaType.layerCompression(MediaType.ociLayerZstd) == .zstd)
    #expect(MediaType.layerCompression(MediaType.ociLayer) == Compression.none)
    #expect(MediaType.layerCompression("application/vnd.example") == nil)
}
