#!/usr/bin/env bash
# A private containerd, a local registry and loop devices for the integration tests.
#
# Run as a command:   scripts/lib/containerd-env.sh SUBCOMMAND [ARGS]
# Or source it:       source scripts/lib/containerd-env.sh   (functions below; an EXIT trap runs
#                     env_cleanup, unless KILN_ENV_NO_TRAP=1)
#
# Subcommands:
#   check [NEED...]                   exit 0 if every NEED is met, else print "missing: ..." and exit 77.
#                                     NEEDs: root loop overlay containerd runc registry skopeo gpt e2fs
#                                     bbolt (default: all)
#   start-containerd ROOT STATE SOCK  start containerd with root ROOT (must not be /var/lib/containerd),
#                                     state STATE and socket SOCK; waits until it answers. The system's
#                                     containerd, or the release whose bin directory KILN_CONTAINERD_BIN
#                                     names (scripts/lib/containerd-releases.sh): its containerd, shims
#                                     and ctr are used, with the system's runc
#   stop-containerd                   stop it (and any shim it left) and wait until it is gone
#   ctr ARGS...                       ctr against the running private containerd (`run` gets
#                                     --fifo-dir in the state directory unless given one)
#   start-registry PORT DATADIR       docker-registry on 127.0.0.1:PORT storing in DATADIR; access log
#                                     in $KILN_ENV_DIR/registry.log
#   stop-registry
#   push-fixtures PORT                skopeo copy app:v1 (all platforms) and tools:1.0 from
#                                     fixtures/example-oci to 127.0.0.1:PORT/app:v1, /tools:1.0
#   push SOURCE PORT REPO:TAG         skopeo copy one image source (oci:DIR:REF, oci-archive:, docker-archive:)
#   blob-gets [SINCE-LINE]            count blob GET requests in the registry access log (after line N)
#   log-lines                         number of lines in the registry access log so far
#   loop-attach IMAGE [ro]            attach IMAGE (losetup -P); print the partition device for a GPT disk
#                                     with one partition, or the loop device for a bare filesystem
#   loop-detach [DEVICE]              detach DEVICE's loop device (default: every one attached here)
#   mount-volume IMAGE DIR [ro]       loop-attach and mount the ext4 filesystem at DIR
#   unmount-volume DIR                unmount DIR and detach its loop device
#   free-port                         print a free TCP port on 127.0.0.1
#   hosts-dir                         print the hosts directory (certs.d) the private containerd uses
#   cleanup                           stop and undo everything recorded in $KILN_ENV_DIR
#
# State lives in $KILN_ENV_DIR (default /tmp/kiln-containerd-env): pid files, the generated
# config.toml, logs, the hosts directory and the list of loop devices and mounts. Nothing
# outlives its owner: every daemon runs under `timeout` ($KILN_ENV_LIFETIME seconds, default
# 900), and when $KILN_ENV_OWNER_PID is set a watchdog runs `cleanup` as soon as that process
# exits. containerd runs in its own mount namespace with a tmpfs over /run, because containerd
# 1.6 puts shim sockets under /run/containerd/s whatever its state directory is; so neither the
# system's /run/containerd nor /var/lib/containerd is touched. Everything binds 127.0.0.1 only.
#
# Environment: KILN_ENV_DIR, KILN_ENV_LIFETIME, KILN_ENV_OWNER_PID, KILN_ENV_REMOVE (a scratch directory
# the watchdog deletes after cleanup when the owner has died), KILN_REGISTRY_MIRRORS (hosts
# served by the local registry as a mirror, default "registry.example.com"), KILN_SANDBOX_IMAGE
# (CRI sandbox_image, default registry.example.com/pause:3.9), KILN_DISCARD_UNPACKED_LAYERS (CRI
# discard_unpacked_layers, default false), KILN_ROOT (package root), KILN_CONTAINERD_BIN (a containerd
# release's bin directory; default: the system's).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
fi

KILN_ENV_DIR="${KILN_ENV_DIR:-/tmp/kiln-containerd-env}"
KILN_ENV_LIFETIME="${KILN_ENV_LIFETIME:-900}"
KILN_REGISTRY_MIRRORS="${KILN_REGISTRY_MIRRORS:-registry.example.com}"
KILN_SANDBOX_IMAGE="${KILN_SANDBOX_IMAGE:-registry.example.com/pause:3.9}"
KILN_ENV_SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
KILN_ROOT="${KILN_ROOT:-$(cd "$(dirname "$KILN_ENV_SELF")/../.." && pwd)}"

