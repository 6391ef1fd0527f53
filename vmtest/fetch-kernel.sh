#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: vmtest/fetch-kernel.sh CACHE_DIR [SERIES]
#
# Makes Debian's current amd64 kernel of SERIES (default 6.1) available under
# CACHE_DIR and prints two lines: the kernel image and its modules directory.
# A series is found through its metapackage, linux-image-SERIES-amd64 (6.12 on
# Debian 12, from bookworm-security), or else linux-image-amd64 when that is
# the series (6.1 LTS on Debian 12). A package already unpacked there is
# reused; when apt cannot answer (no network, no package lists), the newest
# unpacked one of the series is.

set -euo pipefail
trap 'echo "fetch-kernel: line $LINENO: command failed (status $?)" >&2' ERR

cache=${1:?usage: fetch-kernel.sh CACHE_DIR [SERIES]}
series=${2:-6.1}
[[ $series =~ ^[0-9]+\.[0-9]+$ ]] || { echo "fetch-kernel: '$series' is no series (like 6.12)" >&2; exit 1; }
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# Runs for other build directories share the cache: one unpacks at a time.
exec 9>"$cache/.lock"
flock 9

# A metapackage carries no kernel: it depends on the versioned package
# (linux-image-6.1.0-N-amd64, linux-image-6.12.N+deb12-amd64) that does.
# depends_on, resolve and candidate print nothing when apt cannot answer.
depends_on()
{
	{ apt-cache depends "$1" 2>/dev/null || true; } |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

# The versioned package of the series: its own metapackage's, or the default
# kernel's when that is of the series. The dot keeps 6.1 from matching 6.12.
resolve()
{
	local pkg

	pkg=$(depends_on "linux-image-$series-amd64")
	[[ -n $pkg ]] || pkg=$(depends_on linux-image-amd64)
	[[ $pkg == linux-image-"$series".* ]] && echo "$pkg"
	return 0
}

candidate()
{
	{ apt-cache policy "$1" 2>/dev/null || true; } | sed -n 's/^ *Candidate: //p'
}

print_paths()
{
	local dir=$1 images image

	images=("$dir"/boot/vmlinuz-*)
	image=${images[0]}
	[[ -e $image ]] || { echo "fetch-kernel: no vmlinuz in $dir" >&2; exit 1; }
	echo "$image"
	echo "$dir/lib/modules/${image##*/vmlinuz-}"
}

# Prints the newest complete kernel of the series in the cache and exits, or
# fails.
use_cached()
{
	local dir

	# shellcheck disable=SC2012 # the names are this script's own
	dir=$({ ls -1dt "$cache"/linux-image-"$series".*/.complete 2>/dev/null || true; } |
		head -n1 | xargs -r dirname)
	[[ -n $dir ]] || { echo "fetch-kernel: $1, and no $series kernel is cached" >&2; exit 1; }
	echo "fetch-kernel: $1; using cached ${dir##*/}" >&2
	print_paths "$dir"
	exit 0
}

pkg=$(resolve)
if [[ -z $pkg ]]; then
	echo "fetch-kernel: no $series kernel in the package lists; running apt-get update" >&2
	apt-get -qq update >&2 || true
	pkg=$(resolve)
fi
# Unpacks $pkg $ver into $dir; fails, leaving nothing, when the download
# does.
unpack()
{
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "fetch-kernel: downloading $pkg $ver" >&2
	# apt-get download writes to the current directory. Its stderr matters on
	# failure only: as root it always warns that _apt cannot write there.
	if ! (cd "$dir" && apt-get -qq download "$pkg=$ver" 2>download.log); then
		cat "$dir/download.log" >&2
		rm -rf "$dir"
		return 1
	fi
	rm "$dir/download.log"
	dpkg-deb -x "$dir"/*.deb "$dir"
	rm -f "$dir"/*.deb
	# Newer packages ship modules under usr/lib (merged /usr); depmod -b and
	# print_paths look under lib/.
	[[ -e $dir/lib || ! -d $dir/usr/lib/modules ]] || ln -s usr/lib "$dir/lib"
	image=$(print_paths "$dir" | head -n1)
	# The package ships no modules.dep (its postinst runs depmod); the
	# initramfs builder needs it to resolve module dependencies.
	depmod -b "$dir" "${image##*/vmlinuz-}"
	touch "$dir/.complete"
}

# A mirror that is syncing a new kernel can refuse the version the package
# lists name (404, hash sum mismatch): fresh lists, and then the same or the
# new version, usually succeed a little later.
for try in 1 2 3; do
	ver=${pkg:+$(candidate "$pkg")}
	if [[ -z $pkg || -z $ver || $ver == "(none)" ]]; then
		use_cached "apt cannot resolve a $series kernel"
	fi
	dir=$cache/${pkg}_${ver//:/%3a}
	[[ -e $dir/.complete ]] && break
	unpack && break
	((try < 3)) || use_cached "downloading $pkg $ver failed 3 times"
	echo "fetch-kernel: download $try of 3 failed; running apt-get update" >&2
	sleep $((try * 10))
	apt-get -qq update >&2 || true
	pkg=$(resolve)
done
print_paths "$dir"
