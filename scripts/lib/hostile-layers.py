"""Builds an OCI image layout of hostile and odd layers, for the tests of what kiln applies and what it refuses.

Usage: hostile-layers.py LAYOUT

Tags:
  accepted     four layers of cases containerd applies (traversal clamped, symlinked parents, hard links,
               root entries, whiteouts and opaque directories, type changes, duplicates, devices, special
               modes, byte names, out-of-range times, a sparse file, data after the end of the archive)
  forged       a layer that carries trusted.overlay.* and security.selinux attributes and AUFS metadata
  refuse-NAME  one image per refused case (see CASES below): the lower layer, then the bad one
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unicodedata


def info(name, kind=tarfile.REGTYPE, **kw):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.mtime = kw.pop("mtime", 1700000000)
    i.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    for k, v in kw.items():
        setattr(i, k, v)
    return i


class Layer:
    """A layer tar written entry by entry (PAX format, byte names kept with surrogateescape)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.t = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                              errors="surrogateescape")
        self.extra = b""

    def file(self, name, data=b"x", **kw):
        i = info(name, **kw)
        i.size = len(data)
        self.t.addfile(i, io.BytesIO(data))

    def dir(self, name, **kw):
        self.t.addfile(info(name, tarfile.DIRTYPE, **kw))

    def sym(self, name, target, **kw):
        self.t.addfile(info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw))

    def link(self, name, target, **kw):
        self.t.addfile(info(name, tarfile.LNKTYPE, linkname=target, **kw))

    def dev(self, name, kind, major, minor, **kw):
        self.t.addfile(info(name, kind, devmajor=major, devminor=minor, **kw))

    def raw(self, tar_bytes):
        """Entries from another tar (without its end-of-archive blocks)."""
        self.extra += tar_bytes

    def bytes(self):
        self.t.close()
        data = self.buf.getvalue()
        if self.extra:
            # Splice entries made by GNU tar before this tar's end-of-archive blocks.
            body = data[:-1024] if data.endswith(bytes(1024)) else data
            while body.endswith(bytes(512)):
                body = body[:-512]
            data = body + self.extra + bytes(1024)
        return data


def sparse_entry(tmp):
    """A 64 MiB file with 4 KiB of data in its middle, as GNU tar stores it (PAX sparse 1.0)."""
    d = os.path.join(tmp, "sparse")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "holes"), "wb") as f:
        f.truncate(64 << 20)
        f.seek(32 << 20)
        f.write(b"S" * 4096)
    out = os.path.join(tmp, "sparse.tar")
    subprocess.run(["tar", "--sparse", "--format=pax", "--mtime=@1700000000", "--owner=0", "--group=0",
                    "--numeric-owner", "-cf", out, "-C", d, "holes"], check=True)
    data = open(out, "rb").read()
    while data.endswith(bytes(512)):
        data = data[:-512]
    return data


