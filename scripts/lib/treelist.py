"""Lists a directory tree as comparable JSON: one record per path with type, mode, owner, size, content hash,
symlink target, device number, extended attributes, hard-link group and mtime.

Usage: treelist.py ROOT [--ignore NAME]... [--no-mtime-root]
The root itself and lost+found are left out (mkfs and unpackers differ there by design).
"""
import hashlib
import json
import os
import stat
import sys


def main():
    root = sys.argv[1]
    ignore = {"lost+found"}
    args = sys.argv[2:]
    while args:
        if args[0] == "--ignore":
            ignore.add(args[1])
            args = args[2:]
        else:
            args = args[1:]
    records = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in ignore]
        for name in sorted(dirnames + filenames):
            if rel_dir == "." and name in ignore:
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(full)
            rec = {
                "type": stat.S_IFMT(st.st_mode),
                "mode": oct(stat.S_IMODE(st.st_mode)),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime": st.st_mtime_ns,
            }
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                rec["size"] = st.st_size
                rec["sha256"] = h.hexdigest()
            if stat.S_ISLNK(st.st_mode):
                rec["target"] = os.readlink(full)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rec["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            try:
                names = sorted(os.listxattr(full, follow_symlinks=False))
                rec["xattrs"] = {n: os.getxattr(full, n, follow_symlinks=False).hex() for n in names}
            except OSError:
                rec["xattrs"] = {}
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault(st.st_ino, []).append(rel)
                rec["_ino"] = st.st_ino
            records[rel] = rec
    for rel, rec in records.items():
        ino = rec.pop("_ino", None)
        if ino is not None:
            rec["linkGroup"] = sorted(inodes[ino])
    json.dump(records, sys.stdout, sort_keys=True, indent=0)


if __name__ == "__main__":
    main()
