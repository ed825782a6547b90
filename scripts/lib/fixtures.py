#!/usr/bin/env python3
"""Builds the example images under fixtures/ (called by scripts/make-fixtures).

Standard library only. Layers are written with tarfile from explicit entry lists
rather than from a directory tree, so every header field (owner, mode, mtime,
xattrs) and the entry order are fixed, including orders a directory walk cannot
produce (an opaque marker after its siblings). Compression goes through the
`gzip` and `zstd` command-line tools because their output is stable across
versions, which keeps digests reproducible.

Subcommands:
  build-layout  write the OCI image layout fixtures/example-oci
  docker-legacy write a tarball in the format `docker save` used up to moby 24
  docker-oci    write a tarball in the format `docker save` uses since moby 25
  pack-dir      tar a directory deterministically (sorted names, fixed mtimes)
  check         re-verify a layout: blob names, sizes, diffIDs, ref names
  summary       print refs, manifest digests and layers of a layout
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"

ZSTD_SKIPPABLE_MAGIC = 0x184D2A50  # low nibble is free; 0x184D2A50..5F are all skippable
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class FixtureError(Exception):
    pass


# ----------------------------------------------------------------------------
# small helpers

def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def digest_of(data):
    return "sha256:" + sha256_hex(data)


def canonical_json(obj):
    # Sorted keys and no whitespace: the same object always gives the same bytes.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def go_json(obj):
    # Mimics Go's encoding/json for structs: field order as given, no whitespace.
    return json.dumps(obj, separators=(",", ":")).encode()


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run(argv, data):
    proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise FixtureError("%s failed: %s" % (" ".join(argv), proc.stderr.decode(errors="replace").strip()))
    return proc.stdout


def gzip_cli(data):
    # -n: no name and no timestamp in the header, so output depends on the input only.
    return run(["gzip", "-n", "-9", "-c"], data)


def zstd_cli(data):
    # Single-threaded on purpose: multi-threaded zstd may split frames differently.
    return run(["zstd", "-q", "-19", "-T1", "-c"], data)


def zstd_skippable_frame(payload, nibble=0):
    return (ZSTD_SKIPPABLE_MAGIC + nibble).to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload


def pseudo_random_bytes(seed, size):
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


# ----------------------------------------------------------------------------
# tar layers from explicit entry lists

class Entry:
    """One tar member. kind is one of dir, file, symlink, hardlink."""

    def __init__(self, name, kind, mode=None, data=b"", link="", uid=0, gid=0, xattrs=None):
        self.name = name
        self.kind = kind
        self.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
        self.data = data
        self.link = link
        self.uid = uid
        self.gid = gid
        self.xattrs = xattrs or {}


def D(name, mode=0o755, **kw):
    return Entry(name, "dir", mode, **kw)


def F(name, data, mode=0o644, **kw):
    return Entry(name, "file", mode, data=data, **kw)


def S(name, target):
    return Entry(name, "symlink", 0o777, link=target)


def H(name, target, mode=0o644):
    # Real tar writers repeat the target's stat in a link header, and some extractors
    # chmod the shared inode from it, so mode must match the target's.
    return Entry(name, "hardlink", mode, link=target)


def build_tar(entries, epoch):
    """Serialises entries in the given order (the order is part of the fixture)."""
    names = set()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if e.name in names:
                raise FixtureError("duplicate tar entry %s" % e.name)
            names.add(e.name)
            info = tarfile.TarInfo(e.name)
            info.mtime = epoch
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.uname = "root" if e.uid == 0 else ""
            info.gname = "root" if e.gid == 0 else ""
            if e.xattrs:
                info.pax_headers = {"SCHILY.xattr." + k: v for k, v in sorted(e.xattrs.items())}
            payload = None
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "file":
                info.type = tarfile.REGTYPE
                info.size = len(e.data)
                payload = io.BytesIO(e.data)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.link
            elif e.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e.link
            else:
                raise FixtureError("unknown entry kind %s" % e.kind)
            tar.addfile(info, payload)
    return buf.getvalue()


def sorted_entries(entries):
    """Sorted by path, which puts every directory before its children here."""
    return sorted(entries, key=lambda e: e.name.rstrip("/"))


# ----------------------------------------------------------------------------
# the layer contents

OS_RELEASE = b"""NAME="Kiln Example"
ID=kiln-example
VERSION_ID=1
PRETTY_NAME="Kiln Example 1 (fixture)"
"""

RUN_SH = b"""#!/bin/sh
# Prints the app configuration; the image's Cmd does the same with cat.
set -e
echo "kiln example app"
cat /app/config.json
"""

CONFIG_JSON = b"""{"name": "kiln-example", "greeting": "hello from the app layer", "version": 1}
"""

TOOL_SH = b"""#!/bin/sh
echo "kiln example tool"
cat /etc/tools.conf
"""


def base_layer_entries(busybox_bytes):
    """L0 "base": a small but complete root filesystem."""
    return sorted_entries([
        D("bin"),
        F("bin/busybox", busybox_bytes, 0o755),
        S("bin/sh", "busybox"),
        S("bin/ls", "busybox"),
        S("bin/cat", "busybox"),
        # setuid root: the mode bit must survive into the unpacked layer.
        F("bin/suid-helper", b"#!/bin/sh\necho setuid fixture\n", 0o4755),
        D("etc"),
        F("etc/os-release", OS_RELEASE),
        F("etc/hostname", b"kiln-base\n"),
        F("etc/motd", b"This file is removed by the update layer.\n"),
        # hard link pair inside one layer
        F("etc/issue", b"Kiln Example 1 \\n \\l\n"),
        H("etc/issue.net", "etc/issue"),
        # a user xattr carried as a PAX SCHILY.xattr record
        F("etc/xattr-file", b"has a user xattr\n", xattrs={"user.kiln.fixture": "base-layer"}),
        D("opt"),
        D("opt/old"),
        F("opt/old/readme.txt", b"Removed by a directory whiteout in the update layer.\n"),
        D("opt/old/sub"),
        F("opt/old/sub/deep.txt", b"nested under a whited-out directory\n"),
        D("tmp", 0o1777),
        D("var"),
        D("var/cache"),
        D("var/cache/app"),
        F("var/cache/app/a", b"cache a\n"),
        F("var/cache/app/b", b"cache b\n"),
        F("var/cache/app/c", b"cache c\n"),
    ])


def update_layer_entries():
    """L1 "update": whiteouts, with the opaque marker AFTER a sibling (valid, unusual)."""
    return [
        D("etc"),
        F("etc/.wh.motd", b""),
        F("etc/hostname", b"kiln-updated\n"),
        D("opt"),
        F("opt/.wh.old", b""),
        D("var"),
        D("var/cache"),
        D("var/cache/app"),
        F("var/cache/app/new", b"added in the update layer, survives the opaque marker\n"),
        F("var/cache/app/.wh..wh..opq", b""),
        D("var/empty"),
    ]


def app_layer_entries():
    """L2 "app": the application, owned partly by a non-root user."""
    return sorted_entries([
        D("app"),
        F("app/config.json", CONFIG_JSON, 0o644, uid=1000, gid=1000),
        F("app/data.bin", pseudo_random_bytes(b"kiln-fixture-data", 100 * 1024)),
        F("app/run.sh", RUN_SH, 0o755),
        # hard link to an executable in the same layer
        H("app/start.sh", "app/run.sh", 0o755),
    ])


def lower_hardlink_layer_entries():
    """A hard link whose target is only in a LOWER layer (L0), not in this tar.

    The image spec allows it but warns extraction "may fail", and it does:
    containerd and moby apply each layer onto its own upper directory and cannot
    link to a file that is not there. Kept out of the app images so those stay
    importable by real runtimes.
    """
    return [
        D("lower"),
        H("lower/os-release", "etc/os-release"),
    ]


def tools_layer_entries():
    """tools:1.0's own layer: names written with a leading "./" as `tar -C dir .` does."""
    return [
        D("./"),
        D("./etc"),
        F("./etc/tools.conf", b"mode=example\n"),
        D("./usr"),
        D("./usr/local"),
        D("./usr/local/bin"),
        F("./usr/local/bin/tool", TOOL_SH, 0o755),
    ]


