#!/usr/bin/env bash
# Populates a data volume the way nodes do today: mkfs.ext4, loop mount, a private containerd pulls REF from the
# local registry started by containerd-env.sh, then stop, sync and unmount. The peer of `kiln bake` in
# scripts/bench.
#
#   containerd-pull-volume.sh IMAGE SIZE REF
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export KILN_ENV_NO_TRAP=1
source "$here/containerd-env.sh"
image=$1 size=$2 ref=$3
rm -f "$image"
truncate -s "$size" "$image"
mkfs.ext4 -q -F -m 0 "$image"
mnt=$(mktemp -d /tmp/kiln-pull-XXXXXX)
cleanup() {
    env_stop_containerd >/dev/null 2>&1 || true
    env_unmount_volume "$mnt" >/dev/null 2>&1 || true
    rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
env_mount_volume "$image" "$mnt" >/dev/null
env_start_containerd "$mnt/var/lib/containerd" "$KILN_ENV_DIR/pull-state" "$KILN_ENV_DIR/pull-state/containerd.sock"
timeout 600 ctr --address "$KILN_ENV_DIR/pull-state/containerd.sock" -n k8s.io images pull \
    --hosts-dir "$KILN_ENV_DIR/certs.d" --platform linux/amd64 --label io.cri-containerd.image=managed "$ref" >/dev/null
env_stop_containerd >/dev/null
sync
env_unmount_volume "$mnt" >/dev/null
rmdir "$mnt"
trap - EXIT
