"""Compares two containerd roots (var/lib/containerd): one written by a real containerd pull, one baked.

Usage:
  kiln bake RECIPE --dry-run --json | containerd-compare.py recipe
      prints the recipe as shell-friendly lines:
        layout L / platform P / namespace NS / keep-layer-blobs true|false
        image SKOPEO-SOURCE NAME [NAME...]
  containerd-compare.py compare EXPECTED-ROOT ACTUAL-ROOT --boltcheck BIN [--json FILE] [--puller cri|ctr]
                        [--actual-label NAME] [--verbose]
      EXPECTED-ROOT is the real containerd's root, ACTUAL-ROOT kiln's (both var/lib/containerd, mounted
      read-only). Prints a report; exit 0 when they agree up to the documented differences, 1 otherwise.
  containerd-compare.py blocks IMAGE...
      prints "IMAGE written-blocks total-blocks" counting non-zero 512 KiB blocks (the EBS block size).

What is compared:
  - files: the content store (every blob: name, size, mode, owner, digest of its bytes), the plugin
    directories (modes, owners), and every snapshot's fs tree matched by chainID (not by id): paths, types,
    modes incl. setuid/sticky, owners, sizes, content digests, symlink targets, device numbers (whiteouts
    are 0/0 character devices), all xattrs (trusted.overlay.opaque too), hard-link groups, mtimes;
  - meta.db and metadata.db: every bucket and key as dumped by boltcheck (bbolt's own tx.Check runs first),
    after normalising what differs by nature: times, snapshot ids, sequence numbers in snapshot names and
    bucket sequences (these are checked for consistency instead).
Differences that containerd itself is known to produce and that do not change what containerd sees are
reported as "documented" (see DOCUMENTED below) and do not fail the comparison.
"""
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import time

NS_DEFAULT = "k8s.io"
CONTENT = "io.containerd.content.v1.content"
METADATA = "io.containerd.metadata.v1.bolt"
OVERLAY = "io.containerd.snapshotter.v1.overlayfs"
BLOCK = 512 * 1024

# Differences a real containerd shows against an equally valid offline-written root. Each entry: id,
# what it covers, and why it is harmless.
DOCUMENTED = {
    "distribution-source": "containerd.io/distribution.source.<registry> labels on content blobs: the pull "
    "handler records which registry repository each blob came from (used for cross-repository mounts on "
    "push); kiln reads local sources and may leave them out (optional per containerd-root.md)",
    "lazy-buckets": "empty buckets containerd creates the first time it uses them (leases, content/ingests); "
    "an absent bucket reads the same as an empty one",
    "work-dir": "snapshots/<id>/work: the overlay work directory containerd makes when it prepares an active "
    "snapshot and leaves behind after commit; committed snapshots are only ever lowerdirs",
    "runtime-dirs": "plugin directories containerd creates at every start (cri, introspection, runtime "
    "v1/v2, native, blockfile and erofs snapshotters, the sandbox controller, tmpmounts, opt)",
    "store-mtimes": "mtimes of content blobs and of the directories containerd's stores make: the time of "
    "the pull vs SOURCE_DATE_EPOCH",
    "puller-ctr": "with --puller ctr (not CRI): ctr pull names only the reference it was given (the other "
    "CRI names are added with ctr images tag), its unpack leaves committed snapshots without the "
    "containerd.io/snapshot.ref label, and it appends each repository to the distribution-source label of a "
    "blob it already has (a CRI pull leaves an existing blob's labels alone)",
    "whiteout-mtime": "mtime of a whiteout (0/0 character device): containerd makes the device node while "
    "unpacking and does not copy the time of the .wh. entry, so it is the time of the pull",
    "implicit-parent-mtime": "mtime of a directory a layer uses without listing it: containerd makes it (mode "
    "and owner from the lower snapshot's, as kiln does) and its mtime becomes the time of the pull when entries "
    "are created in it; kiln gives it SOURCE_DATE_EPOCH (only directories whose containerd mtime falls in this "
    "run are counted here)",
    "schema-v4": "meta.db's v1/version: containerd 2.x writes schema v4; kiln writes v3, which 1.6 and 1.7 "
    "open and 2.x migrates at its first start (with no sandboxes to move, only the version changes)",
    "layer-root-mtime": "mtime of a snapshot's fs directory: the snapshotter creates it when it prepares the "
    "snapshot and the unpack does not set it, even from a ./ entry in the layer tar",
}

