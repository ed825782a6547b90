"""Builds a small OCI image layout from layer tars, for tests that need crafted (even hostile) layers.

Usage: mklayout.py LAYOUT TAG [--gzip] LAYER.tar...
Each layer tar is stored as given (or gzip-compressed with --gzip); config and manifest are written with
correct digests, so only the layer contents are unusual.
"""
import gzip
import hashlib
import json
import os
import sys


def put(root, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return f"sha256:{d}", len(data)


def main():
    root, tag = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    compress = "--gzip" in args
    layers = [a for a in args if a != "--gzip"]
    os.makedirs(root, exist_ok=True)
    with open(f"{root}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    diff_ids, descs = [], []
    for path in layers:
        raw = open(path, "rb").read()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, mtime=0) if compress else raw
        d, n = put(root, blob)
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descs.append({"mediaType": mt, "digest": d, "size": n})
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "config": {"Cmd": ["/bin/sh"]}}
    cd, cn = put(root, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = put(root, json.dumps(manifest, sort_keys=True).encode())
    index_path = f"{root}/index.json"
    index = json.load(open(index_path)) if os.path.exists(index_path) else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(index_path, "w") as f:
        json.dump(index, f, sort_keys=True)


if __name__ == "__main__":
    main()