# ----------------------------------------------------------------------------
# compression variants

def zstd_chunked_like(tar_bytes):
    """tar+zstd in several frames followed by skippable frames, shaped like zstd:chunked.

    The content is split into independent zstd frames (one per tar member, as
    zstd:chunked does), then a skippable frame carries a zstd-compressed JSON table
    of contents and a last small skippable frame acts as a footer. A plain zstd
    decoder skips both; the diffID covers only the decompressed tar.
    """
    frames = []
    toc = []
    offset = 0
    # Re-read the tar to find member boundaries (header offsets).
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        members = tar.getmembers()
    # The last frame also carries the end-of-archive blocks.
    cuts = [m.offset for m in members] + [len(tar_bytes)]
    for i, m in enumerate(members):
        start, end = cuts[i], cuts[i + 1]
        chunk = tar_bytes[start:end]
        frame = zstd_cli(chunk)
        toc.append({"name": m.name, "type": "dir" if m.isdir() else "reg" if m.isreg() else "link",
                    "size": m.size, "offset": offset, "endOffset": offset + len(frame)})
        frames.append(frame)
        offset += len(frame)
    body = b"".join(frames)
    manifest = zstd_cli(canonical_json({"version": 1, "entries": toc}))
    footer = b"KILNTOC\x00" + len(body).to_bytes(8, "little") + len(manifest).to_bytes(8, "little")
    return body + zstd_skippable_frame(manifest, 0) + zstd_skippable_frame(footer, 1)


