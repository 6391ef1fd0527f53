#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: vmtest/run.sh BUILD                          (make vmtest)
#
# Runs the root integration suite inside a VM once per kernel of
# VMTEST_KERNELS (Debian kernel series, default "6.1 6.12"), or once on
# $KERNEL, each booted by vmtest/boot.sh. Every kernel's lines start with
# "vmtest [SERIES]:" and end with its own "vmtest [SERIES]: N passed, N
# failed, N skipped"; a kernel that fails does not stop the next. The last
# line is "vmtest: N passed, N failed, N skipped" over all kernels, where a
# kernel whose run failed without a failed test (no kernel package, a
# guest that did not finish, a splat) counts as one failure. Fails when any
# kernel's run failed.
#
# Environment:
#   VMTEST_KERNELS       Debian kernel series to run on (default "6.1 6.12"),
#                        fetched into vmtest/cache/ once (fetch-kernel.sh)
#   KERNEL               bzImage to boot instead of Debian's
#   KMODS                its lib/modules/<version> directory (default: none)
#   VMTEST_TIMEOUT       seconds for one kernel's guest run (default 900)
#   VMTEST_TEST_TIMEOUT  seconds for one test (default 300)
#   VMTEST_MODULES       modules the guest loads (default "veth tls")
#   VMTEST_TESTS         only these tests of integ_progs -L (default: all)
#   VMTEST_BINS          more host programs the tests need in the guest
#   VMTEST_CMDLINE       extra kernel command line

set -euo pipefail
trap 'echo "vmtest: line $LINENO: command failed (status $?)" >&2' ERR

build=${1:?usage: vmtest/run.sh BUILD}
here=$(cd "$(dirname "$0")" && pwd)
kernels=${VMTEST_KERNELS:-6.1 6.12}
mkdir -p "$build/vmtest"
out=$(cd "$build/vmtest" && pwd)
t_start=$EPOCHREALTIME

die()
{
	echo "vmtest: $*" >&2
	exit 1
}

since()
{
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# Installs the host tools boot.sh and the initramfs need.
ensure_tools()
{
	local need=()

	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	# The initramfs has no libc for a dynamically linked busybox.
	dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q ' installed$' ||
		need+=(busybox-static)
	command -v cpio >/dev/null || need+=(cpio)
	PATH=$PATH:/usr/sbin:/sbin command -v depmod >/dev/null || need+=(kmod)
	((${#need[@]} == 0)) && return
	((EUID == 0)) || die "missing ${need[*]}: run as root to have them installed"
	echo "vmtest: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get -o DPkg::Lock::Timeout=600 -qq update &&
	       apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends \
		       "${need[@]}"; } >"$out/apt.log" 2>&1; then
		cat "$out/apt.log" >&2
		die "installing ${need[*]} failed"
	fi
}

passed=0
failed=0
skipped=0
broken=()

# Adds one kernel's summary to the totals; a run that failed with no failed
# test counts as one failure, so the totals never read as a pass.
tally()
{
	local label=$1 rc=$2 why=${3:-} p=0 f=0 s=0

	[[ -r $out/$label/summary ]] && read -r p f s <"$out/$label/summary"
	if ((rc != 0)); then
		[[ -n $why ]] || why="exit $rc"
		((f > 0)) || [[ -r $out/$label/summary ]] || why+=", no test summary"
		broken+=("$label ($why)")
		((f > 0)) || f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

# Boots one kernel: label, image, modules directory.
boot()
{
	local rc=0

	rm -f "$out/$1/summary"
	"$here/boot.sh" "$build" "$@" || rc=$?
	tally "$1" "$rc"
}

# Fetches a Debian kernel series into the cache and boots it.
boot_series()
{
	local series=$1 paths dir t=$EPOCHREALTIME

	if ! paths=$("$here/fetch-kernel.sh" "$here/cache" "$series"); then
		echo "vmtest [$series]: no kernel of series $series"
		tally "$series" 1 "no kernel"
		return
	fi
	dir=${paths%%/boot/*}
	echo "vmtest [$series]: kernel package ${dir##*/}, ready in $(since "$t") s"
	boot "$series" "${paths%%$'\n'*}" "${paths#*$'\n'}"
}

# The guest has node but no npm: the test IdP's and the trace collector's
# modules come from the host.
prepare_idp()
{
	local repo

	repo=$(dirname "$here")
	"$repo/tests/oidc/setup.sh" ||
		echo "vmtest: tests/oidc/setup.sh failed: the IdP tests will fail in the guest"
	"$repo/tests/otlp/setup.sh" ||
		echo "vmtest: tests/otlp/setup.sh failed: the otlp test will fail in the guest"
}

ensure_tools
prepare_idp

if [[ -n ${KERNEL:-} ]]; then
	boot custom "$KERNEL" "${KMODS:-}"
else
	[[ -z ${KMODS:-} ]] || die "KMODS needs KERNEL"
	for series in $kernels; do
		boot_series "$series"
	done
fi

if ((${#broken[@]} > 0)); then
	printf -v list '%s, ' "${broken[@]}"
	echo "vmtest: failed on: ${list%, }"
fi
echo "vmtest: kernels ${KERNEL:+custom }${KERNEL:-$kernels}, total $(since "$t_start") s"
echo "vmtest: $passed passed, $failed failed, $skipped skipped"
exit $((${#broken[@]} == 0 ? 0 : 1))