def accepted(tmp):
    l1 = Layer()
    l1.dir("./", mode=0o700)                        # the root itself: ignored, even its mode
    l1.dir("etc")
    l1.file("etc/config", b"base config")
    l1.dir("usr")
    l1.dir("usr/bin")
    l1.dir("data")
    l1.file("data/old", b"old data")
    l1.file("../../x-dotdot", b"clamped")           # traversal, clamped into the root
    l1.file("/abs-file", b"absolute")
    l1.file("a/./b/../../../x-clean", b"cleaned")   # cleaned lexically: /x-clean
    l1.sym("d", "/etc")                             # symlinked parent, resolved inside the image
    l1.file("d/via-symlink", b"through d")
    l1.sym("c1", "c2")                              # a chain of symlinks
    l1.sym("c2", "/usr")
    l1.file("c1/bin/chained", b"through c1 and c2")
    l1.sym("uplink", "../../..")
    l1.file("uplink/x-up", b"clamped up")
    l1.link("hl", "/../etc/config")                 # hard link, target clamped
    l1.sym("s", "etc/config")
    l1.link("hs", "s")                              # hard link to a symlink links the symlink
    l1.link("newdir/sub/link", "etc/config")        # missing parents made 0755
    l1.file("usr/bin/su", b"#!setuid", mode=0o4755)
    l1.file("suid", b"#!setuid", mode=0o4755)
    l1.dir("tmp", mode=0o1777)
    l1.dir("locked", mode=0o000)                    # a 0000 directory later entries enter
    l1.file("locked/inside", b"inside locked")
    l1.dev("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666)
    l1.dev("dev/sda", tarfile.BLKTYPE, 8, 0, mode=0o660)
    l1.t.addfile(info("dev/fifo", tarfile.FIFOTYPE))
    l1.file("dup", b"first")                        # duplicates: the last wins
    l1.file("dup", b"second")
    l1.file("t1", b"old t1")
    l1.link("t1link", "t1")                         # keeps the old inode when t1 is made again
    l1.file("t1", b"new t1")
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    l1.file(nfc, b"nfc")                            # bytes, not text: two files
    l1.file(nfd, b"nfd")
    l1.file("bytes-\udcff", b"ff")
    l1.file("bytes-\udcfe", b"fe")
    l1.file("time-before-1970", b"old", mtime=-86400)     # out-of-range times become the epoch
    l1.file("time-after-2262", b"late", mtime=10**10)
    l1.file("n" * 255, b"longest name")
    l1.file("/".join(["p" * 200] * 19) + "/deep", b"a path of about 3.8 KiB")
    l1.sym("longlink", "t" * 4000)
    l1.raw(sparse_entry(tmp))
    first = l1.bytes() + b"data after the end-of-archive blocks" + bytes(475)

    l2 = Layer()
    l2.file(".wh.x-dotdot", b"")                    # whiteout of a lower file
    l2.file("data/new", b"new data")                # a sibling of the opaque marker, before it
    l2.file("data/.wh..wh..opq", b"")               # opaque: hides data/old, keeps data/new
    l2.dir("etc", mode=0o750)                       # two directories merge; the later mode wins
    l2.dir("etc/config")                            # file -> directory
    l2.file("etc/config/inside", b"now a directory")
    l2.file("s", b"symlink -> file")                # symlink -> file
    l2.sym("usr/bin", "/opt")                       # directory -> symlink
    second = l2.bytes()

    l3 = Layer()
    l3.file("etc/config", b"directory -> file again")
    l3.dir("opt")
    l3.file("opt/via-new-symlink", b"usr/bin is now /opt")
    third = l3.bytes()
    return [first, second, third]


def forged():
    l = Layer()
    i = info("ovl")
    i.type = tarfile.DIRTYPE
    i.mode = 0o755
    i.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.keep": "kept",
                     "SCHILY.xattr.security.selinux": "system_u:object_r:etc_t:s0"}
    l.t.addfile(i)
    l.file("ovl/file", b"x")
    l.file(".wh..wh.plnk/123.456", b"")             # AUFS hard-link metadata
    return [l.bytes()]


def lower():
    l = Layer()
    l.dir("etc")
    l.file("etc/config", b"lower")
    return l.bytes()


def one(build):
    l = Layer()
    build(l)
    return l.bytes()


def pax_header(fields):
    """A tar whose first entry has the given PAX records, written byte for byte (no library checks)."""
    def record(k, v):
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n).encode()) + len(body) != n:
            n = len(str(n).encode()) + len(body)
        return str(n).encode() + body
    data = b"".join(record(k, v) for k, v in fields)
    def header(name, size, typeflag):
        h = bytearray(512)
        h[0:len(name)] = name
        h[100:108] = b"0000644\0"
        h[108:116] = b"0000000\0"
        h[116:124] = b"0000000\0"
        h[124:136] = b"%011o\0" % size
        h[136:148] = b"14537266400\0"
        h[148:156] = b" " * 8
        h[156:157] = typeflag
        h[257:263] = b"ustar\0"
        h[263:265] = b"00"
        h[148:156] = b"%06o\0 " % sum(h)
        return bytes(h)
    pad = lambda b: b + bytes(-len(b) % 512)
    return header(b"PaxHeader", len(data), b"x") + pad(data) + header(b"victim", 1, b"0") + pad(b"v") + bytes(1024)