# A directory whose mtime is later than this was made (or changed) by the pull in this run, not by a layer entry
# (containerd sets a listed directory's times from its entry after the layer is unpacked).
RUNTIME_STARTED_S = time.time() - 3600
RUN_STARTED_NS = int(RUNTIME_STARTED_S * 1_000_000_000)

RUNTIME_DIRS = {
    "io.containerd.grpc.v1.cri", "io.containerd.grpc.v1.introspection", "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v2.task", "io.containerd.snapshotter.v1.native", "tmpmounts",
    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt",
    # 1.7 and 2.x
    "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
    "io.containerd.sandbox.controller.v1.shim",
}

# v1/version as 2.x and as kiln (like 1.6 and 1.7) write it: Go varints of 4 and 3.
SCHEMA_V4, SCHEMA_V3 = b"\x08", b"\x06"


class Report:
    def __init__(self):
        self.items = []  # (kind, section, where, expected, actual, note)

    def add(self, kind, section, where, expected, actual, note=""):
        self.items.append({"kind": kind, "section": section, "where": where, "expected": expected,
                           "actual": actual, "note": note})

    def diff(self, section, where, expected, actual, note=""):
        self.add("undocumented", section, where, expected, actual, note)

    def documented(self, doc, section, where, expected, actual):
        self.add("documented", section, where, expected, actual, doc)

    def info(self, section, where, text):
        self.add("info", section, where, None, None, text)

    def count(self, kind):
        return sum(1 for i in self.items if i["kind"] == kind)


# --- recipe -----------------------------------------------------------------------------------------

def recipe_command(args):
    """The recipe as `kiln bake RECIPE --dry-run --json` resolved it (on stdin), as plan lines."""
    if args:
        raise SystemExit("containerd-compare: recipe reads kiln's resolved recipe on stdin; options go to kiln")
    doc = json.load(sys.stdin)
    print("layout", doc["layout"])
    for p in doc["platforms"]:
        print("platform", p)
    print("namespace", doc["namespace"])
    print("keep-layer-blobs", "true" if doc["keepLayerBlobs"] else "false")
    for image in doc["images"]:
        names = image["names"]
        if not names:
            raise SystemExit(f"containerd-compare: image {image['source']} has no names; a pull needs one")
        ref = f":{image['reference']}" if image.get("reference") else ""
        print("image", f"{image['kind']}:{image['path']}{ref}", *names)


def bolt_dump(boltcheck, path):
    """Runs boltcheck dump (tx.Check first); returns (buckets {path: seq}, keys {(path, key): value})."""
    p = subprocess.run([boltcheck, "dump", path], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"boltcheck dump {path}: {p.stderr.strip()}")
    buckets, keys = {}, {}
    for line in p.stdout.splitlines():
        f = line.split(" ")
        if f[0] == "B":
            buckets[decode_path(f[1])] = int(f[2])
        elif f[0] == "K":
            keys[(decode_path(f[1]), bytes.fromhex(f[2]))] = b"" if f[3] == "-" else bytes.fromhex(f[3])
    return buckets, keys


def decode_path(p):
    return tuple(bytes.fromhex(c) for c in p.strip("/").split("/")) if p != "/" else ()


def text(b):
    try:
        s = b.decode()
        if s.isprintable():
            return s
    except UnicodeDecodeError:
        pass
    return "0x" + b.hex()


def show_path(path):
    return "/".join(text(c) for c in path)


def go_time(b):
    """Go time.MarshalBinary (version 1 or 2) -> (unix seconds, nanos) or None."""
    if len(b) not in (15, 16) or b[0] not in (1, 2):
        return None
    sec = int.from_bytes(b[1:9], "big", signed=True) - 62135596800
    nsec = int.from_bytes(b[9:13], "big")
    return sec, nsec


def read_uvarint(b, i=0):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def read_varint(b):
    u, _ = read_uvarint(b)
    return (u >> 1) ^ -(u & 1)


NAME_RE = re.compile(rb"^([^/]+)/(\d+)/(.+)$")


