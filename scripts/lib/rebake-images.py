"""Builds the OCI layout the incremental-bake tests and `scripts/bench rebake` bake, from seeded random data.

Usage: rebake-images.py LAYOUT BASE_MB APP_MB

Layers (uncompressed tars, all times 0):
  base    BASE_MB of model-like shards plus 200 small files, what a large base image holds
  base2   the same layer after an update: 5 small files rewritten and a new 10 MB file
  app1    an APP_MB application layer
  app2    the same files with new contents (the next release of the application)
  tools   a second image's own layer (APP_MB / 2)

Tags:
  v1         base + app1
  v2-top     base + app2      (the top layer changed)
  v2-bottom  base2 + app1     (the bottom layer changed)
  tools      base + tools     (a second image that shares the base)
"""
import io
import os
import random
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    tar.addfile(info)


def layer(path, files):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({os.path.dirname(n) for n, _ in files})
        seen = set()
        for d in dirs:
            parts = d.split("/")
            for i in range(1, len(parts) + 1):
                p = "/".join(parts[:i])
                if p not in seen:
                    seen.add(p)
                    add_dir(tar, p)
        for name, data in files:
            add(tar, name, data)


def noise(rng, n):
    """n seeded random bytes (randbytes takes at most 256 MiB at once)."""
    chunk = 64 << 20
    return b"".join(rng.randbytes(min(chunk, n - at)) for at in range(0, n, chunk))


def main():
    root, base_mb, app_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(root, exist_ok=True)
    work = root + ".layers"
    os.makedirs(work, exist_ok=True)
    rng = random.Random(1)
    mb = 1 << 20
    shards = [("opt/model/shard-%d.bin" % i, noise(rng, base_mb * mb // 4)) for i in range(4)]
    small = [("usr/lib/base/file-%03d.so" % i, rng.randbytes(rng.randint(2000, 60000))) for i in range(200)]
    layer(work + "/base.tar", shards + small)
    updated = list(small)
    for i in (3, 50, 97, 150, 199):
        updated[i] = (updated[i][0], rng.randbytes(len(updated[i][1])))
    layer(work + "/base2.tar", shards + updated + [("usr/lib/base/new-10m.so", noise(rng, 10 * mb))])
    app = [("srv/app/app.bin", app_mb * mb * 9 // 10), ("srv/app/assets.pak", app_mb * mb // 10)]
    layer(work + "/app1.tar", [(n, noise(rng, size)) for n, size in app] + [("srv/app/VERSION", b"1\n")])
    layer(work + "/app2.tar", [(n, noise(rng, size)) for n, size in app] + [("srv/app/VERSION", b"2\n")])
    layer(work + "/tools.tar", [("opt/tools/tool.bin", noise(rng, app_mb * mb // 2))])
    mk = [sys.executable, os.path.join(HERE, "mklayout.py"), root]
    for tag, layers in [("v1", ["base", "app1"]), ("v2-top", ["base", "app2"]), ("v2-bottom", ["base2", "app1"]),
                        ("tools", ["base", "tools"])]:
        subprocess.run(mk + [tag] + ["%s/%s.tar" % (work, l) for l in layers], check=True)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)


if __name__ == "__main__":
    main()