env_log() { printf 'containerd-env: %s\n' "$*" >&2; }
env_die() {
	env_log "$*"
	return 1
}

env_init_dir() {
	mkdir -p "$KILN_ENV_DIR"
	chmod 0700 "$KILN_ENV_DIR"
	touch "$KILN_ENV_DIR/loops" "$KILN_ENV_DIR/mounts"
}

# --- requirements -------------------------------------------------------------

# Prints what is missing for each NEED (one line each); prints nothing when all are met.
env_missing() {
	local need
	local -a needs=("$@")
	[ ${#needs[@]} -gt 0 ] || needs=(root loop overlay containerd runc registry skopeo gpt e2fs bbolt)
	for need in "${needs[@]}"; do
		case "$need" in
		root) [ "${EUID:-$(stat -c %u /proc/self)}" = 0 ] || echo "root (effective uid is ${EUID:-?})" ;;
		loop)
			if [ ! -e /dev/loop-control ]; then
				echo "loop devices (no /dev/loop-control)"
			elif ! command -v losetup >/dev/null; then
				echo "losetup (Debian package util-linux)"
			elif ! losetup -f >/dev/null 2>&1; then
				echo "a free loop device (losetup -f failed)"
			fi
			;;
		overlay)
			if [ "${EUID:-1}" != 0 ]; then
				echo "an overlayfs mount (not tried without root)"
			elif ! env_overlay_works; then
				echo "an overlayfs mount (mount -t overlay failed)"
			fi
			;;
		containerd) command -v containerd >/dev/null && command -v ctr >/dev/null ||
			echo "containerd and ctr (Debian package containerd)" ;;
		runc) command -v runc >/dev/null || echo "runc (Debian package runc)" ;;
		registry) command -v docker-registry >/dev/null || echo "docker-registry (Debian package docker-registry)" ;;
		skopeo) command -v skopeo >/dev/null || echo "skopeo (Debian package skopeo)" ;;
		gpt) command -v sgdisk >/dev/null || echo "sgdisk (Debian package gdisk)" ;;
		e2fs) command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null && command -v debugfs >/dev/null ||
			echo "mkfs.ext4, e2fsck, debugfs (Debian package e2fsprogs)" ;;
		bbolt) command -v go >/dev/null && [ -d /usr/share/gocode/src/go.etcd.io/bbolt ] ||
			echo "go and bbolt (Debian packages golang-go golang-github-coreos-bbolt-dev)" ;;
		*) echo "unknown requirement $need" ;;
		esac
	done
}

# A real overlay mount, as the snapshotter makes for every container.
env_overlay_works() {
	[ "${EUID:-1}" = 0 ] || return 1
	grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null || return 1
	local t ok=1
	t=$(mktemp -d /tmp/kiln-overlay-probe.XXXXXX) || return 1
	mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
	if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
		ok=0
		umount "$t/m" 2>/dev/null || umount -l "$t/m" 2>/dev/null || true
	fi
	rm -rf "$t"
	return $ok
}

env_check() {
	local missing
	missing=$(env_missing "$@") || true
	if [ -n "$missing" ]; then
		echo "missing: $(echo "$missing" | paste -sd ';' | sed 's/;/; /g')"
		return 77
	fi
	return 0
}

# --- watchdog -----------------------------------------------------------------

# Closes every inherited descriptor but stdin, stdout, stderr and bash's own script descriptor. A
# daemon must not keep its caller's descriptors: a caller that waits for a pipe or socket to reach
# end-of-file (Foundation's Process does, for the child's exit) would wait for the daemon instead.
env_close_fds() {
	local fd
	for fd in /proc/self/fd/*; do
		fd="${fd##*/}"
		case "$fd" in 0 | 1 | 2 | 255) continue ;; esac
		eval "exec $fd>&-" 2>/dev/null || true
	done
}