def normalise_name(b, seqs=None):
    m = NAME_RE.match(b)
    if not m:
        return b
    if seqs is not None:
        seqs.append(int(m.group(2)))
    return m.group(1) + b"/<seq>/" + m.group(3)


def normalise_meta(buckets, keys, report, side):
    """meta.db: times and snapshot name sequences normalised; consistency checks recorded."""
    nb, nk = {}, {}
    seqs_by_bucket = {}
    for (path, key), value in keys.items():
        if key in (b"createdat", b"updatedat"):
            if go_time(value) is None:
                report.diff("meta.db", f"{show_path(path)} {key.decode()}", "a Go MarshalBinary time",
                            f"{side}: 0x{value.hex()}")
            value = b"<time>"
        elif key == b"name" and len(path) >= 5 and path[2] == b"snapshots":
            seqs = seqs_by_bucket.setdefault(path[:4], [])
            value = normalise_name(value, seqs)
        elif key == b"version" and path == (b"v1",):
            pass
        nk[(path, key)] = value
    for path, seq in buckets.items():
        if len(path) == 4 and path[2] == b"snapshots":
            used = seqs_by_bucket.get(path, [])
            if used and seq < max(used):
                report.diff("meta.db", f"{show_path(path)} sequence", f">= {max(used)} (largest in names)",
                            f"{side}: {seq}", "containerd would hand out a sequence number already in use")
            if len(set(used)) != len(used):
                report.diff("meta.db", f"{show_path(path)} names", "unique sequence numbers", f"{side}: {sorted(used)}")
            seq = "<seq>"
        nb[path] = seq
    return nb, nk


def normalise_snapshotter(buckets, keys, report, side):
    """metadata.db: ids mapped to chainIDs, names' sequences normalised, parents keys decoded."""
    id_to_name = {}
    for (path, key), value in keys.items():
        if len(path) == 3 and path[1] == b"snapshots" and key == b"id":
            id_to_name[read_uvarint(value)[0]] = path[2]
    ids = {i: b"<id " + chain_of(n) + b">" for i, n in id_to_name.items()}
    nb, nk = {}, {}

    def npath(path):
        if len(path) >= 3 and path[1] == b"snapshots":
            return path[:2] + (normalise_name(path[2]),) + path[3:]
        return path

    for (path, key), value in keys.items():
        p = npath(path)
        if key in (b"createdat", b"updatedat"):
            if go_time(value) is None:
                report.diff("metadata.db", f"{show_path(path)} {key.decode()}", "a Go MarshalBinary time",
                            f"{side}: 0x{value.hex()}")
            value = b"<time>"
        elif len(path) == 3 and path[1] == b"snapshots" and key == b"id":
            value = ids[read_uvarint(value)[0]]
        elif len(path) == 3 and path[1] == b"snapshots" and key == b"parent":
            value = normalise_name(value)
        elif len(path) == 3 and path[1] == b"snapshots" and key in (b"inodes", b"size"):
            value = str(read_varint(value)).encode()
        elif path == (b"v1", b"parents"):
            try:
                parent, i = read_uvarint(key)
                if key[i] != 0:
                    raise ValueError
                child, j = read_uvarint(key, i + 1)
                if j != len(key):
                    raise ValueError
                key = ids.get(parent, b"<unknown id %d>" % parent) + b"/" + ids.get(child, b"<unknown id %d>" % child)
            except (ValueError, IndexError):
                report.diff("metadata.db", f"v1/parents key 0x{key.hex()}", "uvarint(parent) 00 uvarint(child)",
                            f"{side}: undecodable")
            value = normalise_name(value)
        nk[(p, key)] = value
    for path, seq in buckets.items():
        if path == (b"v1", b"snapshots"):
            if id_to_name and seq < max(id_to_name):
                report.diff("metadata.db", "v1/snapshots sequence", f">= {max(id_to_name)} (largest id)",
                            f"{side}: {seq}", "containerd would reuse an id and fail to rename the snapshot dir")
            seq = "<seq>"
        nb[npath(path)] = seq
    return nb, nk, id_to_name


def chain_of(name):
    m = NAME_RE.match(name)
    return m.group(3) if m else name