def gzip_two_members(tar_bytes):
    """A gzip stream of two concatenated members (RFC 1952 allows it)."""
    cut = (len(tar_bytes) // 2) // 512 * 512
    return gzip_cli(tar_bytes[:cut]) + gzip_cli(tar_bytes[cut:])


# ----------------------------------------------------------------------------
# layout writing

class Layout:
    def __init__(self, root):
        self.root = root
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blob_dir, exist_ok=True)

    def put(self, data):
        hexd = sha256_hex(data)
        path = os.path.join(self.blob_dir, hexd)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o644)
        return "sha256:" + hexd

    def descriptor(self, media_type, data, **extra):
        d = {"mediaType": media_type, "digest": self.put(data), "size": len(data)}
        d.update(extra)
        return d


class Layer:
    def __init__(self, name, tar_bytes):
        self.name = name
        self.tar = tar_bytes
        self.diff_id = digest_of(tar_bytes)


def image_config(arch, variant, layers, cmd, epoch, title, workdir):
    cfg = {
        "created": rfc3339(epoch),
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": [PATH_ENV],
            "Cmd": cmd,
            "WorkingDir": workdir,
            "Labels": {"org.opencontainers.image.title": title},
        },
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": rfc3339(epoch), "created_by": "kiln fixture: %s layer" % l.name}
                    for l in layers],
    }
    if variant:
        cfg["variant"] = variant
    return canonical_json(cfg)


def manifest_bytes(config_desc, layer_descs, epoch):
    return go_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
        "annotations": {"org.opencontainers.image.created": rfc3339(epoch)},
    })


