#!/usr/bin/env python3
"""fuzz-seeds.py TARGET DIR [KILN]: writes the starting corpus of one kiln-fuzz target into DIR.

The seeds are the hostile-input catalogue's cases, small: layer tars (traversal, escapes, whiteouts, PAX and GNU
oddities, devices, duplicates, NFC/NFD twins) in every compression, image archives (OCI and docker, with the
metadata cases), a GPT disk, ext4 filesystems from mke2fs, containerd's bbolt databases and a snapshot manifest
from a bake of the bundled example (KILN is the kiln binary for those)."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

# Small seeds: the end-of-archive blocks without padding to 10 KiB records.
tarfile.RECORDSIZE = 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            info.mtime = 0
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None, **extra):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    if pax:
        info.pax_headers = pax
    for k, v in extra.items():
        setattr(info, k, v)
    return info, (data if kind == tarfile.REGTYPE else None)


def layer_tars():
    d = tarfile.DIRTYPE
    yield "plain", tar_bytes([entry("etc/", d, mode=0o755), entry("etc/hosts", data=b"127.0.0.1 localhost\n"),
                              entry("bin/", d), entry("bin/sh", tarfile.SYMTYPE, link="busybox"),
                              entry("bin/busybox", data=b"\x7fELF" + bytes(60), mode=0o755),
                              entry("bin/ls", tarfile.LNKTYPE, link="bin/busybox")])
    yield "traversal", tar_bytes([entry("../escape", data=b"x"), entry("/abs/path", data=b"y"),
                                  entry("a/../../b", data=b"z")])
    yield "symlink-escape", tar_bytes([entry("link", tarfile.SYMTYPE, link="../../etc"), entry("link/passwd", data=b"root")])
    yield "hardlink-missing", tar_bytes([entry("h", tarfile.LNKTYPE, link="nowhere"), entry("l", tarfile.LNKTYPE, link="../x")])
    yield "whiteouts", tar_bytes([entry("dir/", d), entry("dir/.wh..wh..opq", data=b""), entry(".wh.gone", data=b""),
                                  entry("dir/.wh.", data=b""), entry(".wh..wh.x", data=b"")])
    yield "type-change", tar_bytes([entry("x", data=b"file"), entry("x/", d), entry("x", tarfile.SYMTYPE, link="y")])
    yield "duplicates", tar_bytes([entry("dup", data=b"one"), entry("dup", data=b"two"), entry("./dup", data=b"three")])
    yield "devices", tar_bytes([entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
                                entry("fifo", tarfile.FIFOTYPE)])
    yield "huge-ids", tar_bytes([entry("ids", data=b"i", uid=2**31, gid=2**32 - 1, pax={"uid": "99999999999", "mtime": "-1e30"})])
    yield "pax-size", tar_bytes([entry("big", data=b"", pax={"size": "9223372036854775807"})])
    yield "pax-path", tar_bytes([entry("short", data=b"p", pax={"path": "a/" + "b" * 300, "linkpath": "c" * 5000,
                                                                "SCHILY.xattr.user.k": "v" * 100})])
    yield "gnu-long", tar_bytes([entry("g" * 200 + "/file", data=b"g"), entry("l", tarfile.SYMTYPE, link="t" * 300)], fmt=tarfile.GNU_FORMAT)
    yield "nfc-nfd", tar_bytes([entry("caf\u00e9", data=b"nfc"), entry("cafe\u0301", data=b"nfd"),
                                entry(b"inv\xffalid".decode("utf-8", "surrogateescape"), data=b"bytes")])
    yield "deep", tar_bytes([entry("/".join(["d"] * 200) + "/f", data=b"deep")])
    sparse = tar_bytes([entry("sparse", tarfile.GNUTYPE_SPARSE if hasattr(tarfile, "GNUTYPE_SPARSE") else tarfile.REGTYPE, data=b"s" * 10)],
                       fmt=tarfile.GNU_FORMAT)
    yield "sparse", sparse
    plain = tar_bytes([entry("f", data=b"data" * 100)])
    yield "truncated", plain[:700]
    yield "trailing", plain + b"garbage after the end" * 10
    yield "no-end", plain[:-1024]
    yield "not-tar", b"this is not a tar archive at all\n" * 20


def compress(kind, data):
    if kind == 0:
        return data
    if kind == 1:
        return gzip.compress(data, mtime=0)
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE, check=True).stdout


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def archives():
    layer = tar_bytes([entry("hello", data=b"hello\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}]}).encode()

    def oci(index, extra=()):
        files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
        files += [("blobs/sha256/" + sha(b)[7:], b) for b in (config, manifest, layer)] + list(extra)
        return tar_bytes([entry(n, data=b) for n, b in files], fmt=tarfile.USTAR_FORMAT)

    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}, "platform": {"os": "linux", "architecture": "amd64"}}
    yield "oci", oci(json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())
    yield "oci-dup-keys", oci(('{"schemaVersion":2,"manifests":[%s],"manifests":[]}' % json.dumps(desc)).encode())
    yield "oci-bad-size", oci(json.dumps({"schemaVersion": 2, "manifests": [dict(desc, size=-1)]}).encode())
    yield "oci-bad-digest", oci(json.dumps({"schemaVersion": 2, "manifests": [dict(desc, digest="sha256:../../etc")]}).encode())
    nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc],
                         "config": desc}).encode()
    yield "oci-both", oci(json.dumps({"schemaVersion": 2, "manifests": [dict(desc, digest=sha(nested), size=len(nested),
                                                                            mediaType="application/vnd.oci.image.index.v1+json")]}).encode(),
                          [("blobs/sha256/" + sha(nested)[7:], nested)])
    docker = json.dumps([{"Config": "blobs/sha256/" + sha(config)[7:], "RepoTags": ["app:v1"],
                          "Layers": ["blobs/sha256/" + sha(layer)[7:]]}]).encode()
    files = [("manifest.json", docker)] + [("blobs/sha256/" + sha(b)[7:], b) for b in (config, layer)]
    yield "docker", tar_bytes([entry(n, data=b) for n, b in files], fmt=tarfile.USTAR_FORMAT)
    legacy = json.dumps([{"Config": "c.json", "RepoTags": ["app:v1"], "Layers": ["../../l/layer.tar", "/abs"]}]).encode()
    yield "docker-paths", tar_bytes([entry("manifest.json", data=legacy), entry("c.json", data=config)], fmt=tarfile.USTAR_FORMAT)


def run(*args, **kw):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    target, out = sys.argv[1], sys.argv[2]
    kiln = sys.argv[3] if len(sys.argv) > 3 else shutil.which("kiln") or os.path.join(ROOT, ".build/debug/kiln")
    os.makedirs(out, exist_ok=True)

    def put(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    work = tempfile.mkdtemp(prefix="kiln-fuzz-seeds-")
    try:
        if target in ("layer", "apply"):
            for name, data in layer_tars():
                for kind in (0, 1, 2):
                    put("%s-%d" % (name, kind), bytes([kind]) + compress(kind, data))
        elif target == "archive":
            for name, data in archives():
                put(name, data)
        elif target in ("gpt", "volume", "ext4"):
            tree = os.path.join(work, "tree")
            os.makedirs(tree + "/dir/sub")
            with open(tree + "/dir/file", "wb") as f:
                f.write(b"contents\n" * 50)
            os.symlink("dir/file", tree + "/short-link")
            os.symlink("x" * 200, tree + "/long-link")
            fs = os.path.join(work, "fs.img")
            run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-N", "16", "-O", "^has_journal,^resize_inode",
                "-E", "root_owner=0:0", "-d", tree, fs, "96k")
            if target == "ext4":
                put("mke2fs-1k", open(fs, "rb").read())
            else:
                disk = os.path.join(work, "disk.img")
                with open(disk, "wb") as f:
                    f.truncate(160 * 1024)
                run("sgdisk", "-n", "1:40:231", "-t", "1:626f7474-6c65-6474-6861-726d61726b73", "-c", "1:BOTTLEROCKET-DATA", disk)
                with open(disk, "r+b") as f, open(fs, "rb") as src:
                    f.seek(40 * 512)
                    f.write(src.read())
                put("gpt-ext4", open(disk, "rb").read())
                if target == "volume":
                    put("bare-ext4", open(fs, "rb").read())
        elif target in ("bolt", "manifest"):
            layout = "containerd" if target == "bolt" else "bottlerocket"
            baked = os.path.join(work, "out")
            run(kiln, "bake", "-q", "--source", "oci:" + os.path.join(ROOT, "fixtures/example-oci") + ":app:v1",
                "--layout", layout, "-o", baked, env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
            if target == "manifest":
                put("manifest-json", b"\x00" + open(os.path.join(baked, "manifest.json"), "rb").read())
                put("manifest-blocks", b"\x01" + open(os.path.join(baked, "manifest.blocks"), "rb").read())
            else:
                # containerd's two databases, read out of the baked filesystem.
                for name, path in (("meta.db", "io.containerd.metadata.v1.bolt/meta.db"),
                                   ("metadata.db", "io.containerd.snapshotter.v1.overlayfs/metadata.db")):
                    dumped = os.path.join(work, name)
                    run("debugfs", "-R", "dump /var/lib/containerd/%s %s" % (path, dumped), os.path.join(baked, "data.img"))
                    put(name, open(dumped, "rb").read())
        elif target == "placement":
            for layout in ("rootfs", "bottlerocket"):
                baked = os.path.join(work, layout)
                run(kiln, "bake", "-q", "--source", "oci:" + os.path.join(ROOT, "fixtures/example-oci") + ":app:v1",
                    "--layout", layout, "-o", baked, env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
                put("layout-" + layout, open(os.path.join(baked, "manifest.layout"), "rb").read())
        else:
            sys.exit("unknown target " + target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