CASES = {
    # name: a function returning the bad layer (applied over `lower`)
    "root-file": lambda: one(lambda l: l.file(".", b"not a directory")),
    "root-symlink": lambda: one(lambda l: l.sym("a/..", "/etc")),
    "symlink-loop": lambda: one(lambda l: (l.sym("a", "b"), l.sym("b", "a"), l.file("a/x"))),
    "hardlink-later": lambda: one(lambda l: (l.link("early", "late"), l.file("late"))),
    "hardlink-directory": lambda: one(lambda l: (l.dir("dir"), l.link("dirlink", "dir"))),
    "hardlink-itself": lambda: one(lambda l: (l.file("self"), l.link("self", "self"))),
    "hardlink-whiteout": lambda: one(lambda l: (l.file(".wh.config"), l.link("wlink", ".wh.config"))),
    "hardlink-lower": lambda: one(lambda l: l.link("lowerlink", "etc/config")),
    "whiteout-dot": lambda: one(lambda l: l.file(".wh..")),
    "whiteout-dotdot": lambda: one(lambda l: l.file(".wh...")),
    "whiteout-empty": lambda: one(lambda l: l.file(".wh.")),
    "whiteout-parent": lambda: one(lambda l: l.file(".wh.etc/config")),
    "whiteout-same-layer": lambda: one(lambda l: (l.file("made"), l.file(".wh.made"))),
    "file-then-child": lambda: one(lambda l: (l.file("f"), l.file("f/x"))),
    "device-number": lambda: one(lambda l: l.dev("dev/huge", tarfile.CHRTYPE, 5000, 1)),
    "owner-64bit": lambda: one(lambda l: l.file("owned", uid=1 << 32)),
    "name-256": lambda: one(lambda l: l.file("n" * 256)),
    "path-4097": lambda: one(lambda l: l.file("/".join(["q" * 255] * 16) + "/qqqqqqqqqqqqqqqq")),
    "symlink-target-4096": lambda: one(lambda l: l.sym("toolong", "t" * 4096)),
    "pax-size-overflow": lambda: pax_header([(b"size", b"9223372036854775807")]),
    "pax-size-negative": lambda: pax_header([(b"size", b"-5")]),
    "truncated": lambda: one(lambda l: l.file("big", b"y" * 10000))[:6000],
    "bad-checksum": lambda: bytearray_flip(one(lambda l: l.file("f", b"z")), 148),
    "not-a-tar": lambda: zip_bytes(),
    "gzip-crc": lambda: gzip_damaged("crc"),
    "gzip-isize": lambda: gzip_damaged("isize"),
    "gzip-trailing": lambda: gzip_damaged("trailing"),
}


def bytearray_flip(data, offset):
    b = bytearray(data)
    b[offset] = (b[offset] + 1) % 256
    return bytes(b)


def zip_bytes():
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("file", b"zip, not tar" * 100)
    return buf.getvalue()


def put(root, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return f"sha256:{d}", len(data)


def gzip_damaged(how):
    """A sound tar whose gzip stream is damaged after the data: its CRC, its ISIZE, or bytes after its end.
    Returns (tar, blob): the diff_id stays the tar's, so only the gzip check can catch it."""
    raw = one(lambda l: l.file("f", b"hello"))
    g = bytearray(gzip.compress(raw, mtime=0))
    if how == "crc":
        g[-8] ^= 1
    elif how == "isize":
        g[-1] ^= 1
    else:
        g += b"garbage after the gzip stream"
    return raw, bytes(g)


def image(root, tag, layers, index):
    diff_ids, descs = [], []
    for layer in layers:
        raw, blob = layer if isinstance(layer, tuple) else (layer, gzip.compress(layer, mtime=0))
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d, n = put(root, blob)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "config": {"Cmd": ["/bin/sh"]}}
    cd, cn = put(root, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = put(root, json.dumps(manifest, sort_keys=True).encode())
    index.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                  "annotations": {"org.opencontainers.image.ref.name": tag}})


def main():
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    with open(f"{root}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    index = []
    with tempfile.TemporaryDirectory() as tmp:
        image(root, "accepted", accepted(tmp), index)
    image(root, "forged", forged(), index)
    base = lower()
    for name, build in CASES.items():
        image(root, "refuse-" + name, [base, build()], index)
    with open(f"{root}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": index}, f, sort_keys=True)


if __name__ == "__main__":
    main()