def build_layout(out, busybox_path, epoch):
    if os.path.exists(out):
        shutil.rmtree(out)
    lay = Layout(out)
    with open(busybox_path, "rb") as f:
        busybox = f.read()
    placeholder = b"placeholder for an arm64 busybox: this fixture carries no arm64 binary\n"

    l0_amd64 = Layer("base", build_tar(base_layer_entries(busybox), epoch))
    l0_arm64 = Layer("base", build_tar(base_layer_entries(placeholder), epoch))
    l1 = Layer("update", build_tar(update_layer_entries(), epoch))
    l2 = Layer("app", build_tar(app_layer_entries(), epoch))
    t1 = Layer("tools", build_tar(tools_layer_entries(), epoch))

    app_cmd = ["/bin/sh", "-c", "cat /app/config.json"]
    gz = {}  # diffID -> gzip bytes; a layer's gzip blob is computed once and shared

    def gzip_desc(layer):
        if layer.diff_id not in gz:
            gz[layer.diff_id] = gzip_cli(layer.tar)
        return lay.descriptor(OCI_LAYER_GZIP, gz[layer.diff_id])

    def image(arch, variant, layers, descs, cmd, title, workdir):
        cfg = image_config(arch, variant, layers, cmd, epoch, title, workdir)
        cfg_desc = lay.descriptor(OCI_CONFIG, cfg)
        return manifest_bytes(cfg_desc, descs, epoch)

    amd64_layers = [l0_amd64, l1, l2]
    arm64_layers = [l0_arm64, l1, l2]

    # app:v1 -> index of amd64 + arm64/v8, gzip layers
    m_amd64 = image("amd64", None, amd64_layers, [gzip_desc(l) for l in amd64_layers],
                    app_cmd, "kiln example app", "/app")
    m_arm64 = image("arm64", "v8", arm64_layers, [gzip_desc(l) for l in arm64_layers],
                    app_cmd, "kiln example app", "/app")
    index = go_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            lay.descriptor(OCI_MANIFEST, m_amd64, platform={"architecture": "amd64", "os": "linux"}),
            lay.descriptor(OCI_MANIFEST, m_arm64,
                           platform={"architecture": "arm64", "os": "linux", "variant": "v8"}),
        ],
    })

    # app:v1-zstd -> amd64 manifest, same tars as zstd; L2 shaped like zstd:chunked
    zstd_descs = [
        lay.descriptor(OCI_LAYER_ZSTD, zstd_cli(l0_amd64.tar)),
        lay.descriptor(OCI_LAYER_ZSTD, zstd_cli(l1.tar)),
        lay.descriptor(OCI_LAYER_ZSTD, zstd_chunked_like(l2.tar)),
    ]
    m_zstd = image("amd64", None, amd64_layers, zstd_descs, app_cmd, "kiln example app", "/app")

    # app:v1-plain -> amd64 manifest, uncompressed layers (blob digest == diffID)
    plain_descs = [lay.descriptor(OCI_LAYER_TAR, l.tar) for l in amd64_layers]
    m_plain = image("amd64", None, amd64_layers, plain_descs, app_cmd, "kiln example app", "/app")

    # tools:1.0 -> shares L0's gzip blob with app:v1 amd64; own layer is two-member gzip
    tools_descs = [gzip_desc(l0_amd64), lay.descriptor(OCI_LAYER_GZIP, gzip_two_members(t1.tar))]
    m_tools = image("amd64", None, [l0_amd64, t1], tools_descs, ["/usr/local/bin/tool"],
                    "kiln example tools", "/")

    # edge:lower-hardlink -> L0 plus a layer holding only a hard link into L0
    e1 = Layer("lower-hardlink", build_tar(lower_hardlink_layer_entries(), epoch))
    m_edge = image("amd64", None, [l0_amd64, e1], [gzip_desc(l0_amd64), gzip_desc(e1)],
                   ["/bin/cat", "/lower/os-release"], "kiln edge case: hard link into a lower layer", "/")

    top = go_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            lay.descriptor(OCI_INDEX, index, annotations={REF_NAME: "app:v1"}),
            lay.descriptor(OCI_MANIFEST, m_zstd, annotations={REF_NAME: "app:v1-zstd"}),
            lay.descriptor(OCI_MANIFEST, m_plain, annotations={REF_NAME: "app:v1-plain"}),
            lay.descriptor(OCI_MANIFEST, m_tools, annotations={REF_NAME: "tools:1.0"}),
            lay.descriptor(OCI_MANIFEST, m_edge, annotations={REF_NAME: "edge:lower-hardlink"}),
        ],
    })
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(top)
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(go_json({"imageLayoutVersion": "1.0.0"}))
    normalise_tree(out, epoch)


