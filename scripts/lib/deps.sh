# Installs the Debian packages a kiln script needs, only when some are missing.
# Usage: source scripts/lib/deps.sh; ensure_packages pkg...

# mkfs.ext4, losetup, sgdisk and friends live in sbin, which a non-login shell may leave out of PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${EUID:-$(id -u)}" != 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Libraries kiln links against.
BUILD_PACKAGES=(pkg-config libarchive-dev libzstd-dev libisal-dev libssl-dev)
# Peers and checkers the tests and benchmarks run.
TEST_PACKAGES=(umoci skopeo zstd pigz curl xz-utils gpgv debian-archive-keyring e2fsprogs fdisk gdisk util-linux jq python3
    golang-go golang-github-coreos-bbolt-dev containerd docker-registry busybox-static zsh fish man-db groff-base
    mount cpio qemu-system-x86 linux-image-cloud-amd64 chromium fonts-dejavu-core python3-jsonschema python3-grpcio python3-cryptography)

# moto (server mode) and botocore for the AWS tests: the stand-in EBS/EC2/STS endpoint and the SigV4 oracle.
# Uses python3 when it already has them (a pip-managed python), else a venv under .build-venv (Debian's python3
# refuses a system-wide pip install). Exports KILN_PYTHON for the tests.
ensure_aws_python() {
    if python3 -c "import moto.server, botocore, boto3, flask" 2>/dev/null; then
        export KILN_PYTHON=python3
        return 0
    fi
    local venv="${KILN_VENV:-$PWD/.build-venv}"
    if ! "$venv/bin/python" -c "import moto.server, botocore, boto3, flask" 2>/dev/null; then
        python3 -m venv "$venv" 2>/dev/null || { ensure_packages python3-venv && python3 -m venv "$venv"; }
        echo "installing moto[server] and boto3 into $venv" >&2
        "$venv/bin/pip" install -q 'moto[server]>=5' boto3
    fi
    export KILN_PYTHON="$venv/bin/python"
}

# containerd 1.7 (Debian trixie) and 2.1 (Debian sid) unpacked under .build-containerd, beside the system's 1.6, for
# the integration tests (scripts/lib/containerd-releases.sh). Exports KILN_CONTAINERD_RELEASES. When the archive
# cannot be reached the tests that need a missing release say so and are skipped.
ensure_containerd_releases() {
    export KILN_CONTAINERD_RELEASES="${KILN_CONTAINERD_RELEASES:-$PWD/.build-containerd}"
    scripts/lib/containerd-releases.sh install "$KILN_CONTAINERD_RELEASES" ||
        echo "warning: containerd 1.7/2.1 not set up in $KILN_CONTAINERD_RELEASES; their integration tests will be skipped" >&2
}