def compare_db(section, exp, act, report, puller):
    (eb, ek), (ab, ak) = exp, act
    for path in sorted(set(eb) | set(ab)):
        where = show_path(path)
        if path not in ab:
            if is_lazy_bucket(path) and is_empty(path, eb, ek):
                report.documented("lazy-buckets", section, f"bucket {where}", "present (empty)", "absent")
            elif not is_dist_source_only(path, ek):
                report.diff(section, f"bucket {where}", "present", "absent")
        elif path not in eb:
            if puller == "ctr" and path[-1:] == (b"labels",) and any(k == b"containerd.io/snapshot.ref" for p, k in ak if p == path):
                report.documented("puller-ctr", section, f"bucket {where}", "absent", "present")
            else:
                report.diff(section, f"bucket {where}", "absent", "present")
        elif eb[path] != ab[path]:
            report.diff(section, f"bucket {where} sequence", str(eb[path]), str(ab[path]))
    for pk in sorted(set(ek) | set(ak)):
        path, key = pk
        where = f"{show_path(path)} {text(key)}"
        e, a = ek.get(pk), ak.get(pk)
        if e == a:
            continue
        if section == "meta.db" and path == (b"v1",) and key == b"version" and e == SCHEMA_V4 and a == SCHEMA_V3:
            report.documented("schema-v4", section, where, "0x08 (v4)", "0x06 (v3)")
        elif a is None and key.startswith(b"containerd.io/distribution.source."):
            report.documented("distribution-source", section, where, text(e), "absent")
        elif e is None and puller == "ctr" and key == b"containerd.io/snapshot.ref":
            report.documented("puller-ctr", section, where, "absent", text(a))
        elif (puller == "ctr" and key.startswith(b"containerd.io/distribution.source.") and e is not None
              and a is not None and set(a.split(b",")) < set(e.split(b","))):
            report.documented("puller-ctr", section, where, text(e), text(a))
        else:
            report.diff(section, where, "absent" if e is None else text(e), "absent" if a is None else text(a))


def is_lazy_bucket(path):
    return (len(path) == 3 and path[2] == b"leases") or path[2:] == (b"content", b"ingests")


def is_empty(path, buckets, keys):
    inside = lambda p: len(p) > len(path) and p[:len(path)] == path  # noqa: E731
    return not any(inside(b) for b in buckets) and not any(p == path or inside(p) for p, _ in keys)


def is_dist_source_only(path, keys):
    """A labels bucket whose only keys are distribution-source labels (absent in kiln's: documented)."""
    if path[-1:] != (b"labels",):
        return False
    ks = [k for p, k in keys if p == path]
    return bool(ks) and all(k.startswith(b"containerd.io/distribution.source.") for k in ks)


# --- file trees --------------------------------------------------------------------------------------