def normalise_tree(root, epoch):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            os.chmod(p, 0o644)
            os.utime(p, (epoch, epoch))
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (epoch, epoch))


# ----------------------------------------------------------------------------
# reading a layout back

def read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def blob_path(root, digest):
    alg, _, hexd = digest.partition(":")
    return os.path.join(root, "blobs", alg, hexd)


def read_blob(root, desc):
    path = blob_path(root, desc["digest"])
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != desc["size"]:
        raise FixtureError("%s: size %d, descriptor says %d" % (path, len(data), desc["size"]))
    if digest_of(data) != desc["digest"]:
        raise FixtureError("%s: content does not hash to its name" % path)
    return data


def decompress(media_type, data):
    if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
        return gzip.decompress(data)  # reads every member
    if media_type.endswith("+zstd"):
        return run(["zstd", "-q", "-d", "-c"], data)
    if media_type.endswith(".tar") or media_type.endswith("diff.tar"):
        return data
    raise FixtureError("unsupported layer media type %s" % media_type)


def find_ref(root, ref):
    for desc in read_json(os.path.join(root, "index.json"))["manifests"]:
        if desc.get("annotations", {}).get(REF_NAME) == ref:
            return desc
    raise FixtureError("%s: no ref %s in index.json" % (root, ref))


def resolve_manifest(root, desc, os_name, arch):
    """Follows an index to the manifest for os/arch, or returns the manifest itself."""
    if desc["mediaType"] == OCI_INDEX:
        index = json.loads(read_blob(root, desc))
        for m in index["manifests"]:
            p = m.get("platform", {})
            if p.get("os") == os_name and p.get("architecture") == arch:
                return resolve_manifest(root, m, os_name, arch)
        raise FixtureError("no %s/%s manifest in index %s" % (os_name, arch, desc["digest"]))
    return desc


def check_image(root, mdesc):
    manifest = json.loads(read_blob(root, mdesc))
    config_bytes = read_blob(root, manifest["config"])
    config = json.loads(config_bytes)
    if config["rootfs"]["type"] != "layers":
        raise FixtureError("config %s: rootfs.type is not layers" % manifest["config"]["digest"])
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest["layers"]):
        raise FixtureError("manifest %s: %d layers but %d diff_ids"
                           % (mdesc["digest"], len(manifest["layers"]), len(diff_ids)))
    tars = []
    for i, ldesc in enumerate(manifest["layers"]):
        tar_bytes = decompress(ldesc["mediaType"], read_blob(root, ldesc))
        if digest_of(tar_bytes) != diff_ids[i]:
            raise FixtureError("layer %d (%s): diffID %s, config says %s"
                               % (i, ldesc["digest"], digest_of(tar_bytes), diff_ids[i]))
        tars.append(tar_bytes)
    return manifest, config, tars


def check(root):
    for name in sorted(os.listdir(os.path.join(root, "blobs", "sha256"))):
        with open(os.path.join(root, "blobs", "sha256", name), "rb") as f:
            if sha256_hex(f.read()) != name:
                raise FixtureError("%s/blobs/sha256/%s does not hash to its name" % (root, name))
    top = read_json(os.path.join(root, "index.json"))
    for desc in top["manifests"]:
        ref = desc.get("annotations", {}).get(REF_NAME, "(untagged)")
        if desc["mediaType"] == OCI_INDEX:
            index = json.loads(read_blob(root, desc))
            for m in index["manifests"]:
                check_image(root, m)
        else:
            check_image(root, desc)
        print("ok %s %s" % (ref, desc["digest"]))


