import Foundation
import KilnTestSupport
import Testing

/// kiln's baked volumes against the real thing: sgdisk, e2fsck and Go's bbolt check the bytes; a private
/// containerd (started by scripts/lib/containerd-env.sh on a loop mount of the volume) must see every image as
/// pulled and unpacked, keep everything through its garbage collection, run the image and not fetch a layer
/// again, in each generation: Debian 12's 1.6 and the 1.7 and 2.1 releases (`ContainerdRelease`);
/// scripts/compare-containerd compares the whole root with a real CRI pull.
///
/// Serialized: the tests share loop devices, and each starts daemons of its own.
@Suite("containerd integration", .serialized)
struct ContainerdIntegrationTests {
    static let platform = "linux/amd64"

    // MARK: - The bytes: GPT, ext4, bbolt

    @Test("bottlerocket bake: sgdisk, e2fsck and bbolt's tx.Check find nothing wrong",
          requires(.kiln, .gpt, .e2fs, .bbolt))
    func bakedVolumePassesIndependentCheckers() throws {
        let baked = try Baked.bottlerocket.get()
        let verify = try run(["sgdisk", "-v", baked.image])
        #expect(verify.status == 0 && verify.stdout.contains("No problems found"), "sgdisk -v: \(verify)")

        let info = try run(["sgdisk", "-i", "1", baked.image])
        try #require(info.status == 0, "sgdisk -i 1: \(info)")
        func field(_ name: String) -> String? {
            info.stdout.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
        }
        #expect(field("Partition GUID code")?.hasPrefix("626F7474-6C65-6474-6861-726D61726B73") == true, "\(info.stdout)")
        #expect(field("Partition unique GUID") == "5B94E8DF-28B8-485C-9D19-362263B5944C", "\(info.stdout)")
        #expect(field("Partition name") == "'BOTTLEROCKET-DATA'", "\(info.stdout)")
        let first = try #require(field("First sector").flatMap { UInt64($0.split(separator: " ")[0]) })
        let last = try #require(field("Last sector").flatMap { UInt64($0.split(separator: " ")[0]) })
        #expect(first == 2048, "the data partition starts at 1 MiB")
        let sectors = try #require(try FileManager.default.attributesOfItem(atPath: baked.image)[.size] as? UInt64) / 512
        #expect(last + 1 + 2048 <= sectors, "the last MiB stays free for the backup GPT (last sector \(last) of \(sectors))")
        #expect(try run(["sgdisk", "-p", baked.image]).stdout.split(separator: "\n").filter {
            $0.trimmingCharacters(in: .whitespaces).first?.isNumber == true
        }.count == 1, "exactly one partition")

        // The partition on its own, cut out with dd: e2fsck and debugfs need no loop device.
        let dir = try TestEnvironment("fsck")
        defer { dir.close() }
        let part = dir.dir + "/partition.img"
        let dd = try run(["dd", "if=\(baked.image)", "of=\(part)", "bs=512", "skip=\(first)", "count=\(last - first + 1)",
                          "conv=sparse", "status=none"])
        try #require(dd.status == 0, "dd: \(dd)")
        let fsck = try run(["e2fsck", "-fn", part])
        #expect(fsck.status == 0, "e2fsck -fn on the data partition: \(fsck)")

        let root = "/var/lib/containerd"
        for (db, copy) in [("io.containerd.metadata.v1.bolt/meta.db", "meta.db"),
                           ("io.containerd.snapshotter.v1.overlayfs/metadata.db", "metadata.db")] {
            let out = dir.dir + "/" + copy
            let dump = try run(["debugfs", "-R", "dump \(root)/\(db) \(out)", part])
            try #require(dump.status == 0 && FileManager.default.fileExists(atPath: out), "debugfs dump \(db): \(dump)")
            _ = try BoltDump(file: out)
        }

        // Every CRI name of every recipe image, labelled as CRI labels its pulls.
        let meta = try BoltDump(file: dir.dir + "/meta.db")
        try #require(Fixtures.images.count == 2, "could not read the recipe's images from fixtures/example-oci")
        for image in Fixtures.images {
            for name in image.criNames {
                #expect(meta.hasBucket(["v1", "k8s.io", "images", name]), "meta.db has no image \(name)")
                #expect(meta.value(["v1", "k8s.io", "images", name, "labels"], "io.cri-containerd.image") == "managed",
                        "image \(name) lacks io.cri-containerd.image=managed")
                #expect(meta.value(["v1", "k8s.io", "images", name, "target"], "digest") == image.targetDigest,
                        "image \(name) does not point at \(image.targetDigest)")
            }
        }
    }

    // MARK: - containerd opens it

    @Test("a private containerd sees every image complete and unpacked; its GC removes nothing",
          requires(.kiln, .root, .loop, .overlay, .containerd, .bbolt), arguments: ContainerdRelease.installed)
    func containerdSeesEverythingAndKeepsIt(_ release: ContainerdRelease) throws {
        let baked = try Baked.bottlerocket.get()
        let env = try TestEnvironment("gc", containerd: release)
        defer { env.close() }
        // Mount first, list, then start containerd on the same mount.
        let copy = env.dir + "/volume.img"
        try #require(try run(["cp", "--sparse=always", baked.image, copy]).status == 0)
        let mount = try env.env("mount-volume", copy, env.dir + "/mnt")
        try #require(mount.status == 0, "mount: \(mount)")
        let root = env.dir + "/mnt/var/lib/containerd"
        let metaPath = root + "/io.containerd.metadata.v1.bolt/meta.db"
        let snapPath = root + "/io.containerd.snapshotter.v1.overlayfs/metadata.db"
        let filesBefore = try listTree(root)
        let metaBefore = try BoltDump(file: metaPath)
        let snapBefore = try BoltDump(file: snapPath)

        let start = try env.env("start-containerd", root, env.dir + "/state", env.socket, timeout: 60)
        try #require(start.status == 0, "containerd did not start: \(start)\n\(env.containerdLog())")
        try env.requireServerVersion()
        #expect(env.waitForGarbageCollection(), "containerd logged no garbage collection within 15 s")

        let check = try env.ctr("-n", "k8s.io", "images", "check")
        try #require(check.status == 0, "ctr images check: \(check)")
        let rows = parseImagesCheck(check.stdout)
        let expectedNames = Set(Fixtures.images.flatMap(\.criNames))
        #expect(Set(rows.keys) == expectedNames, "ctr images check lists \(rows.keys.sorted())\n\(check.stdout)")
        for (name, row) in rows {
            #expect(row.status.hasPrefix("complete"), "\(name): \(row.status)")
            #expect(row.unpacked == "true", "\(name) is not unpacked")
        }
        let snapshots = try env.ctr("-n", "k8s.io", "snapshots", "--snapshotter", "overlayfs", "ls")
        try #require(snapshots.status == 0, "ctr snapshots ls: \(snapshots)")
        let committed = Set(snapshots.stdout.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let f = line.split(separator: " ")
            return f.last == "Committed" ? f.first.map(String.init) : nil
        })
        #expect(committed == Set(Fixtures.images.flatMap(\.chainIDs)), "committed snapshots: \(snapshots.stdout)")

        let stop = try env.env("stop-containerd", timeout: 60)
        #expect(stop.status == 0, "stop: \(stop)")
        let filesAfter = try listTree(root)
        // containerd adds its plugin directories at every start (each generation its own) and sets its root to 0700.
        let runtimeDirs = ["io.containerd.grpc.v1.cri", "io.containerd.grpc.v1.introspection",
                           "io.containerd.runtime.v1.linux", "io.containerd.runtime.v2.task",
                           "io.containerd.snapshotter.v1.native", "io.containerd.snapshotter.v1.blockfile",
                           "io.containerd.snapshotter.v1.erofs", "io.containerd.sandbox.controller.v1.shim", "tmpmounts"]
        func expectedToChange(_ entry: String) -> Bool {
            let path = entry.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false).last.map(String.init) ?? ""
            return path.isEmpty  // the root itself: mode 0711 -> 0700
                || runtimeDirs.contains { path == $0 || path.hasPrefix($0 + "/") }
                || path == "io.containerd.metadata.v1.bolt/meta.db"  // bbolt grows the file when it opens it
                || path == "io.containerd.snapshotter.v1.overlayfs/metadata.db"
        }
        let removed = filesBefore.subtracting(filesAfter).filter { !expectedToChange($0) }
        let added = filesAfter.subtracting(filesBefore).filter { !expectedToChange($0) }
        #expect(removed.isEmpty, "gone or changed after a containerd start/stop: \(removed.sorted())")
        #expect(added.isEmpty, "new or changed after a containerd start/stop: \(added.sorted())")
        let metaAfter = try BoltDump(file: metaPath)
        let snapAfter = try BoltDump(file: snapPath)
        // 2.x migrates the schema from v3 to v4 at start; with no sandboxes to move, the version (a varint) is all
        // it changes. Everything else must stay as the bake wrote it.
        #expect(metaBefore.value(["v1"], "version") == "06", "the bake writes meta.db schema v3")
        let migrated = release.migratesMetadata
            ? BoltDump(lines: metaBefore.lines.map { $0 == BoltDump.versionLine(3) ? BoltDump.versionLine(4) : $0 }) : metaBefore
        #expect(migrated == metaAfter, "meta.db changed:\n\(lineDiff(migrated, metaAfter))")
        #expect(snapBefore == snapAfter, "metadata.db changed:\n\(lineDiff(snapBefore, snapAfter))")
    }

    /// kubelet's view, through the CRI plugin.
    @Test("CRI lists every baked image under its name",
          requires(.kiln, .root, .loop, .overlay, .containerd, .grpc), arguments: ContainerdRelease.installed)
    func criListsEveryImage(_ release: ContainerdRelease) throws {
        let baked = try Baked.bottlerocket.get()
        let env = try TestEnvironment("cri", containerd: release)
        defer { env.close() }
        _ = try env.startContainerd(on: baked.image)
        let cri = try run([python, criScript, env.socket, "list"])
        #expect(cri.status == 0, "CRI ListImages: \(cri)")
        for image in Fixtures.images {
            let row = cri.stdout.split(separator: "\n").first { $0.hasPrefix(image.configDigest + " ") }
            #expect(row?.contains(image.name) == true, "CRI does not list \(image.name): \(cri.stdout)")
        }
    }

    @Test("ctr run: the top layer's file is there, whited-out files are not",
          requires(.kiln, .root, .loop, .overlay, .containerd, .runc), arguments: ContainerdRelease.installed)
    func runsTheImage(_ release: ContainerdRelease) throws {
        let baked = try Baked.bottlerocket.get()
        let env = try TestEnvironment("run", containerd: release)
        defer { env.close() }
        _ = try env.startContainerd(on: baked.image)
        let r = try env.ctr("-n", "k8s.io", "run", "--rm", "--snapshotter", "overlayfs", "--fifo-dir", env.envDir + "/fifo",
                            "registry.example.com/app:v1", "t1", "/bin/sh", "-c", "cat /app/config.json; ls /etc /var/cache/app",
                            timeout: 60)
        try #require(r.status == 0, "ctr run: \(r)\n\(env.containerdLog())")

        // The expected file content comes from the layer blob itself, read with GNU tar.
        let app = try #require(Fixtures.images.first)
        let l2 = "\(fixtures)/example-oci/blobs/sha256/\(app.layerDigests[2].replacingOccurrences(of: "sha256:", with: ""))"
        let config = try run(["tar", "-xzOf", l2, "app/config.json"])
        try #require(config.status == 0 && !config.stdout.isEmpty, "tar: \(config)")
        #expect(r.stdout.contains(config.stdout.trimmingCharacters(in: .newlines)), "no app/config.json in: \(r.stdout)")

        func listing(_ dir: String) -> Set<String> {
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let i = lines.firstIndex(of: dir + ":") else { return [] }
            return Set(lines[(i + 1)...].prefix { !$0.isEmpty && !$0.hasSuffix(":") })
        }
        #expect(listing("/etc") == ["hostname", "issue", "issue.net", "os-release", "xattr-file"],
                "/etc shows \(listing("/etc").sorted()) (motd is whited out in L1)")
        #expect(listing("/var/cache/app") == ["new"], "/var/cache/app shows \(listing("/var/cache/app").sorted()) (opaque in L1)")
    }

    @Test("pulling the baked images again (ctr, then CRI as kubelet does) from a registry fetches no blob",
          requires(.kiln, .root, .loop, .overlay, .containerd, .registry, .skopeo, .grpc), arguments: ContainerdRelease.installed)
    func pullTransfersNothing(_ release: ContainerdRelease) throws {
        let baked = try Baked.bottlerocket.get()
        let env = try TestEnvironment("pull", containerd: release)
        defer { env.close() }
        let port = try env.env("free-port").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let registry = try env.env("start-registry", port, env.dir + "/registry", timeout: 60)
        try #require(registry.status == 0, "registry: \(registry)")
        let push = try env.env("push-fixtures", port, timeout: 180)
        try #require(push.status == 0, "push: \(push)")
        _ = try env.startContainerd(on: baked.image)
        let hosts = try env.env("hosts-dir").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let mark = try env.env("log-lines").stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        for image in Fixtures.images {
            let pull = try env.ctr("-n", "k8s.io", "images", "pull", "--hosts-dir", hosts, "--platform", Self.platform,
                                   image.name, timeout: 120)
            #expect(pull.status == 0, "ctr pull \(image.name): \(pull)")
        }
        let cri = try run([python, criScript, env.socket, "pull"] + Fixtures.images.map(\.name), timeout: 120)
        #expect(cri.status == 0, "CRI PullImage: \(cri)")
        let gets = try env.env("blob-gets", mark).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(gets == "0", "the registry served \(gets) blob(s):\n\(registryLog(env, since: mark))")
        // The registry was asked (it resolved the tags), so zero is not from a pull that went elsewhere.
        let requests = registryLog(env, since: mark).split(separator: "\n").filter { $0.contains("\"HEAD /v2/") || $0.contains("\"GET /v2/") }
        #expect(!requests.isEmpty, "the pulls never reached the local registry")

        // The counter itself sees a blob fetch.
        let app = try #require(Fixtures.images.first)
        let fetch = try run(["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:\(port)/v2/app/blobs/\(app.layerDigests[0])"])
        #expect(fetch.status == 0, "curl: \(fetch)")
        let after = try env.env("blob-gets", mark).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(after == "1", "a blob GET was not counted (\(after))")
    }

    func registryLog(_ env: TestEnvironment, since mark: String) -> String {
        let log = (try? String(contentsOfFile: env.envDir + "/registry.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(Int(mark) ?? 0)
            .filter { $0.contains("HTTP/1.1\"") }.joined(separator: "\n")
    }

    // MARK: - Side by side with a real pull

    @Test("the baked root matches a real containerd's CRI pull (scripts/compare-containerd)",
          requires(.kiln, .root, .loop, .overlay, .containerd, .registry, .skopeo, .gpt, .e2fs, .bbolt, .grpc),
          arguments: ContainerdRelease.installed)
    func matchesARealPull(_ release: ContainerdRelease) throws {
        let baked = try Baked.bottlerocket.get()
        let dir = try TestEnvironment("compare", containerd: release)
        defer { dir.close() }
        let json = dir.dir + "/compare.json"
        let r = try run(["scripts/compare-containerd", "fixtures/recipe.yaml", "--kiln-image", baked.image, "--json", json,
                         "--work", dir.dir + "/work"] + (release.bin.map { ["--containerd", $0] } ?? []),
                        environment: ["BOLTCHECK": try Baked.boltcheck.get()], timeout: 240)
        #expect(r.status == 0, "compare-containerd:\n\(r.stdout)\n\(r.stderr)")
        let report = try Fixtures.json(Data(contentsOf: URL(fileURLWithPath: json)))
        let blocks = report["blocks"] as? [String: [String: Int]] ?? [:]
        #expect((blocks["kiln"]?["written"] ?? 0) > 0 && (blocks["real containerd"]?["written"] ?? 0) > 0,
                "no written-block counts in the report: \(blocks)")
    }

    @Test("hostile and odd layers (scripts/lib/hostile-layers.py: accepted) unpack as a real containerd's CRI pull unpacks them",
          requires(.kiln, .root, .loop, .overlay, .containerd, .registry, .skopeo, .gpt, .e2fs, .bbolt, .grpc),
          arguments: ContainerdRelease.installed)
    func hostileLayersMatchARealPull(_ release: ContainerdRelease) throws {
        let dir = try TestEnvironment("hostile", containerd: release)
        defer { dir.close() }
        let layout = dir.dir + "/layout"
        let made = try run(["python3", "scripts/lib/hostile-layers.py", layout], environment: [:], timeout: 60)
        try #require(made.status == 0, "hostile-layers.py: \(made.stderr)")
        let recipe = """
            name: hostile
            platform: linux/amd64
            images:
              - source: oci:\(layout):accepted
                names: [registry.example.com/hostile:accepted]
            volume:
              layout: bottlerocket
            """
        try recipe.write(toFile: dir.dir + "/recipe.yaml", atomically: true, encoding: .utf8)
        // containerd writes the sparse file's holes as zeros: its volume needs room for all 64 MiB.
        let r = try run(["scripts/compare-containerd", dir.dir + "/recipe.yaml", "--kiln", kilnBinary, "--real-size", "512M",
                         "--work", dir.dir + "/work"] + (release.bin.map { ["--containerd", $0] } ?? []),
                        environment: ["BOLTCHECK": try Baked.boltcheck.get(), "SOURCE_DATE_EPOCH": "1700000000"], timeout: 240)
        #expect(r.status == 0, "compare-containerd (hostile layers):\n\(r.stdout.suffix(6000))\n\(r.stderr.suffix(3000))")
        #expect(r.stdout.contains("SAME"), "\(r.stdout.suffix(3000))")
    }

    @Test("keepLayerBlobs: false matches a real pull with CRI's discard_unpacked_layers",
          requires(.kiln, .root, .loop, .overlay, .containerd, .registry, .skopeo, .gpt, .e2fs, .bbolt, .grpc))
    func withoutLayerBlobsMatchesDiscardUnpackedLayers() throws {
        let dir = try TestEnvironment("nolayers")
        defer { dir.close() }
        let recipe = try String(contentsOfFile: fixtures + "/recipe.yaml", encoding: .utf8)
        try #require(recipe.contains("\nvolume:\n"), "fixtures/recipe.yaml has no volume section")
        let edited = recipe.replacingOccurrences(of: "\nvolume:\n", with: "\nvolume:\n  keepLayerBlobs: false\n")
        try edited.write(toFile: dir.dir + "/recipe.yaml", atomically: true, encoding: .utf8)
        let r = try run(["scripts/compare-containerd", dir.dir + "/recipe.yaml", "--kiln", kilnBinary, "--work", dir.dir + "/work"],
                        environment: ["BOLTCHECK": try Baked.boltcheck.get(), "SOURCE_DATE_EPOCH": "1700000000"], timeout: 240)
        #expect(r.status == 0, "compare-containerd (keepLayerBlobs: false):\n\(r.stdout)\n\(r.stderr)")
    }

    @Test("another platform (linux/arm64/v8 from the app:v1 index) matches a real ctr pull of that platform",
          requires(.kiln, .root, .loop, .overlay, .containerd, .registry, .skopeo, .gpt, .e2fs, .bbolt))
    func otherPlatformMatchesCtrPull() throws {
        let dir = try TestEnvironment("arm64")
        defer { dir.close() }
        // CRI pulls only this machine's platform, so compare-containerd pulls with ctr --platform here.
        let recipe = """
            name: arm64
            platform: linux/arm64/v8
            images:
              - source: oci:fixtures/example-oci:app:v1
                names: [registry.example.com/app:v1]
            volume:
              layout: bottlerocket
              size: auto

            """
        try recipe.write(toFile: dir.dir + "/recipe.yaml", atomically: true, encoding: .utf8)
        let r = try run(["scripts/compare-containerd", dir.dir + "/recipe.yaml", "--kiln", kilnBinary, "--work", dir.dir + "/work"],
                        environment: ["BOLTCHECK": try Baked.boltcheck.get(), "SOURCE_DATE_EPOCH": "1700000000"], timeout: 240)
        #expect(r.status == 0, "compare-containerd (linux/arm64/v8, ctr pull):\n\(r.stdout)\n\(r.stderr)")
    }

    @Test("two real pulls compare equal: the comparison reports only documented differences",
          requires(.root, .loop, .overlay, .containerd, .registry, .skopeo, .gpt, .e2fs, .bbolt, .grpc))
    func comparisonOfTwoRealPullsIsClean() throws {
        let dir = try TestEnvironment("selfcheck")
        defer { dir.close() }
        var environment = ["KILN_ENV_LIFETIME": "300"]
        if case .success(let tool) = Baked.boltcheck { environment["BOLTCHECK"] = tool }
        let r = try run(["scripts/compare-containerd", "fixtures/recipe.yaml", "--against-real", "--work", dir.dir + "/work"],
                        environment: environment, timeout: 240)
        #expect(r.status == 0, "compare-containerd --against-real:\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("result: SAME"), "\(r.stdout)")
    }

    // MARK: - Incremental bakes

    @Test("bake --base: a volume rebaked onto a previous one (an image added) is e2fsck-clean, complete and GC-safe in containerd, and runs",
          requires(.kiln, .root, .loop, .overlay, .containerd, .runc, .e2fs, .bbolt), arguments: ContainerdRelease.installed)
    func rebakedVolumeOpens(_ release: ContainerdRelease) throws {
        let env = try TestEnvironment("rebake", containerd: release)
        defer { env.close() }
        let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
        let v1 = env.dir + "/v1", v2 = env.dir + "/v2"
        let first = try run([kilnBinary, "bake", "-q", "--source", "oci:fixtures/example-oci:tools:1.0", "--name", "registry.example.com/tools:1.0",
                             "-o", v1], environment: epoch, timeout: 300)
        try #require(first.status == 0, "v1: \(first)")
        let second = try run([kilnBinary, "bake", "fixtures/recipe.yaml", "-o", v2, "--base", v1, "--json"], environment: epoch, timeout: 300)
        try #require(second.status == 0, "v2: \(second)")
        let summary = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any] ?? [:]
        let base = summary["base"] as? [String: Any] ?? [:]
        #expect((base["keptInodes"] as? Int ?? 0) > 0 && (base["unchangedBlocks"] as? Int ?? 0) > 0, "\(second.stdout)")

        let part = try run(["bash", "-c", "set -e; l=$(losetup -f --show -r -o 1048576 \(v2)/data.img); e2fsck -fn $l; r=$?; losetup -d $l; exit $r"])
        #expect(part.status == 0, "e2fsck -fn: \(part)")

        let root = try env.startContainerd(on: v2 + "/data.img")
        #expect(env.waitForGarbageCollection(), "containerd logged no garbage collection within 15 s")
        let check = try env.ctr("-n", "k8s.io", "images", "check")
        try #require(check.status == 0, "ctr images check: \(check)")
        let rows = parseImagesCheck(check.stdout)
        #expect(Set(rows.keys) == Set(Fixtures.images.flatMap(\.criNames)), "\(check.stdout)")
        #expect(rows.values.allSatisfy { $0.status.hasPrefix("complete") && $0.unpacked == "true" }, "\(check.stdout)")
        let snapshots = try env.ctr("-n", "k8s.io", "snapshots", "--snapshotter", "overlayfs", "ls")
        let committed = Set(snapshots.stdout.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let f = line.split(separator: " ")
            return f.last == "Committed" ? f.first.map(String.init) : nil
        })
        #expect(committed == Set(Fixtures.images.flatMap(\.chainIDs)), "committed snapshots: \(snapshots.stdout)")
        let r = try env.ctr("-n", "k8s.io", "run", "--rm", "--snapshotter", "overlayfs", "--fifo-dir", env.envDir + "/fifo",
                            "registry.example.com/app:v1", "t1", "/bin/sh", "-c", "ls /etc", timeout: 60)
        #expect(r.status == 0 && r.stdout.contains("os-release"), "ctr run: \(r)\n\(env.containerdLog())")
        // After the garbage collection containerd still holds every blob the bake put there.
        let content = try env.ctr("-n", "k8s.io", "content", "ls", "-q")
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/io.containerd.content.v1.content/blobs/sha256")) ?? []
        #expect(Set(content.stdout.split(separator: "\n").map { String($0.dropFirst("sha256:".count)) }) == Set(blobs), "\(content.stdout)")
    }

    // MARK: - The containerd layout

    @Test("containerd layout: a bare ext4 filesystem that containerd opens the same way",
          requires(.kiln, .root, .loop, .overlay, .containerd), arguments: ContainerdRelease.installed)
    func containerdLayoutOpens(_ release: ContainerdRelease) throws {
        let baked = try Baked.containerd.get()
        let pt = try run(["blkid", "-p", "-o", "value", "-s", "PTTYPE", baked.image])
        #expect(pt.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "a partition table: \(pt.stdout)")
        let type = try run(["blkid", "-p", "-o", "value", "-s", "TYPE", baked.image])
        #expect(type.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ext4", "blkid TYPE: \(type)")
        let fsck = try run(["e2fsck", "-fn", baked.image])
        #expect(fsck.status == 0, "e2fsck -fn: \(fsck)")

        let env = try TestEnvironment("layout", containerd: release)
        defer { env.close() }
        _ = try env.startContainerd(on: baked.image)
        let check = try env.ctr("-n", "k8s.io", "images", "check")
        try #require(check.status == 0, "ctr images check: \(check)")
        let rows = parseImagesCheck(check.stdout)
        #expect(Set(rows.keys) == Set(Fixtures.images.flatMap(\.criNames)), "\(check.stdout)")
        #expect(rows.values.allSatisfy { $0.status.hasPrefix("complete") && $0.unpacked == "true" }, "\(check.stdout)")
    }
}

/// Lines only in one of two dumps, readable.
func lineDiff(_ a: BoltDump, _ b: BoltDump) -> String {
    let before = Set(a.lines), after = Set(b.lines)
    return (before.subtracting(after).sorted().map { "- " + BoltDump.readable($0) }
        + after.subtracting(before).sorted().map { "+ " + BoltDump.readable($0) }).joined(separator: "\n")
}

/// The generations besides Debian 12's own containerd: when they are not unpacked here, this is skipped naming
/// them, and the parameterized tests above run against the system's containerd alone.
@Suite("containerd releases")
struct ContainerdReleasesTests {
    @Test("containerd 1.7 and 2.1 are unpacked and report their versions", requires(.containerdReleases))
    func releasesAreThere() throws {
        for release in ContainerdRelease.all {
            let program = (release.bin.map { $0 + "/" } ?? "") + "containerd"
            let r = try run([program, "--version"], timeout: 30)
            let words = r.stdout.split(separator: " ").map(String.init)
            #expect(r.status == 0 && words.contains { $0.hasPrefix(release.series + ".") }, "\(program) --version: \(r)")
        }
    }
}