# When KILN_ENV_OWNER_PID is set, starts (once per state directory) a watchdog that runs
# `cleanup` when the owner exits or the lifetime is over.
env_watchdog() {
	local owner="${KILN_ENV_OWNER_PID:-}"
	[ -n "$owner" ] || return 0
	local pidfile="$KILN_ENV_DIR/watchdog.pid"
	if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		return 0
	fi
	local deadline=$((SECONDS + KILN_ENV_LIFETIME))
	(
		env_close_fds
		trap '' HUP
		while kill -0 "$owner" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
		rm -f "$pidfile"
		KILN_ENV_OWNER_PID="" "$KILN_ENV_SELF" cleanup
		# The owner's scratch directory goes too, unless something is still mounted below it.
		if [ -n "${KILN_ENV_REMOVE:-}" ] && [ -d "$KILN_ENV_REMOVE" ] && ! kill -0 "$owner" 2>/dev/null &&
			! awk '{print $2}' /proc/mounts | grep -q "^$KILN_ENV_REMOVE\(/\|$\)"; then
			rm -rf --one-file-system "$KILN_ENV_REMOVE"
		fi
	) </dev/null >>"$KILN_ENV_DIR/watchdog.log" 2>&1 &
	echo $! >"$pidfile"
	disown $! 2>/dev/null || true
}

# --- process helpers ----------------------------------------------------------

env_pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Stops the process in PIDFILE and its process group (daemons run under `setsid timeout`, so the group
# is the wrapper and the daemon): TERM, then KILL after WAIT seconds.
env_stop_pidfile() {
	local pidfile="$1" wait="${2:-15}" pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if env_pid_alive "$pid" || env_group_alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < wait * 10; i++)); do
			env_pid_alive "$pid" || env_group_alive "$pid" || break
			sleep 0.1
		done
		if env_pid_alive "$pid" || env_group_alive "$pid"; then
			env_log "pid $pid did not stop after ${wait}s, killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	rm -f "$pidfile"
}

# Whether any process is left in process group PGID.
env_group_alive() { [ -n "${1:-}" ] && kill -0 -- "-$1" 2>/dev/null; }

# Pids of processes whose command line names our containerd socket (the shims containerd started).
env_shim_pids() {
	local sock="$1" p
	[ -n "$sock" ] || return 0
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "containerd-shim.* -address $sock\( \|$\)"; then
			echo "${p#/proc/}"
		fi
	done
}

# --- containerd ----------------------------------------------------------------

env_write_hosts() {
	local port="$1" dir="$KILN_ENV_DIR/certs.d" host
	mkdir -p "$dir/127.0.0.1:$port"
	cat >"$dir/127.0.0.1:$port/hosts.toml" <<EOF
server = "http://127.0.0.1:$port"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
EOF
	# The mirrored names' server is the local registry too: containerd falls back to the server when a
	# mirror fails, and nothing may go to the real host.
	for host in $KILN_REGISTRY_MIRRORS; do
		mkdir -p "$dir/$host"
		cat >"$dir/$host/hosts.toml" <<EOF
server = "http://127.0.0.1:$port"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
	done
}

env_write_containerd_config() {
	local root="$1" state="$2" sock="$3" config="$4"
	local d="$KILN_ENV_DIR"
	mkdir -p "$d/certs.d" "$d/cni/net.d" "$d/cni/bin" "$d/opt"
	cat >"$config" <<EOF
# Generated by containerd-env.sh for a private containerd; see that script.
version = 2
root = "$root"
state = "$state"
# btrfs, zfs, devmapper and aufs need storage this machine does not have.
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "$sock"

[ttrpc]
  address = ""

# Debug level: the log then records each garbage collection ("garbage collected"), which tests wait for.
[debug]
  address = ""
  level = "trace"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"

  [plugins."io.containerd.gc.v1.scheduler"]
    startup_delay = "100ms"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$KILN_SANDBOX_IMAGE"
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      discard_unpacked_layers = ${KILN_DISCARD_UNPACKED_LAYERS:-false}

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$d/cni/bin"
      conf_dir = "$d/cni/net.d"

    # hosts.toml per registry: 127.0.0.1:PORT and the mirrored names, over plain http.
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$d/certs.d"
EOF
}

