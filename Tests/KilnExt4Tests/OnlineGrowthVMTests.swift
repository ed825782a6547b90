import Foundation
import KilnTestSupport
import Testing

import KilnCore
@testable import KilnExt4

/// Online growth needs CAP_SYS_RESOURCE, which containers often withhold; a tiny QEMU guest (TCG, no KVM
/// needed) has it. The guest loop-mounts the image, grows the file 1000x and runs resize2fs on the mounted
/// filesystem, then e2fsck, exactly as Bottlerocket does at first boot.
enum GuestVM {
    static let qemu = Tools.find("qemu-system-x86_64")
    static let busybox = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A kernel from /boot and its loop module (nil module when loop is built in).
    static let kernel: (image: String, loopModule: String?)? = {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/boot") else { return nil }
        for name in names.sorted().reversed() where name.hasPrefix("vmlinuz-") {
            let version = String(name.dropFirst("vmlinuz-".count))
            let config = (try? String(contentsOfFile: "/boot/config-\(version)", encoding: .utf8)) ?? ""
            guard config.contains("CONFIG_EXT4_FS=y"), config.contains("CONFIG_DEVTMPFS=y") else { continue }
            if config.contains("CONFIG_BLK_DEV_LOOP=y") { return ("/boot/" + name, nil) }
            let module = "/lib/modules/\(version)/kernel/drivers/block/loop.ko"
            if FileManager.default.fileExists(atPath: module) { return ("/boot/" + name, module) }
        }
        return nil
    }()

    static var available: Bool {
        qemu != nil && busybox != nil && kernel != nil && Tools.find("cpio") != nil && Tools.find("resize2fs") != nil
            && FileManager.default.isReadableFile(atPath: kernel?.image ?? "/nonexistent")
    }

    /// Boots `script` as /init with `image` at /fs.img; returns the console output.
    static func run(image: String, script: String, in scratch: Scratch) throws -> String {
        guard let qemu, let busybox, let kernel else { throw ToolMissing(tool: "qemu-system-x86_64", hint: "apt-get install qemu-system-x86") }
        let root = scratch.path("guest-root")
        let fm = FileManager.default
        for d in ["bin", "lib64", "lib/x86_64-linux-gnu", "dev", "proc", "sys", "mnt"] {
            try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
        for applet in ["sh", "mount", "umount", "losetup", "truncate", "insmod", "df", "poweroff", "sync", "dd", "cat", "ls"] {
            try fm.createSymbolicLink(atPath: root + "/bin/" + applet, withDestinationPath: "busybox")
        }
        var libraries = Set<String>()
        for tool in ["resize2fs", "e2fsck"] {
            let path = try Tools.locator.require(tool)
            try fm.copyItem(atPath: path, toPath: root + "/bin/" + tool)
            let ldd = try Tools.run("ldd", [path]).stdout
            for line in ldd.split(separator: "\n") {
                for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) where word.hasPrefix("/") { libraries.insert(String(word)) }
            }
        }
        for lib in libraries {
            let resolved = (try? fm.destinationOfSymbolicLink(atPath: lib)).map {
                $0.hasPrefix("/") ? $0 : URL(fileURLWithPath: lib).deletingLastPathComponent().appendingPathComponent($0).path
            } ?? lib
            let dest = lib.hasPrefix("/lib64/") ? root + lib : root + "/lib/x86_64-linux-gnu/" + URL(fileURLWithPath: lib).lastPathComponent
            if !fm.fileExists(atPath: dest) { try fm.copyItem(atPath: resolved, toPath: dest) }
        }
        if let module = kernel.loopModule { try fm.copyItem(atPath: module, toPath: root + "/loop.ko") }
        try fm.copyItem(atPath: image, toPath: root + "/fs.img")
        let header = """
            #!/bin/sh
            mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
            [ -f /loop.ko ] && insmod /loop.ko

            """
        try (header + script + "\necho KILN done\nsync\npoweroff -f\n").write(toFile: root + "/init", atomically: true, encoding: .utf8)
        #expect(chmod(root + "/init", 0o755) == 0)
        let cpio = scratch.path("initrd.cpio")
        let pack = try Tools.run("sh", ["-c", "cd '\(root)' && find . | cpio -o -H newc > '\(cpio)' 2>/dev/null"])
        guard pack.status == 0 else { throw MountFailed(message: "cpio: \(pack.output)") }
        let vm = try Tools.run(qemu, [
            "-m", "1024", "-nographic", "-no-reboot", "-kernel", kernel.image, "-initrd", cpio,
            "-append", "console=ttyS0 panic=-1 quiet",
        ], timeout: ProcessTimeout(seconds: 300))
        return vm.output
    }
}

@Suite(.enabled(if: GuestVM.available, "needs qemu-system-x86, busybox-static, cpio and a Linux kernel in /boot (e.g. linux-image-cloud-amd64)"))
struct OnlineGrowthVMTests {
    @Test func growsAThousandfoldWhileMounted() throws {
        let s = try Scratch()
        let img = s.path("grow.img")
        let w = try EXT4Writer(path: img, options: options(size: .bytes(16 << 20)))
        try TreeSpec.standard.write(to: w)
        for i in 0..<2000 { try w.makeSpecialFile(BytePath("many/\(i)-" + String(repeating: "z", count: 30)), kind: .fifo) }
        _ = try w.close()
        try expectClean(img)
        let out = try GuestVM.run(image: img, script: """
            losetup /dev/loop0 /fs.img
            mount -t ext4 /dev/loop0 /mnt; echo "KILN mount=$?"
            truncate -s 16G /fs.img
            losetup -c /dev/loop0
            resize2fs /dev/loop0 2>&1; echo "KILN resize=$?"
            df -k /mnt | while read a b c; do echo "KILN df $a $b"; done
            dd if=/dev/zero of=/mnt/after-growth bs=1M count=200 2>/dev/null; echo "KILN write=$?"
            cat /mnt/etc/os-release
            umount /mnt; echo "KILN umount=$?"
            e2fsck -fn /dev/loop0 2>&1; echo "KILN fsck=$?"
            """, in: s)
        #expect(out.contains("KILN mount=0"), "\(out)")
        #expect(out.contains("on-line resizing required"), "\(out)")
        #expect(out.contains("KILN resize=0"), "\(out)")
        #expect(out.contains("is now 4194304 (4k) blocks long"), "\(out)")
        #expect(out.contains("KILN write=0"), "\(out)")
        #expect(out.contains("NAME=kiln"), "\(out)")
        #expect(out.contains("KILN umount=0"), "\(out)")
        #expect(out.contains("KILN fsck=0"), "\(out)")
        let fsckLines = out.split(whereSeparator: \.isNewline).drop { !$0.contains("Pass 1:") }.prefix { !$0.contains("KILN fsck") }
        let complaints = fsckLines.filter { !$0.contains("Pass ") && !$0.contains(" files (") }
        #expect(complaints.isEmpty, "\(out)")
        let size = out.split(whereSeparator: \.isNewline).first { $0.hasPrefix("KILN df /dev/loop0") }
            .flatMap { $0.split(separator: " ").last }
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        #expect(size > 15 << 20, "\(out)")
    }
}
