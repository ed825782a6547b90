"""The least any volume holding an image's unpacked layers must store, in 512 KiB blocks.

Usage: unpacked-floor.py OCI-LAYOUT
Reads every layer of the layout's first manifest with Python's tarfile (independent of kiln) and prints
"BLOCKS COMPRESSED-BYTES FILE-BYTES": BLOCKS is the regular files' data rounded up to 4 KiB filesystem blocks
(4 KiB blocks that are all zeros are left out, as a sparse writer may) and expressed in 512 KiB EBS blocks, each
layer on its own as an overlayfs snapshotter keeps them. Metadata (inodes, directories, journal) comes on top,
so no layout can do better than this without compressing file data.
"""
import json
import sys
import tarfile

root = sys.argv[1]
index = json.load(open(f"{root}/index.json"))
manifest = json.load(open(f"{root}/blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
zero = bytes(4096)
fs_blocks = 0
compressed = 0
file_bytes = 0
for layer in manifest["layers"]:
    compressed += layer["size"]
    path = f"{root}/blobs/sha256/" + layer["digest"].split(":")[1]
    with tarfile.open(path, "r:*") as t:
        for m in t:
            if not m.isreg() or m.size == 0:
                continue
            file_bytes += m.size
            f = t.extractfile(m)
            while True:
                b = f.read(4096)
                if not b:
                    break
                if b.ljust(4096, b"\0") != zero:
                    fs_blocks += 1
print((fs_blocks * 4096 + 524287) // 524288, compressed, file_bytes)
