#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: vmtest/mkinitramfs.sh OUT BUILD TEST_TIMEOUT MODDIR [MODULE...]
#
# Builds OUT, an uncompressed newc initramfs holding busybox, the project's
# binaries, BPF objects and integration tests from BUILD, the host programs
# the tests call (sh, ip, bash, bpftool, nginx, curl, nsenter, node, openssl and
# $VMTEST_BINS), the shared libraries
# all of them need, the kernel modules MODULE... with their dependencies from
# MODDIR (empty: none), /init from vmtest/init.in, and the names of
# $VMTEST_TESTS, when set, the only tests the guest runs.
#
# The repository is laid out under /sluice as on the host (BUILD at the same
# relative path when it is inside the repository, at build/ otherwise), so the
# tests find their data at the same relative paths in both places.
#
# Uncompressed because under TCG the kernel would take longer to inflate the
# archive than qemu takes to load it.

set -euo pipefail
trap 'echo "mkinitramfs: line $LINENO: command failed (status $?)" >&2' ERR

out=${1:?usage: mkinitramfs.sh OUT BUILD TEST_TIMEOUT MODDIR [MODULE...]}
build=${2:?}
test_timeout=${3:?}
moddir=${4?}
shift 4

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
guest_repo=/sluice

die()
{
	echo "mkinitramfs: $*" >&2
	exit 1
}

is_elf()
{
	[[ $(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]
}

build=$(cd "$build" && pwd) || die "no build directory $2"
rel=$(realpath -m --relative-to="$repo" "$build")
[[ $rel == ../* || $rel == .. ]] && rel=build
gbuild=$guest_repo/$rel

work=$(dirname "$out")
root=$work/root
rm -rf "$root"
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{proc,sys,dev,run,tmp,root,etc,var}
for d in bin sbin lib lib64; do
	ln -s "usr/$d" "$root/$d"
done
ln -s /run "$root/var/run"

# Project files: the same names at the same relative paths as on the host.
elves=()
mkdir -p "$root$gbuild/tests"
for f in sluiced sluicectl tests/integ_progs; do
	[[ -x $build/$f ]] || die "missing $build/$f (run make first)"
	cp "$build/$f" "$root$gbuild/$f"
	is_elf "$build/$f" && elves+=("$build/$f")
done
for f in "$build"/*.bpf.o; do
	[[ -e $f ]] && cp "$f" "$root$gbuild/"
done
cp -r "$repo/tests" "$root$guest_repo/"

# Host programs the tests run, at the host's paths (the name found in PATH
# and, when that is a symlink, the file it resolves to). sh is the host's
# too: busybox's sh runs its own applets before searching PATH, so a
# system("ip ...") would get busybox's ip.
read -ra extra <<<"${VMTEST_BINS:-}"
progs=(sh ip bash bpftool nginx curl nsenter node openssl "${extra[@]}")
for name in "${progs[@]}"; do
	found=$(PATH=$PATH:/usr/sbin:/sbin command -v "$name") || die "$name not found on the host"
	path=$(readlink -f "$found")
	cp "$path" "$root$path"
	[[ -e $root$found ]] || ln -s "$path" "$root$found"
	is_elf "$path" && elves+=("$path")
done

# Shared libraries at the paths the host's loader resolves them to; the
# guest's loader searches the same default directories.
libs=()
for e in "${elves[@]}"; do
	# ldd fails on a static executable, which needs nothing.
	deps=$(ldd "$e" 2>/dev/null) || continue
	[[ $deps != *'not found'* ]] || die "$e: $(grep 'not found' <<<"$deps" | tr -s ' \t' ' ')"
	mapfile -t -O "${#libs[@]}" libs < <(sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p
						  s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' <<<"$deps")
done
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# busybox provides every command that no host program above provides; its
# applets live in other directories than the host's programs (sbin/ip against
# /usr/bin/ip), so compare names, not paths.
cp /bin/busybox "$root/usr/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[[ " ${progs[*]} " == *" ${applet##*/} "* || -e $root/$applet ]] ||
		ln -s /usr/bin/busybox "$root/$applet"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost vmtest
::1		localhost ip6-localhost ip6-loopback
EOF
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
for f in /etc/services /etc/protocols /etc/iproute2 /usr/share/iproute2 /etc/ssl/openssl.cnf \
	/usr/lib/ssl; do
	if [[ -e $f ]]; then
		mkdir -p "$root$(dirname "$f")"
		cp -r "$f" "$root$f"
	fi
done

# Modules: "NAME FILE..." in load order, "NAME builtin" or "NAME missing".
# modprobe needs ROOT/lib/modules/VERSION with a modules.dep; a directory
# that is not laid out so gets a symlinked copy with its own depmod.
modlist=$root/etc/vmtest/modules
mkdir -p "$(dirname "$modlist")"
: >"$modlist"
if [[ -n $moddir ]]; then
	moddir=$(cd "$moddir" && pwd) || die "no modules directory $4"
	kver=${moddir##*/}
	modroot=${moddir%/lib/modules/"$kver"}
	if [[ $modroot == "$moddir" || ! -e $moddir/modules.dep ]]; then
		modroot=$work/modroot
		rm -rf "$modroot"
		mkdir -p "$modroot/lib/modules/$kver"
		cp -rs "$moddir/." "$modroot/lib/modules/$kver/"
		depmod -b "$modroot" "$kver"
	fi
fi
for m in "$@"; do
	if [[ -z $moddir ]] ||
	   ! deps=$(modprobe -C /dev/null -d "$modroot" -S "$kver" --show-depends "$m" 2>/dev/null); then
		echo "$m missing" >>"$modlist"
		continue
	fi
	if [[ $deps == builtin* ]]; then
		echo "$m builtin" >>"$modlist"
		continue
	fi
	# Compressed modules are unpacked: busybox's insmod takes plain ones.
	files=()
	while read -r _ path _; do
		gpath=/lib/modules/$kver/${path#"$modroot"/lib/modules/"$kver"/}
		gpath=${gpath%.ko*}.ko
		mkdir -p "$root$(dirname "$gpath")"
		case $path in
		*.ko.xz) unpack=(xz -dc) ;;
		*.ko.zst) unpack=(zstd -dc) ;;
		*.ko.gz) unpack=(gzip -dc) ;;
		*) unpack=(cat) ;;
		esac
		# From stdin: xz and zstd skip a symlink named on the command line.
		"${unpack[@]}" <"$path" >"$root$gpath" || die "cannot unpack $path"
		files+=("$gpath")
	done <<<"$deps"
	echo "$m ${files[*]}" >>"$modlist"
done

if [[ -n ${VMTEST_TESTS:-} ]]; then
	# shellcheck disable=SC2086 # a word list
	printf '%s\n' $VMTEST_TESTS >"$root/etc/vmtest/tests"
fi

sed -e "s|@BUILD@|$rel|g" -e "s|@REPO@|$guest_repo|g" -e "s|@TEST_TIMEOUT@|$test_timeout|g" \
	"$here/init.in" >"$root/init"
chmod 755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