def entry(path):
    st = os.lstat(path)
    e = {"type": file_type(st.st_mode), "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid, "mtime": st.st_mtime_ns, "nlink": st.st_nlink, "ino": st.st_ino}
    if stat.S_ISREG(st.st_mode):
        e["size"] = st.st_size
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        e["sha256"] = h.hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        e["target"] = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        e["rdev"] = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    xattrs = {}
    try:
        for name in os.listxattr(path, follow_symlinks=False):
            v = os.getxattr(path, name, follow_symlinks=False)
            xattrs[name] = text(v)
    except OSError:
        pass
    if xattrs:
        e["xattrs"] = xattrs
    return e


def file_type(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "chardev"), (stat.S_ISBLK, "blockdev"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "unknown"


def walk(root):
    """{relative path: entry} for root and everything below it (root itself as ".")."""
    out = {".": entry(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = entry(full)
    return out


def link_groups(tree):
    """Replaces inode numbers by hard-link groups: the sorted list of paths sharing a non-directory inode."""
    by_ino = {}
    for p, e in tree.items():
        if e["type"] != "dir":
            by_ino.setdefault(e["ino"], []).append(p)
    for p, e in tree.items():
        ino = e.pop("ino")
        if e["type"] != "dir" and len(by_ino[ino]) > 1:
            e["links"] = sorted(by_ino[ino])
    return tree


COMPARED_FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target", "rdev", "xattrs", "links", "nlink")


def compare_entries(section, where, e, a, report, mtime_doc=None):
    for field in COMPARED_FIELDS:
        if field == "nlink" and e["type"] == "dir":
            continue  # directory link counts follow subdirectory counts, compared through the tree itself
        if e.get(field) != a.get(field):
            report.diff(section, f"{where} {field}", json.dumps(e.get(field)), json.dumps(a.get(field)))
    if e["mtime"] != a["mtime"]:
        if mtime_doc:
            report.documented(mtime_doc, section, f"{where} mtime", fmt_ns(e["mtime"]), fmt_ns(a["mtime"]))
        else:
            report.diff(section, f"{where} mtime", fmt_ns(e["mtime"]), fmt_ns(a["mtime"]))


def fmt_ns(ns):
    s, n = divmod(ns, 1_000_000_000)
    return f"{s}.{n:09d}"


def snapshot_dirs(root, id_to_name):
    """{chainID: relative dir of snapshots/<id>} from the snapshotter's ids."""
    out = {}
    for i, name in id_to_name.items():
        out[chain_of(name).decode()] = os.path.join(OVERLAY, "snapshots", str(i))
    return out


def compare_trees(exp_root, act_root, exp_ids, act_ids, report):
    # Top level: the three stores compared below; containerd's runtime dirs are documented.
    exp_top = set(os.listdir(exp_root))
    act_top = set(os.listdir(act_root))
    for name in sorted(exp_top | act_top):
        if name in (CONTENT, METADATA, OVERLAY):
            continue
        if name in exp_top and name not in act_top and name in RUNTIME_DIRS:
            report.documented("runtime-dirs", "files", name, "present", "absent")
        elif name in act_top and name not in exp_top:
            report.diff("files", name, "absent", "present")
        elif name not in act_top:
            report.diff("files", name, "present", "absent")
    compare_entries("files", ".", entry(exp_root) | {"ino": 0}, entry(act_root) | {"ino": 0}, report, "store-mtimes")

    # Store directories and files outside the snapshots.
    for store in (CONTENT, METADATA, OVERLAY):
        e_path, a_path = os.path.join(exp_root, store), os.path.join(act_root, store)
        if not os.path.isdir(a_path):
            report.diff("files", store, "directory", "absent")
            continue
        e_tree = walk_store(e_path, store)
        a_tree = walk_store(a_path, store)
        for p in sorted(set(e_tree) | set(a_tree)):
            where = os.path.normpath(os.path.join(store, p))
            e, a = e_tree.get(p), a_tree.get(p)
            if a is None:
                report.diff("files", where, describe(e), "absent")
            elif e is None:
                report.diff("files", where, "absent", describe(a))
            elif p.endswith(".db"):
                # Databases are compared by content below; here only their modes and owners.
                for field in ("type", "mode", "uid", "gid"):
                    if e[field] != a[field]:
                        report.diff("files", f"{where} {field}", json.dumps(e[field]), json.dumps(a[field]))
            else:
                compare_entries("files", where, e, a, report, "store-mtimes")
        if store == CONTENT:
            blobs = sum(1 for p in e_tree if p.startswith("blobs/sha256/"))
            report.info("files", store, f"{blobs} content blobs compared (names, sizes, modes, owners, bytes)")
            for p, a in a_tree.items():
                m = re.match(r"^blobs/sha256/([0-9a-f]{64})$", p)
                if m and a.get("sha256") != m.group(1):
                    report.diff("files", os.path.join(store, p), f"bytes hashing to {m.group(1)}",
                                f"bytes hashing to {a.get('sha256')}")

    # Snapshots, matched by chainID.
    exp_snap = snapshot_dirs(exp_root, exp_ids)
    act_snap = snapshot_dirs(act_root, act_ids)
    for d in (exp_root, act_root):
        listed = set(os.listdir(os.path.join(d, OVERLAY, "snapshots"))) if os.path.isdir(os.path.join(d, OVERLAY, "snapshots")) else set()
        known = {str(i) for i in (exp_ids if d == exp_root else act_ids)}
        for extra in sorted(listed - known):
            report.diff("files", f"{'containerd' if d == exp_root else 'kiln'}: {OVERLAY}/snapshots/{extra}",
                        "a directory for every id in metadata.db and nothing else", "a directory with no snapshot record")
        for missing in sorted(known - listed):
            report.diff("files", f"{'containerd' if d == exp_root else 'kiln'}: {OVERLAY}/snapshots/{missing}",
                        "present (id in metadata.db)", "absent")
    for chain in sorted(set(exp_snap) | set(act_snap)):
        if chain not in act_snap:
            report.diff("snapshots", chain, "committed snapshot", "absent")
            continue
        if chain not in exp_snap:
            report.diff("snapshots", chain, "absent", "committed snapshot")
            continue
        e_dir, a_dir = os.path.join(exp_root, exp_snap[chain]), os.path.join(act_root, act_snap[chain])
        if not os.path.isdir(e_dir) or not os.path.isdir(a_dir):
            continue
        e_top, a_top = set(os.listdir(e_dir)), set(os.listdir(a_dir))
        short = chain.replace("sha256:", "")[:12]
        for name in sorted(e_top | a_top):
            if name == "fs":
                continue
            if name in e_top and name in a_top:
                compare_entries("snapshots", f"{short}/{name}", entry(os.path.join(e_dir, name)) | {"ino": 0},
                                entry(os.path.join(a_dir, name)) | {"ino": 0}, report, "store-mtimes")
            elif name == "work" and name in e_top:
                report.documented("work-dir", "snapshots", f"{short}/work", "present", "absent")
            else:
                report.diff("snapshots", f"{short}/{name}", "present" if name in e_top else "absent",
                            "present" if name in a_top else "absent")
        compare_entries("snapshots", f"{short} (snapshot dir)", entry(e_dir) | {"ino": 0},
                        entry(a_dir) | {"ino": 0}, report, "store-mtimes")
        if "fs" not in a_top or "fs" not in e_top:
            report.diff("snapshots", f"{short}/fs", "present", "absent")
            continue
        e_tree = link_groups(walk(os.path.join(e_dir, "fs")))
        a_tree = link_groups(walk(os.path.join(a_dir, "fs")))
        for p in sorted(set(e_tree) | set(a_tree)):
            e, a = e_tree.get(p), a_tree.get(p)
            where = f"{short}/fs/{p}" if p != "." else f"{short}/fs"
            if a is None:
                report.diff("snapshots", where, describe(e), "absent")
            elif e is None:
                report.diff("snapshots", where, "absent", describe(a))
            else:
                doc = None
                if p == ".":
                    doc = "layer-root-mtime"
                elif e["type"] == "chardev" and e.get("rdev") == "0:0":
                    doc = "whiteout-mtime"
                elif e["type"] == "dir" and e["mtime"] >= RUN_STARTED_NS:
                    doc = "implicit-parent-mtime"
                compare_entries("snapshots", where, e, a, report, doc)
        report.info("snapshots", short, f"{chain}: {len(e_tree) - 1} entries compared")


def walk_store(path, store):
    tree = walk(path)
    if store == OVERLAY:
        tree = {p: e for p, e in tree.items() if not re.match(r"^snapshots/[^/]+/", p)}
        # snapshots/<id> differ by id; compared by chainID instead.
        tree = {p: e for p, e in tree.items() if not re.match(r"^snapshots/[^/]+$", p)}
    for e in tree.values():
        e.pop("ino", None)
    return tree


def describe(e):
    parts = [e["type"], e["mode"], f"{e['uid']}:{e['gid']}"]
    if "size" in e:
        parts.append(f"{e['size']} bytes")
    if "target" in e:
        parts.append(f"-> {e['target']}")
    if "rdev" in e:
        parts.append(e["rdev"])
    if "xattrs" in e:
        parts.append(json.dumps(e["xattrs"], sort_keys=True))
    return " ".join(parts)


# --- commands ----------------------------------------------------------------------------------------

def compare_command(args):
    exp_root, act_root = args[0], args[1]
    boltcheck, json_out, puller, label, verbose = None, None, "cri", "kiln", False
    i = 2
    while i < len(args):
        if args[i] == "--verbose":
            verbose = True
            i += 1
            continue
        if args[i] == "--boltcheck":
            boltcheck = args[i + 1]
        elif args[i] == "--json":
            json_out = args[i + 1]
        elif args[i] == "--puller":
            puller = args[i + 1]
        elif args[i] == "--actual-label":
            label = args[i + 1]
        else:
            raise SystemExit(f"containerd-compare: unknown option {args[i]}")
        i += 2
    if not boltcheck:
        raise SystemExit("containerd-compare: --boltcheck BIN is required")
    report = Report()
    dbs = {}
    for side, root in (("containerd", exp_root), ("kiln", act_root)):
        for name, rel in (("meta.db", f"{METADATA}/meta.db"), ("metadata.db", f"{OVERLAY}/metadata.db")):
            try:
                dbs[(side, name)] = bolt_dump(boltcheck, os.path.join(root, rel))
            except RuntimeError as e:
                report.diff(name, side, "a database bbolt opens and tx.Check accepts", str(e))
    ids = {"containerd": {}, "kiln": {}}
    if all((s, "meta.db") in dbs for s in ids):
        norm = {s: normalise_meta(*dbs[(s, "meta.db")], report, s) for s in ids}
        compare_db("meta.db", norm["containerd"], norm["kiln"], report, puller)
        b, k = norm["containerd"]
        report.info("meta.db", "", f"{len(k)} keys in {len(b)} buckets compared")
    if all((s, "metadata.db") in dbs for s in ids):
        norm = {}
        for s in ids:
            b, k, ids[s] = normalise_snapshotter(*dbs[(s, "metadata.db")], report, s)
            norm[s] = (b, k)
        compare_db("metadata.db", norm["containerd"], norm["kiln"], report, puller)
        b, k = norm["containerd"]
        report.info("metadata.db", "", f"{len(k)} keys in {len(b)} buckets compared")
    compare_trees(exp_root, act_root, ids["containerd"], ids["kiln"], report)
    print_report(report, exp_root, act_root, label, verbose)
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"undocumented": report.count("undocumented"), "documented": report.count("documented"),
                       "items": report.items, "documentedReasons": DOCUMENTED}, f, indent=1, default=str)
    return 1 if report.count("undocumented") else 0


def print_report(report, exp_root, act_root, label, verbose=False):
    print(f"expected (real containerd): {exp_root}")
    print(f"actual   ({label}): {act_root}")
    undocumented = [i for i in report.items if i["kind"] == "undocumented"]
    print(f"\nUNDOCUMENTED DIFFERENCES: {len(undocumented)}")
    section = None
    for i in undocumented:
        if i["section"] != section:
            section = i["section"]
            print(f"  [{section}]")
        line = f"    {i['where']}: containerd {i['expected']} | {label} {i['actual']}"
        if i["note"]:
            line += f"  ({i['note']})"
        print(line)
    documented = [i for i in report.items if i["kind"] == "documented"]
    print(f"\ndocumented differences: {len(documented)}")
    for doc in sorted({i["note"] for i in documented}):
        items = [i for i in documented if i["note"] == doc]
        print(f"  {doc} ({len(items)}): {DOCUMENTED[doc]}")
        shown = items if verbose else items[:3]
        for i in shown:
            print(f"    {i['where']}: containerd {i['expected']} | {label} {i['actual']}")
        if len(items) > len(shown):
            print(f"    ... and {len(items) - len(shown)} more (--verbose lists them)")
    infos = [i for i in report.items if i["kind"] == "info"]
    if infos:
        print("\ncompared:")
        for i in infos:
            print(f"  [{i['section']}] {i['note']}")
    verdict = "SAME (up to documented differences)" if not undocumented else "DIFFERENT"
    print(f"\nresult: {verdict}: {len(undocumented)} undocumented, {len(documented)} documented")


def blocks_command(args):
    for path in args:
        written = total = 0
        zero = bytes(BLOCK)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            fd = f.fileno()
            offset = 0
            while offset < size:
                # Skip holes quickly: a hole is unwritten by definition.
                try:
                    data_at = os.lseek(fd, offset, os.SEEK_DATA)
                except OSError:
                    break
                offset = data_at - data_at % BLOCK
                f.seek(offset)
                chunk = f.read(BLOCK)
                if not chunk:
                    break
                if chunk != zero[:len(chunk)]:
                    written += 1
                offset += BLOCK
        total = (size + BLOCK - 1) // BLOCK
        print(path, written, total)
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd, args = argv[1], argv[2:]
    if cmd == "recipe":
        recipe_command(args)
        return 0
    if cmd == "compare":
        return compare_command(args)
    if cmd == "blocks":
        return blocks_command(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