# start-containerd ROOT STATE SOCK
env_start_containerd() {
	[ $# -eq 3 ] || env_die "usage: start-containerd ROOTDIR STATEDIR SOCKET" || return 2
	local root="$1" state="$2" sock="$3"
	env_init_dir
	root=$(realpath -m "$root")
	state=$(realpath -m "$state")
	sock=$(realpath -m "$sock")
	case "$root" in /var/lib/containerd | /var/lib/containerd/*) env_die "refusing the system containerd root $root" || return 2 ;; esac
	case "$state" in /run/containerd | /run/containerd/* | /var/run/containerd | /var/run/containerd/*)
		env_die "refusing the system containerd state $state" || return 2 ;;
	esac
	case "$sock" in /run/* | /var/run/*) env_die "socket $sock would be hidden by the private /run" || return 2 ;; esac
	if [ -s "$KILN_ENV_DIR/containerd.pid" ] && env_pid_alive "$(cat "$KILN_ENV_DIR/containerd.pid")"; then
		env_die "a containerd from $KILN_ENV_DIR is already running" || return 1
	fi
	local missing
	missing=$(env_missing root containerd) || true
	[ -z "$missing" ] || env_die "missing: $missing" || return 77
	mkdir -p "$root" "$state" "$(dirname "$sock")" "$KILN_ENV_DIR/fifo"
	rm -f "$sock"
	local port=""
	[ -s "$KILN_ENV_DIR/registry.port" ] && port=$(cat "$KILN_ENV_DIR/registry.port")
	port="${KILN_REGISTRY_PORT:-$port}"
	[ -z "$port" ] || env_write_hosts "$port"
	local config="$KILN_ENV_DIR/containerd.toml"
	env_write_containerd_config "$root" "$state" "$sock" "$config"
	local bin="${KILN_CONTAINERD_BIN:-}"
	if [ -n "$bin" ]; then
		bin=$(realpath -m "$bin")
		[ -x "$bin/containerd" ] && [ -x "$bin/ctr" ] || env_die "no containerd and ctr in $bin" || return 77
	fi
	echo "$sock" >"$KILN_ENV_DIR/containerd.sock.path"
	echo "$root" >"$KILN_ENV_DIR/containerd.root"
	echo "$bin" >"$KILN_ENV_DIR/containerd.bin"
	env_watchdog
	# A private mount namespace: mounts containerd makes stay there, and a tmpfs over /run
	# catches the shim sockets (/run/containerd/s) and the default runc root.
	# A release's own shims come first on PATH: containerd starts `containerd-shim-runc-v2` from there.
	local path="$PATH"
	[ -z "$bin" ] || path="$bin:$PATH"
	(
		env_close_fds
		export PATH="$path"
		exec setsid timeout -k 10 "$KILN_ENV_LIFETIME" \
			unshare --mount --propagation private -- \
			/bin/sh -c 'mount -t tmpfs -o mode=0755,size=64m kiln-run /run && exec containerd --config "$1"' \
			sh "$config"
	) </dev/null >>"$KILN_ENV_DIR/containerd.log" 2>&1 &
	echo $! >"$KILN_ENV_DIR/containerd.pid"
	local i
	for ((i = 0; i < 300; i++)); do
		if [ -S "$sock" ] && "${bin:+$bin/}ctr" --address "$sock" --timeout 2s version >/dev/null 2>&1; then
			return 0
		fi
		if ! env_pid_alive "$(cat "$KILN_ENV_DIR/containerd.pid")"; then
			env_log "containerd exited during startup; last log lines:"
			tail -n 20 "$KILN_ENV_DIR/containerd.log" >&2
			rm -f "$KILN_ENV_DIR/containerd.pid"
			return 1
		fi
		sleep 0.1
	done
	env_log "containerd did not answer on $sock within 30s; last log lines:"
	tail -n 20 "$KILN_ENV_DIR/containerd.log" >&2
	env_stop_containerd
	return 1
}

env_stop_containerd() {
	local sock="" pid i
	[ -s "$KILN_ENV_DIR/containerd.sock.path" ] && sock=$(cat "$KILN_ENV_DIR/containerd.sock.path")
	env_stop_pidfile "$KILN_ENV_DIR/containerd.pid" 20
	# Shims outlive containerd on purpose; ours must not outlive the test.
	for pid in $(env_shim_pids "$sock"); do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		[ -z "$(env_shim_pids "$sock")" ] && break
		sleep 0.1
	done
	for pid in $(env_shim_pids "$sock"); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	[ -z "$sock" ] || rm -f "$sock" "$sock.ttrpc"
	rm -f "$KILN_ENV_DIR/containerd.sock.path"
	return 0
}

env_ctr() {
	local sock
	[ -s "$KILN_ENV_DIR/containerd.sock.path" ] || env_die "no private containerd is running (state $KILN_ENV_DIR)" || return 1
	sock=$(cat "$KILN_ENV_DIR/containerd.sock.path")
	# `ctr run` makes its stdio FIFOs in the caller's /run/containerd/fifo by default, which the shim
	# (behind the private /run) cannot see: put them in the state directory instead.
	local -a args=()
	local a injected=0
	for a in "$@"; do
		args+=("$a")
		if [ "$injected" = 0 ] && [ "$a" = run ]; then
			case " $* " in *" --fifo-dir "* | *" --fifo-dir="*) ;; *) args+=(--fifo-dir "$KILN_ENV_DIR/fifo") ;; esac
			injected=1
		fi
	done
	mkdir -p "$KILN_ENV_DIR/fifo"
	local bin=""
	[ -s "$KILN_ENV_DIR/containerd.bin" ] && bin=$(cat "$KILN_ENV_DIR/containerd.bin")
	"${bin:+$bin/}ctr" --address "$sock" "${args[@]}"
}

# --- registry -----------------------------------------------------------------

env_start_registry() {
	[ $# -eq 2 ] || env_die "usage: start-registry PORT DATADIR" || return 2
	local port="$1" data="$2"
	env_init_dir
	command -v docker-registry >/dev/null || env_die "missing: docker-registry (Debian package docker-registry)" || return 77
	if [ -s "$KILN_ENV_DIR/registry.pid" ] && env_pid_alive "$(cat "$KILN_ENV_DIR/registry.pid")"; then
		env_die "a registry from $KILN_ENV_DIR is already running" || return 1
	fi
	mkdir -p "$data"
	data=$(realpath "$data")
	cat >"$KILN_ENV_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
EOF
	echo "$port" >"$KILN_ENV_DIR/registry.port"
	env_write_hosts "$port"
	env_watchdog
	: >"$KILN_ENV_DIR/registry.log"
	(
		env_close_fds
		exec setsid timeout -k 5 "$KILN_ENV_LIFETIME" docker-registry serve "$KILN_ENV_DIR/registry.yml"
	) </dev/null >>"$KILN_ENV_DIR/registry.log" 2>&1 &
	echo $! >"$KILN_ENV_DIR/registry.pid"
	local i
	for ((i = 0; i < 200; i++)); do
		if curl -fsS --max-time 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
			return 0
		fi
		if ! env_pid_alive "$(cat "$KILN_ENV_DIR/registry.pid")"; then
			env_log "docker-registry exited during startup; last log lines:"
			tail -n 20 "$KILN_ENV_DIR/registry.log" >&2
			rm -f "$KILN_ENV_DIR/registry.pid"
			return 1
		fi
		sleep 0.1
	done
	env_log "docker-registry did not answer on 127.0.0.1:$port within 20s"
	env_stop_registry
	return 1
}

env_stop_registry() {
	env_stop_pidfile "$KILN_ENV_DIR/registry.pid" 10
}

# push SOURCE PORT REPO:TAG: copies one image source into the local registry, digests unchanged.
env_push() {
	[ $# -eq 3 ] || env_die "usage: push SOURCE PORT REPO:TAG" || return 2
	local source="$1" port="$2" dest="$3"
	# --all copies an index whole and --preserve-digests refuses any conversion, so the registry serves
	# exactly the index, manifests and blobs a recipe bakes. Relative paths are from the package root.
	(cd "$KILN_ROOT" && timeout 120 skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
		"$source" "docker://127.0.0.1:$port/$dest")
}

env_push_fixtures() {
	[ $# -eq 1 ] || env_die "usage: push-fixtures PORT" || return 2
	local port="$1" layout="$KILN_ROOT/fixtures/example-oci"
	env_push "oci:$layout:app:v1" "$port" app:v1
	env_push "oci:$layout:tools:1.0" "$port" tools:1.0
}

env_log_lines() {
	[ -f "$KILN_ENV_DIR/registry.log" ] || {
		echo 0
		return 0
	}
	wc -l <"$KILN_ENV_DIR/registry.log" | tr -d ' '
}

# blob-gets [SINCE]: blob GET requests answered by the registry after access-log line SINCE.
env_blob_gets() {
	local since="${1:-0}"
	[ -f "$KILN_ENV_DIR/registry.log" ] || {
		echo 0
		return 0
	}
	tail -n "+$((since + 1))" "$KILN_ENV_DIR/registry.log" | grep -cE '"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64} HTTP' || true
}

# --- loop devices and mounts ------------------------------------------------------

# loop-attach IMAGE [ro]: prints the device holding the filesystem.
env_loop_attach() {
	[ $# -ge 1 ] || env_die "usage: loop-attach IMAGE [ro]" || return 2
	local image="$1" ro=() dev pttype parts i
	[ "${2:-}" = ro ] && ro=(--read-only)
	env_init_dir
	[ -f "$image" ] || env_die "no such image file: $image" || return 2
	env_watchdog
	dev=$(losetup --find --show --partscan "${ro[@]}" "$image") || env_die "losetup failed for $image" || return 1
	echo "$dev" >>"$KILN_ENV_DIR/loops"
	pttype=$(blkid -p -o value -s PTTYPE "$dev" 2>/dev/null || true)
	if [ -z "$pttype" ]; then
		echo "$dev"
		return 0
	fi
	# The kernel scans the table itself (losetup -P); a kernel without that table type leaves
	# no partitions, so then add them from userspace (partx reads the table with libblkid).
	for ((i = 0; i < 20; i++)); do
		parts=$(env_partitions "$dev")
		[ -n "$parts" ] && break
		[ "$i" = 5 ] && partx -a "$dev" 2>/dev/null || true
		sleep 0.1
	done
	[ -n "$parts" ] || env_die "$image has a $pttype partition table but no partition appeared on $dev" || return 1
	if [ "$(echo "$parts" | wc -l)" -ne 1 ]; then
		env_die "$image has $(echo "$parts" | wc -l) partitions; expected one" || return 1
	fi
	for ((i = 0; i < 30; i++)); do
		[ -b "$parts" ] && break
		sleep 0.1
	done
	[ -b "$parts" ] || env_die "partition device $parts did not appear" || return 1
	echo "$parts"
}

# Partition device paths of a loop device, from sysfs.
env_partitions() {
	local dev="$1" b p
	b=$(basename "$dev")
	for p in /sys/block/"$b"/"$b"p[0-9]*; do
		[ -e "$p" ] && echo "/dev/$(basename "$p")"
	done
	return 0
}

# The loop device behind a partition device (/dev/loop3p1 -> /dev/loop3).
env_loop_of() {
	local dev="$1"
	case "$dev" in /dev/loop[0-9]*p[0-9]*) echo "${dev%p[0-9]*}" ;; *) echo "$dev" ;; esac
}

env_loop_detach() {
	local target="${1:-}" dev keep=()
	env_init_dir
	if [ -n "$target" ]; then
		dev=$(env_loop_of "$target")
		losetup -d "$dev" 2>/dev/null || env_log "could not detach $dev"
		grep -vxF "$dev" "$KILN_ENV_DIR/loops" >"$KILN_ENV_DIR/loops.new" || true
		mv "$KILN_ENV_DIR/loops.new" "$KILN_ENV_DIR/loops"
		return 0
	fi
	while read -r dev; do
		[ -n "$dev" ] || continue
		if losetup "$dev" >/dev/null 2>&1; then
			losetup -d "$dev" 2>/dev/null || {
				env_log "could not detach $dev"
				keep+=("$dev")
			}
		fi
	done <"$KILN_ENV_DIR/loops"
	printf '%s\n' "${keep[@]}" | sed '/^$/d' >"$KILN_ENV_DIR/loops"
}

# mount-volume IMAGE DIR [ro]: the data partition (or bare filesystem) of IMAGE at DIR.
env_mount_volume() {
	[ $# -ge 2 ] || env_die "usage: mount-volume IMAGE DIR [ro]" || return 2
	local image="$1" dir="$2" mode="${3:-rw}" dev opts
	dev=$(env_loop_attach "$image" "$mode") || return 1
	mkdir -p "$dir"
	dir=$(realpath "$dir")
	# As Bottlerocket mounts the data partition (/local): nosuid,nodev,noatime. Read-only mounts must
	# not replay the journal either, so the image file stays byte for byte as it was.
	opts="nosuid,nodev,noatime"
	[ "$mode" = ro ] && opts="ro,noload,$opts"
	if ! mount -t ext4 -o "$opts" "$dev" "$dir"; then
		env_loop_detach "$dev"
		env_die "mount of $dev ($image) at $dir failed" || return 1
	fi
	echo "$dir $dev" >>"$KILN_ENV_DIR/mounts"
	echo "$dev"
}

env_unmount_volume() {
	[ $# -eq 1 ] || env_die "usage: unmount-volume DIR" || return 2
	local dir dev i
	dir=$(realpath -m "$1")
	dev=$(awk -v d="$dir" '$1 == d {print $2}' "$KILN_ENV_DIR/mounts" | tail -n 1)
	if mountpoint -q "$dir"; then
		for ((i = 0; i < 50; i++)); do
			umount "$dir" 2>/dev/null && break
			sleep 0.1
		done
		if mountpoint -q "$dir"; then
			env_log "$dir is busy; detaching it lazily"
			umount -l "$dir" || true
		fi
	fi
	awk -v d="$dir" '$1 != d' "$KILN_ENV_DIR/mounts" >"$KILN_ENV_DIR/mounts.new" || true
	mv "$KILN_ENV_DIR/mounts.new" "$KILN_ENV_DIR/mounts"
	[ -z "$dev" ] || env_loop_detach "$dev"
}

env_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

env_cleanup() {
	[ -d "$KILN_ENV_DIR" ] || return 0
	local dir dev
	env_stop_containerd
	env_stop_registry
	if [ -f "$KILN_ENV_DIR/mounts" ]; then
		tac "$KILN_ENV_DIR/mounts" | while read -r dir dev; do
			[ -n "$dir" ] || continue
			env_unmount_volume "$dir" || true
		done
	fi
	[ -f "$KILN_ENV_DIR/loops" ] && env_loop_detach
	# The watchdog removes its pid file before it calls cleanup, so this stops it only when
	# cleanup runs from elsewhere.
	if [ -s "$KILN_ENV_DIR/watchdog.pid" ]; then
		local w
		w=$(cat "$KILN_ENV_DIR/watchdog.pid")
		rm -f "$KILN_ENV_DIR/watchdog.pid"
		kill "$w" 2>/dev/null || true
	fi
	return 0
}

env_main() {
	local cmd="${1:-}"
	[ $# -gt 0 ] && shift
	case "$cmd" in
	check) env_check "$@" ;;
	start-containerd) env_start_containerd "$@" ;;
	stop-containerd) env_stop_containerd ;;
	ctr) env_ctr "$@" ;;
	start-registry) env_start_registry "$@" ;;
	stop-registry) env_stop_registry ;;
	push-fixtures) env_push_fixtures "$@" ;;
	push) env_push "$@" ;;
	blob-gets) env_blob_gets "$@" ;;
	log-lines) env_log_lines ;;
	loop-attach) env_loop_attach "$@" ;;
	loop-detach) env_loop_detach "$@" ;;
	mount-volume) env_mount_volume "$@" ;;
	unmount-volume) env_unmount_volume "$@" ;;
	free-port) env_free_port ;;
	hosts-dir) echo "$KILN_ENV_DIR/certs.d" ;;
	cleanup) env_cleanup ;;
	-h | --help | help | "") sed -n '2,/^$/p' "$KILN_ENV_SELF" | sed 's/^# \{0,1\}//' ;;
	*)
		env_log "unknown subcommand $cmd (see --help)"
		return 2
		;;
	esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	env_main "$@"
else
	# Sourced: the sourcing shell owns what it starts.
	if [ "${KILN_ENV_NO_TRAP:-0}" != 1 ]; then
		trap 'env_cleanup' EXIT
	fi
fi
