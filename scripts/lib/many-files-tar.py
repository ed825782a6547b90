"""Writes a tar of many small files, for the entries benchmark: DIRS directories of FILES files each.

Usage: many-files-tar.py OUT.tar DIRS FILES
Sizes vary from 40 to 900 bytes; contents are deterministic.
"""
import io
import sys
import tarfile

out, dirs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for d in range(dirs):
        info = tarfile.TarInfo(f"srv/d{d:04}")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        t.addfile(info)
        for f in range(files):
            data = (b"%d/%d " % (d, f)) * (5 + (d * 7 + f) % 80)
            info = tarfile.TarInfo(f"srv/d{d:04}/f{f:04}.py")
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
