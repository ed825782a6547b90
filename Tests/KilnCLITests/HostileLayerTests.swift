import Foundation
import KilnTestSupport
import Testing

/// Layers kiln did not build: what containerd applies is applied the same way (the containerd comparison of the
/// `accepted` image is in KilnIntegrationTests), what containerd refuses is refused with the image, the layer,
/// the entry and the rule, and nothing is left behind. The images come from scripts/lib/hostile-layers.py.
@Suite struct HostileLayerTests {
    /// The generated layout, made once for the suite.
    static let layout: String = {
        let dir = NSTemporaryDirectory() + "kiln-hostile-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        _ = try? run("python3", ["\(packageRoot)/scripts/lib/hostile-layers.py", dir + "/layout"])
        return dir + "/layout"
    }()

    func bake(_ tag: String, layout volumeLayout: String = "rootfs", into out: String) throws -> ProcessResult {
        try run(kilnBinary, ["bake", "-q", "--source", "oci:\(Self.layout):\(tag)", "--layout", volumeLayout,
                             "--platform", "linux/amd64", "-o", out], environment: ["SOURCE_DATE_EPOCH": "1700000000"])
    }

    func debugfs(_ request: String, _ image: String) throws -> String { try run("debugfs", ["-R", request, image]).stdout }

    /// A refused case: the tag's bad layer (over a sound lower one), the exit status, and words of the message.
    struct Refusal: Sendable, CustomStringConvertible {
        var name: String
        var status: Int32
        var words: [String]
        /// Only in overlay snapshots (bottlerocket layout): flattened, it is fine.
        var overlayOnly = false
        var description: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "root-file", status: 2, words: ["tar entry '.'", "cannot replace the root directory"]),
        Refusal(name: "root-symlink", status: 2, words: ["tar entry 'a/..'", "symlink cannot replace the root"]),
        Refusal(name: "symlink-loop", status: 2, words: ["tar entry 'a/x'", "too many symbolic links"]),
        Refusal(name: "hardlink-later", status: 2, words: ["tar entry 'early'", "hard link target 'late' is not in this layer"]),
        Refusal(name: "hardlink-directory", status: 2, words: ["tar entry 'dirlink'", "is a directory"]),
        Refusal(name: "hardlink-itself", status: 2, words: ["tar entry 'self'", "hard link to itself"]),
        Refusal(name: "hardlink-whiteout", status: 2, words: ["tar entry 'wlink'", "is a whiteout"]),
        Refusal(name: "hardlink-lower", status: 2, words: ["tar entry 'lowerlink'", "not in this layer"], overlayOnly: true),
        Refusal(name: "whiteout-dot", status: 2, words: ["tar entry '.wh..'", "invalid whiteout name"]),
        Refusal(name: "whiteout-dotdot", status: 2, words: ["tar entry '.wh...'", "invalid whiteout name"]),
        Refusal(name: "whiteout-empty", status: 2, words: ["tar entry '.wh.'", "invalid whiteout name"]),
        Refusal(name: "whiteout-parent", status: 2, words: ["tar entry '.wh.etc/config'", "cannot be a parent directory"]),
        Refusal(name: "whiteout-same-layer", status: 2, words: ["tar entry '.wh.made'", "which this layer itself created"]),
        Refusal(name: "file-then-child", status: 2, words: ["tar entry 'f/x'", "not a directory"]),
        Refusal(name: "device-number", status: 2, words: ["tar entry 'dev/huge'", "5000:1"]),
        Refusal(name: "owner-64bit", status: 1, words: ["tar entry 'owned'", "does not fit in 32 bits"]),
        Refusal(name: "name-256", status: 2, words: ["256 bytes long", "at most 255"]),
        Refusal(name: "path-4097", status: 2, words: ["budget pathBytes is 4096"]),
        Refusal(name: "symlink-target-4096", status: 2, words: ["tar entry 'toolong'", "4096-byte target"]),
        Refusal(name: "pax-size-overflow", status: 1, words: ["tar error", "size"]),
        Refusal(name: "pax-size-negative", status: 1, words: ["tar error", "negative"]),
        Refusal(name: "truncated", status: 1, words: ["tar entry 'big'", "runcated"]),
        Refusal(name: "bad-checksum", status: 1, words: ["tar error"]),
        Refusal(name: "not-a-tar", status: 1, words: ["tar error", "nrecognized archive format"]),
        Refusal(name: "gzip-crc", status: 1, words: ["decompression failed", "CRC"]),
        Refusal(name: "gzip-isize", status: 1, words: ["decompression failed"]),
        Refusal(name: "gzip-trailing", status: 1, words: ["trailing data after the end of the layer stream"]),
    ]

    @Test(arguments: refusals)
    func refusedWithTheImageLayerEntryAndRule(_ refusal: Refusal) throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        for volumeLayout in ["rootfs", "bottlerocket"] {
            let out = scratch.path("out-\(volumeLayout)")
            let r = try bake("refuse-\(refusal.name)", layout: volumeLayout, into: out)
            if refusal.overlayOnly && volumeLayout == "rootfs" {
                #expect(r.status == 0, "flattened, \(refusal.name) applies: \(r.stderr)")
                continue
            }
            #expect(r.status == refusal.status, "\(refusal.name) (\(volumeLayout)): exit \(r.status): \(r.stderr)")
            // The image and the layer (the second: its digest), then the entry and the rule.
            #expect(r.stderr.contains("refuse-\(refusal.name): layer 1 sha256:"), "\(r.stderr)")
            for w in refusal.words { #expect(r.stderr.contains(w), "\(refusal.name): '\(w)' not in: \(r.stderr)") }
            // Nothing that looks like an output, and no partial file either.
            let left = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            #expect(left.isEmpty, "\(refusal.name) left \(left)")
        }
    }

    /// The accepted cases, flattened: every rule checked on the real filesystem with debugfs.
    @Test func acceptedCasesApplyAsContainerdApplies() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        let r = try bake("accepted", into: out)
        #expect(r.status == 0, "\(r.stderr)")
        let image = out + "/data.img"
        #expect(try run("e2fsck", ["-fn", image]).status == 0)
        func cat(_ path: String) throws -> String { try debugfs("cat \"\(path)\"", image) }
        // Traversal clamped, cleaned lexically; symlinked parents resolved inside the image.
        #expect(try cat("/x-clean") == "cleaned")
        #expect(try cat("/abs-file") == "absolute")
        #expect(try cat("/etc/via-symlink") == "through d")
        #expect(try cat("/x-up") == "clamped up")
        #expect(!(try debugfs("ls /", image)).contains("x-dotdot"), "whited out by layer 1")
        #expect(!(try debugfs("ls /", image)).contains(" a "), "a/./b/../../../x-clean makes no directory a")
        // Hard links: clamped target, the old inode kept when the target is made again, parents made.
        #expect(try cat("/hl") == "base config")
        #expect(try cat("/t1link") == "old t1" && cat("/t1") == "new t1")
        #expect(try cat("/newdir/sub/link") == "base config")
        #expect(try debugfs("stat /hs", image).contains("Type: symlink"))
        // Duplicates: the last wins, with a warning.
        #expect(try cat("/dup") == "second")
        #expect(r.stderr.contains("duplicate tar path") && r.stderr.contains("dup, t1"), "\(r.stderr)")
        // The root entry is ignored, even its mode; special modes and devices kept.
        let root = try debugfs("stat /", image)
        #expect(root.contains("Mode:  0755"), "\(root)")
        #expect(try debugfs("stat /suid", image).contains("Mode:  04755"))
        #expect(try debugfs("stat /tmp", image).contains("Mode:  01777"))
        #expect(try debugfs("stat /dev/null", image).contains("Type: character special"))
        #expect(try debugfs("stat /dev/sda", image).contains("Type: block special"))
        #expect(try debugfs("stat /locked", image).contains("Mode:  0000"))
        #expect(try cat("/locked/inside") == "inside locked")
        // Names are bytes: four distinct files.
        let names = try run("debugfs", ["-R", "ls -l /", image]).stdout
        for name in ["caf\\xc3\\xa9", "cafe\\xcc\\x81", "bytes-\\xff", "bytes-\\xfe"] {
            #expect(names.contains(name), "\(name) not in \(names)")
        }
        // Times outside 1970..2262 become the epoch.
        #expect(try debugfs("stat /time-before-1970", image).contains("mtime: 0x00000000:00000000"))
        #expect(try debugfs("stat /time-after-2262", image).contains("mtime: 0x00000000:00000000"))
        // The sparse file keeps its holes: 64 MiB long, one 4 KiB block of data.
        let holes = try debugfs("stat /holes", image)
        #expect(holes.contains("Size: 67108864"), "\(holes)")
        #expect(holes.contains("EXTENTS:\n(8192):") && holes.contains("Blockcount: 8\n"), "\(holes)")
        // Type changes across layers: file -> dir -> file, dir -> symlink, symlink -> file; opaque keeps siblings.
        #expect(try cat("/etc/config") == "directory -> file again")
        #expect(try debugfs("stat /etc", image).contains("Mode:  0750"))
        #expect(try cat("/s") == "symlink -> file")
        #expect(try debugfs("stat /usr/bin", image).contains("Type: symlink"))
        #expect(try cat("/opt/via-new-symlink") == "usr/bin is now /opt")
        #expect(try cat("/data/new") == "new data")
        #expect(!(try debugfs("ls /data", image)).contains("old"))
    }

    /// Attributes that would forge overlay semantics or carry a host's SELinux labels are dropped (with a
    /// warning); other attributes pass; AUFS metadata is skipped.
    @Test func forgedAttributesAreDropped() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.path("out")
        let r = try bake("forged", into: out)
        #expect(r.status == 0, "\(r.stderr)")
        let attrs = try debugfs("ea_list /ovl", out + "/data.img")
        #expect(attrs.contains("user.keep"), "\(attrs)")
        #expect(!attrs.contains("trusted.overlay"), "\(attrs)")
        #expect(!attrs.contains("selinux"), "\(attrs)")
        #expect(r.stderr.contains("extended attribute trusted.overlay.opaque dropped"), "\(r.stderr)")
        #expect(r.stderr.contains("extended attribute security.selinux dropped"), "\(r.stderr)")
        #expect(r.stderr.contains("AUFS metadata skipped"), "\(r.stderr)")
        #expect(!(try debugfs("ls /", out + "/data.img")).contains(".wh."))
    }
}