def summary(root):
    top = read_json(os.path.join(root, "index.json"))
    for desc in top["manifests"]:
        ref = desc.get("annotations", {}).get(REF_NAME, "(untagged)")
        print("%s  %s  %s" % (ref, desc["mediaType"], desc["digest"]))
        manifests = [desc]
        if desc["mediaType"] == OCI_INDEX:
            manifests = json.loads(read_blob(root, desc))["manifests"]
            for m in manifests:
                p = m["platform"]
                print("  %s/%s%s  %s" % (p["os"], p["architecture"],
                                          "/" + p["variant"] if "variant" in p else "", m["digest"]))
        for m in manifests:
            manifest = json.loads(read_blob(root, m))
            print("  manifest %s config %s" % (m["digest"], manifest["config"]["digest"]))
            for l in manifest["layers"]:
                print("    %-45s %8d  %s" % (l["mediaType"], l["size"], l["digest"]))


# ----------------------------------------------------------------------------
# archives

def tar_from_files(files, epoch):
    """files: list of (name, bytes or None for a directory), written in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.mtime = epoch
            info.uname = info.gname = "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def pack_dir(src, out, epoch):
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        if rel != ".":
            files.append((rel, None))
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                files.append((os.path.normpath(os.path.join(rel, name)), f.read()))
    # Lexical order of the whole path, as Go's filepath.Walk gives: a directory
    # comes right before its contents.
    write_atomic(out, tar_from_files(sorted(files), epoch))


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def saved_image(layout, ref):
    """The amd64 image behind ref: (manifest, config bytes, config, uncompressed layer tars)."""
    mdesc = resolve_manifest(layout, find_ref(layout, ref), "linux", "amd64")
    manifest, config, tars = check_image(layout, mdesc)
    return manifest, read_blob(layout, manifest["config"]), config, tars


def legacy_v1_layers(config, tars):
    """Per-layer legacy v1 JSON as `docker save` writes it: [(v1 id, json bytes)].

    IDs follow moby's image/v1 CreateID: the sha256 of the v1 JSON (without id)
    plus layer_id (the chainID) and parent, keys sorted as Go marshals a map.
    """
    out = []
    parent = ""
    chain = ""
    for i, tar_bytes in enumerate(tars):
        diff_id = digest_of(tar_bytes)
        chain = diff_id if i == 0 else digest_of((chain + " " + diff_id).encode())
        v1 = {"created": "1970-01-01T00:00:00Z"}
        if i == len(tars) - 1:
            v1 = {"created": config["created"], "config": config["config"],
                  "architecture": config["architecture"]}
        v1["os"] = config["os"]
        id_input = dict(v1, layer_id=chain)
        if parent:
            id_input["parent"] = "sha256:" + parent
        v1_id = sha256_hex(canonical_json(id_input))
        body = {"id": v1_id}
        if parent:
            body["parent"] = parent
        body.update(v1)
        out.append((v1_id, go_json(body)))
        parent = v1_id
    return out


def docker_legacy(layout, ref, tag, out, epoch):
    """The tarball `docker save` wrote up to moby 24.

    Per moby v24 image/tarexport/save.go: one directory per layer named by its v1
    ID holding VERSION ("1.0"), json (legacy v1 config) and layer.tar (the
    uncompressed layer); the image config as <image id>.json; manifest.json with
    Config, RepoTags and Layers "<v1 id>/layer.tar"; repositories mapping the
    tag to the top layer's v1 ID.
    """
    manifest, config_bytes, config, tars = saved_image(layout, ref)
    repo, _, tagname = tag.rpartition(":")
    v1s = legacy_v1_layers(config, tars)
    files = {}
    for (v1_id, v1_json), tar_bytes in zip(v1s, tars):
        files[v1_id] = None
        files[v1_id + "/VERSION"] = b"1.0"
        files[v1_id + "/json"] = v1_json
        files[v1_id + "/layer.tar"] = tar_bytes
    files[manifest["config"]["digest"].split(":", 1)[1] + ".json"] = config_bytes
    files["manifest.json"] = go_json([{
        "Config": manifest["config"]["digest"].split(":", 1)[1] + ".json",
        "RepoTags": [tag],
        "Layers": [v1_id + "/layer.tar" for v1_id, _ in v1s],
    }]) + b"\n"
    files["repositories"] = go_json({repo: {tagname: v1s[-1][0]}}) + b"\n"
    # archive.Tar walks the directory: lexical order, each directory before its contents.
    write_atomic(out, tar_from_files(sorted(files.items()), epoch))


def docker_oci(layout, ref, tag, out, epoch):
    """The tarball `docker save` writes since moby 25 (graphdriver image store).

    Per moby's image/tarexport/save.go (v25 and later): uncompressed layers stored
    under blobs/sha256/<diffID>, the image config under its own digest, the
    per-layer legacy v1 JSON as loose blobs, an OCI manifest and index.json (OCI
    media types; layers are ...layer.v1.tar; the index entry is annotated with
    io.containerd.image.name and the tag as org.opencontainers.image.ref.name),
    manifest.json with blobs/sha256/ paths and LayerSources, oci-layout and
    repositories. The config blob is byte-identical to the layout's, so the image
    ID is the same.
    """
    manifest, config_bytes, config, tars = saved_image(layout, ref)
    repo, _, tagname = tag.rpartition(":")
    blobs = {}
    layer_descs = []
    for v1_id, v1_json in legacy_v1_layers(config, tars):
        blobs[digest_of(v1_json)] = v1_json
    for tar_bytes in tars:
        diff_id = digest_of(tar_bytes)
        blobs[diff_id] = tar_bytes
        layer_descs.append({"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": len(tar_bytes)})
    config_digest = manifest["config"]["digest"]
    blobs[config_digest] = config_bytes
    oci_manifest = go_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descs,
    })
    mdigest = digest_of(oci_manifest)
    blobs[mdigest] = oci_manifest
    index = go_json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(oci_manifest),
                       "annotations": {CONTAINERD_IMAGE_NAME: tag, REF_NAME: tagname}}],
    })
    layer_paths = ["blobs/sha256/" + d["digest"].split(":", 1)[1] for d in layer_descs]
    manifest_json = go_json([{
        "Config": "blobs/sha256/" + config_digest.split(":", 1)[1],
        "RepoTags": [tag],
        "Layers": layer_paths,
        "LayerSources": {d["digest"]: d for d in sorted(layer_descs, key=lambda d: d["digest"])},
    }]) + b"\n"
    files = {"blobs": None, "blobs/sha256": None}
    for d, data in blobs.items():
        files["blobs/sha256/" + d.split(":", 1)[1]] = data
    files["index.json"] = index
    files["manifest.json"] = manifest_json
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files["repositories"] = go_json({repo: {tagname: layer_paths[-1].rsplit("/", 1)[1]}}) + b"\n"
    write_atomic(out, tar_from_files(sorted(files.items()), epoch))


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build-layout")
    p.add_argument("--out", required=True)
    p.add_argument("--busybox", required=True)
    p.add_argument("--epoch", type=int, required=True)
    for name in ("docker-legacy", "docker-oci"):
        p = sub.add_parser(name)
        p.add_argument("--layout", required=True)
        p.add_argument("--ref", required=True)
        p.add_argument("--tag", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--epoch", type=int, required=True)
    p = sub.add_parser("pack-dir")
    p.add_argument("--dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epoch", type=int, required=True)
    p = sub.add_parser("check")
    p.add_argument("--layout", required=True)
    p = sub.add_parser("summary")
    p.add_argument("--layout", required=True)
    args = ap.parse_args()
    try:
        if args.cmd == "build-layout":
            build_layout(args.out, args.busybox, args.epoch)
        elif args.cmd == "docker-legacy":
            docker_legacy(args.layout, args.ref, args.tag, args.out, args.epoch)
        elif args.cmd == "docker-oci":
            docker_oci(args.layout, args.ref, args.tag, args.out, args.epoch)
        elif args.cmd == "pack-dir":
            pack_dir(args.dir, args.out, args.epoch)
        elif args.cmd == "check":
            check(args.layout)
        elif args.cmd == "summary":
            summary(args.layout)
    except (FixtureError, OSError, KeyError, ValueError) as e:
        print("fixtures.py %s: %s" % (args.cmd, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
