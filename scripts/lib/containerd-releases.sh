#!/usr/bin/env bash
# Newer containerd releases for the integration tests, beside the system's containerd 1.6 (Debian 12).
#
#   scripts/lib/containerd-releases.sh install DIR [SERIES...]   SERIES: 1.7 (Debian trixie), 2.1 (Debian sid)
#   scripts/lib/containerd-releases.sh bin DIR SERIES            print SERIES' bin directory, exit 1 if absent
#
# `install` takes each series' containerd .deb from deb.debian.org and unpacks it (dpkg -x) into DIR/SERIES;
# nothing is installed over the system's packages, and the system's runc is used. Every download is checked:
# the suite's InRelease against Debian's archive keyring (gpgv), the Packages index against InRelease's
# SHA256, the .deb against the index's SHA256. A series already unpacked (DIR/SERIES/VERSION matches the
# archive's) is left as it is; offline, an unpacked series is kept and a missing one is an error.
set -euo pipefail

MIRROR="${KILN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING="${KILN_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"

log() { printf 'containerd-releases: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# The suites a series is looked for in, first match wins.
suites_of() {
	case "$1" in
	1.7) echo "trixie" ;;
	2.1) echo "sid forky experimental" ;;
	*) return 1 ;;
	esac
}

fetch() { curl -fsS --retry 3 --connect-timeout 20 --max-time 600 -o "$2" "$1"; }

# Prints "VERSION FILENAME SHA256" of the newest containerd of SERIES in SUITE, or nothing.
lookup() {
	local series="$1" suite="$2" work="$3" arch
	arch=$(dpkg --print-architecture)
	fetch "$MIRROR/dists/$suite/InRelease" "$work/$suite.InRelease" || return 0
	gpgv --quiet --keyring "$KEYRING" --output "$work/$suite.Release" "$work/$suite.InRelease" 2>"$work/gpgv.log" ||
		die "the InRelease of $suite does not verify against $KEYRING: $(tail -n 2 "$work/gpgv.log")"
	local want
	want=$(awk -v f="main/binary-$arch/Packages.xz" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 }
		s && $3 == f { print $1 }' "$work/$suite.Release")
	[ -n "$want" ] || die "the Release of $suite lists no main/binary-$arch/Packages.xz"
	fetch "$MIRROR/dists/$suite/main/binary-$arch/Packages.xz" "$work/$suite.Packages.xz" ||
		die "could not fetch the Packages index of $suite"
	echo "$want  $work/$suite.Packages.xz" | sha256sum --quiet -c - ||
		die "the Packages index of $suite does not match its Release's SHA256"
	xz -dc "$work/$suite.Packages.xz" | awk -v series="$series." '
		/^Package: / { p = ($2 == "containerd"); v = f = h = "" }
		p && /^Version: / { v = $2 }
		p && /^Filename: / { f = $2 }
		p && /^SHA256: / { h = $2 }
		p && /^$/ { if (index(v, series) == 1) print v, f, h; p = 0 }
		END { if (p && index(v, series) == 1) print v, f, h }' | sort -V | tail -n 1
}

install_series() {
	local dir="$1" series="$2" work suite found="" version file sha
	suites_of "$series" >/dev/null || die "unknown series $series (known: 1.7 2.1)"
	work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-containerd-releases.XXXXXX")
	trap 'rm -rf "$work"' RETURN
	for suite in $(suites_of "$series"); do
		found=$(lookup "$series" "$suite" "$work")
		[ -z "$found" ] || break
	done
	if [ -z "$found" ]; then
		if [ -x "$dir/$series/usr/bin/containerd" ]; then
			log "containerd $series: the archive could not be read, keeping $(cat "$dir/$series/VERSION" 2>/dev/null)"
			return 0
		fi
		die "no containerd $series.* in $(suites_of "$series") at $MIRROR"
	fi
	read -r version file sha <<<"$found"
	if [ -x "$dir/$series/usr/bin/containerd" ] && [ "$(cat "$dir/$series/VERSION" 2>/dev/null)" = "$version" ]; then
		return 0
	fi
	log "containerd $series: $version from $suite"
	fetch "$MIRROR/$file" "$work/containerd.deb" || die "could not fetch $MIRROR/$file"
	echo "$sha  $work/containerd.deb" | sha256sum --quiet -c - || die "$file does not match its SHA256 in $suite"
	rm -rf "$dir/$series.new"
	mkdir -p "$dir/$series.new"
	dpkg -x "$work/containerd.deb" "$dir/$series.new"
	[ -x "$dir/$series.new/usr/bin/containerd" ] || die "$file has no usr/bin/containerd"
	echo "$version" >"$dir/$series.new/VERSION"
	rm -rf "$dir/$series"
	mv "$dir/$series.new" "$dir/$series"
}

case "${1:-}" in
install)
	[ $# -ge 2 ] || die "usage: install DIR [SERIES...]"
	dir="$2"
	shift 2
	[ $# -gt 0 ] || set -- 1.7 2.1
	mkdir -p "$dir"
	for series in "$@"; do install_series "$dir" "$series"; done
	;;
bin)
	[ $# -eq 3 ] || die "usage: bin DIR SERIES"
	[ -x "$2/$3/usr/bin/containerd" ] || exit 1
	echo "$2/$3/usr/bin"
	;;
*)
	die "usage: install DIR [SERIES...] | bin DIR SERIES"
	;;
esac
