import Foundation
import KilnTestSupport
import Testing

/// `kiln bake --layout rootfs`: real e2fsck, real loop mounts, umoci as the independent unpacker.
@Suite struct BakeRootfsTests {
    static let sources = [
        "oci:\(fixtures)/example-oci:app:v1",
        "oci:\(fixtures)/example-oci:app:v1-zstd",
        "oci:\(fixtures)/example-oci:app:v1-plain",
        "oci:\(fixtures)/example-oci:tools:1.0",
        "docker-archive:\(fixtures)/example-docker-legacy.tar",
        "oci-archive:\(fixtures)/example-oci-archive.tar",
    ]

    func bake(_ source: String, into dir: String, extra: [String] = [], epoch: String = "1700000000") throws -> ProcessResult {
        try run(kilnBinary, ["bake", "-q", "--source", source, "--layout", "rootfs", "--platform", "linux/amd64", "-o", dir] + extra,
                environment: ["SOURCE_DATE_EPOCH": epoch])
    }

    static func e2fsck(_ image: String) throws -> ProcessResult { try run("e2fsck", ["-fn", image]) }

    @Test(arguments: sources)
    func bakedFilesystemIsClean(source: String) throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let r = try bake(source, into: dir + "/out")
        #expect(r.status == 0, "\(r.stderr)")
        let fsck = try Self.e2fsck(dir + "/out/data.img")
        #expect(fsck.status == 0, "\(fsck.stdout)\(fsck.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/manifest.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/.data.img.partial"))
    }

    /// Mount the image read-only and compare every path with umoci's unpack of the same image.
    @Test(.requires(Requirement("root (for loop mounts and umoci's unpack with owners)", isMet: geteuid() == 0)),
          arguments: ["app:v1-plain", "tools:1.0"])
    func readsBackLikeUmoci(tag: String) throws {
        let scratch = try TemporaryDirectory()
        let dir = scratch.path
        defer { _ = try? run("umount", [dir + "/mnt"]); scratch.remove() }
        #expect(try bake("oci:\(fixtures)/example-oci:\(tag)", into: dir + "/out").status == 0)
        try FileManager.default.createDirectory(atPath: dir + "/mnt", withIntermediateDirectories: true)
        let mount = try run("mount", ["-o", "loop,ro", dir + "/out/data.img", dir + "/mnt"])
        try #require(mount.status == 0, "mount failed: \(mount.stderr)")
        let unpack = try run("umoci", ["unpack", "--image", "\(fixtures)/example-oci:\(tag)", dir + "/bundle"])
        try #require(unpack.status == 0, "\(unpack.stderr)")
        let ours = try run("python3", ["\(packageRoot)/scripts/lib/treelist.py", dir + "/mnt"])
        let theirs = try run("python3", ["\(packageRoot)/scripts/lib/treelist.py", dir + "/bundle/rootfs"])
        _ = try run("umount", [dir + "/mnt"])
        let a = try JSONSerialization.jsonObject(with: Data(ours.stdout.utf8)) as? [String: [String: Any]] ?? [:]
        let b = try JSONSerialization.jsonObject(with: Data(theirs.stdout.utf8)) as? [String: [String: Any]] ?? [:]
        #expect(a.count > 10)
        #expect(Set(a.keys) == Set(b.keys), "only kiln: \(Set(a.keys).subtracting(b.keys)) only umoci: \(Set(b.keys).subtracting(a.keys))")
        for (path, rec) in a {
            guard let other = b[path] else { continue }
            #expect(NSDictionary(dictionary: rec).isEqual(to: other), "\(path): kiln \(rec) umoci \(other)")
        }
    }

    @Test func whiteoutsAndOpaqueDirectoriesAreApplied() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        #expect(try bake("oci:\(fixtures)/example-oci:app:v1", into: dir + "/out").status == 0)
        let image = dir + "/out/data.img"
        func ls(_ path: String) throws -> String { try run("debugfs", ["-R", "ls -l \(path)", image]).stdout }
        let etc = try ls("/etc")
        #expect(!etc.contains("motd"))
        #expect(!etc.contains(".wh."))
        #expect(etc.contains("hostname"))
        let cache = try ls("/var/cache/app")
        #expect(cache.contains("new"))
        for gone in [" a\n", " b\n", " c\n"] { #expect(!cache.contains(gone)) }
        #expect(try ls("/opt").contains("old") == false)
        let hostname = try run("debugfs", ["-R", "cat /etc/hostname", image]).stdout
        #expect(hostname.contains("updated"))
    }

    @Test func badLayerStopsTheBakeWithoutAnImage() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let source = try VerifyTests.corrupt(.flippedGzipByte, in: dir).source
        let r = try bake(source, into: dir + "/out")
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("layer 1"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/data.img"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/.data.img.partial"))
    }

    @Test func sameInputsGiveTheSameBytesAnywhereAsAnyone() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let source = "oci:\(fixtures)/example-oci:app:v1"
        #expect(try bake(source, into: dir + "/a/out").status == 0)
        #expect(try bake(source, into: dir + "/b/deeper/out").status == 0)
        for f in ["data.img", "manifest.json"] {
            let same = try run("cmp", [dir + "/a/out/" + f, dir + "/b/deeper/out/" + f])
            #expect(same.status == 0, "\(f) differs: \(same.stdout)")
        }
        let other = try bake(source, into: dir + "/c/out", epoch: "1800000000")
        #expect(other.status == 0)
        #expect(try run("cmp", ["-s", dir + "/a/out/data.img", dir + "/c/out/data.img"]).status != 0, "SOURCE_DATE_EPOCH must matter")
    }

    @Test(.requires(Requirement("root (to switch to an unprivileged user)", isMet: geteuid() == 0), .tool("setpriv")))
    func unprivilegedBakeGivesTheSameBytes() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let source = "oci:\(fixtures)/example-oci:app:v1"
        #expect(try bake(source, into: dir + "/root/out").status == 0)
        try FileManager.default.createDirectory(atPath: dir + "/nobody", withIntermediateDirectories: true)
        _ = try run("chown", ["65534:65534", dir + "/nobody"])
        _ = try run("chmod", ["755", dir])
        let r = try run("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--",
                                    kilnBinary, "bake", "-q", "--source", source, "--layout", "rootfs",
                                    "--platform", "linux/amd64", "-o", dir + "/nobody/out"],
                        environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try run("cmp", [dir + "/root/out/data.img", dir + "/nobody/out/data.img"]).status == 0)
    }

    /// Layers that try to escape: `..`, absolute paths, symlinks to `/` and `../..` used as directories, hard
    /// links out. Everything must land inside the image, and the host must be untouched.
    @Test func hostileLayersStayInsideTheImage() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let marker = "kiln-escape-\(UUID().uuidString.prefix(8))"
        let script = """
            import tarfile, io, sys
            def f(t, name, data=b'x', **kw):
                i = tarfile.TarInfo(name); i.size = len(data)
                for k, v in kw.items(): setattr(i, k, v)
                t.addfile(i, io.BytesIO(data))
            def l(t, name, target, kind=tarfile.SYMTYPE):
                i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; t.addfile(i)
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
                f(t, '../../../../tmp/\(marker)-dotdot')
                f(t, '/tmp/\(marker)-abs')
                l(t, 'rootlink', '/')
                f(t, 'rootlink/tmp/\(marker)-via-symlink')
                l(t, 'uplink', '../../../..')
                f(t, 'uplink/tmp/\(marker)-via-uplink')
                l(t, 'etc-passwd', '/etc/passwd', tarfile.LNKTYPE) if False else None
                f(t, 'a/../../b', b'inside')
            """
        try run("python3", ["-c", script, dir + "/evil.tar"])
        try run("python3", ["\(packageRoot)/scripts/lib/mklayout.py", dir + "/layout", "evil", "--gzip", dir + "/evil.tar"])
        let r = try bake("oci:\(dir)/layout:evil", into: dir + "/out")
        #expect(r.status == 0, "\(r.stderr)")
        for suffix in ["dotdot", "abs", "via-symlink", "via-uplink"] {
            #expect(!FileManager.default.fileExists(atPath: "/tmp/\(marker)-\(suffix)"), "escaped to /tmp: \(suffix)")
        }
        let image = dir + "/out/data.img"
        #expect(try Self.e2fsck(image).status == 0)
        let tmp = try run("debugfs", ["-R", "ls /tmp", image]).stdout
        for suffix in ["dotdot", "abs", "via-symlink", "via-uplink"] {
            #expect(tmp.contains("\(marker)-\(suffix)"), "\(suffix) should be clamped into the image's /tmp: \(tmp)")
        }
        #expect(try run("debugfs", ["-R", "cat /b", image]).stdout == "inside")
    }

    @Test func decompressionBombsStopAtTheVolumeSize() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let script = """
            import tarfile, io, sys
            class Zeros(io.RawIOBase):
                def __init__(self, n): self.n = n
                def readable(self): return True
                def readinto(self, b):
                    k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
            with tarfile.open(sys.argv[1], 'w') as t:
                i = tarfile.TarInfo('zeros'); i.size = 200 << 20; t.addfile(i, Zeros(i.size))
            """
        try run("python3", ["-c", script, dir + "/bomb.tar"])
        try run("python3", ["\(packageRoot)/scripts/lib/mklayout.py", dir + "/layout", "bomb", "--gzip", dir + "/bomb.tar"])
        try? FileManager.default.removeItem(atPath: dir + "/bomb.tar")
        let r = try bake("oci:\(dir)/layout:bomb", into: dir + "/out", extra: ["--size", "32MiB"])
        // The explicit size bounds what any layer may expand to: this one is too large for the volume (exit 2).
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("volume.size") && r.stderr.contains("does not fit"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/data.img"))
    }

    @Test func rootfsTakesExactlyOneImage() throws {
        let r = try run(kilnBinary, ["bake", "\(fixtures)/recipe.yaml", "--layout", "rootfs", "-o", NSTemporaryDirectory() + "kiln-never"],
                        cwd: packageRoot)
        #expect(r.status == 2)
        #expect(r.stderr.contains("exactly one image"))
    }

    /// Relative sources are looked up from the working directory first, then beside the recipe.
    @Test func relativeSourcesResolveBesideTheRecipe() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        try FileManager.default.copyItem(atPath: fixtures + "/example-oci", toPath: dir + "/example-oci")
        try """
            name: relative
            platform: linux/amd64
            images:
              - source: oci:example-oci:tools:1.0
                names: [example.com/tools:1.0]
            volume:
              layout: rootfs
            """.write(toFile: dir + "/recipe.yaml", atomically: true, encoding: .utf8)
        let r = try run(kilnBinary, ["bake", "-q", dir + "/recipe.yaml", "-o", dir + "/out"], cwd: "/")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/data.img"))
        let missing = try run(kilnBinary, ["bake", "-q", "--source", "oci:no-such-layout:x", "-o", dir + "/out2"], cwd: "/")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no-such-layout"))
    }

    /// The example recipe in recipes/ bakes from any working directory.
    @Test func exampleRecipeBakes() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dir = scratch.path
        let r = try run(kilnBinary, ["bake", "-q", "--json", "\(packageRoot)/recipes/inference.yaml", "-o", dir + "/out"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let inspect = try run(kilnBinary, ["inspect", "--json", dir + "/out/data.img"])
        let obj = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        let containerd = obj?["containerd"] as? [String: Any]
        let blobs = containerd?["blobs"] as? [[String: Any]] ?? []
        // keepLayerBlobs: false leaves only manifests, configs and the index in the content store.
        #expect(!blobs.isEmpty)
        #expect(!blobs.contains { ($0["labels"] as? [String: String])?["containerd.io/uncompressed"] != nil })
        #expect((containerd?["snapshots"] as? [Any])?.count == 4)
    }
}
