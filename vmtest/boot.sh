#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: vmtest/boot.sh BUILD LABEL IMAGE [MODDIR]       (vmtest/run.sh)
#
# Runs the root integration suite, BUILD/tests/integ_progs, inside a VM: the
# bzImage IMAGE, with modules from MODDIR (lib/modules/<version>), under qemu
# without KVM, booted into a busybox initramfs that runs each test in its own
# integ_progs process (vmtest/init.in). Every line it prints starts with
# "vmtest [LABEL]:"; it ends with "vmtest [LABEL]: N passed, N failed, N
# skipped", writes "N N N" to BUILD/vmtest/LABEL/summary, and fails when a
# test failed, when the guest did not finish within VMTEST_TIMEOUT seconds,
# or when the kernel warned, oopsed or printed a call trace. The guest's
# console is kept in BUILD/vmtest/LABEL/console.log.
#
# Environment (vmtest/run.sh documents them):
#   VMTEST_TIMEOUT, VMTEST_TEST_TIMEOUT, VMTEST_MODULES, VMTEST_TESTS,
#   VMTEST_BINS, VMTEST_CMDLINE

set -euo pipefail
trap 'echo "vmtest [$label]: line $LINENO: command failed (status $?)" >&2' ERR

build=${1:?usage: vmtest/boot.sh BUILD LABEL IMAGE [MODDIR]}
label=${2:?}
image=${3:?}
moddir=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
timeout=${VMTEST_TIMEOUT:-900}
test_timeout=${VMTEST_TEST_TIMEOUT:-300}
modules=${VMTEST_MODULES:-veth tls}
mkdir -p "$build/vmtest/$label"
out=$(cd "$build/vmtest/$label" && pwd)
console=$out/console.log
results=$out/results.txt
t_start=$EPOCHREALTIME

die()
{
	echo "vmtest [$label]: $*" >&2
	exit 1
}

since()
{
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# The version string a bzImage carries (boot protocol: header "HdrS" at
# 0x202, offset of the string minus 0x200 at 0x20e).
image_version()
{
	local off

	if [[ $(dd if="$1" bs=1 skip=514 count=4 status=none) != HdrS ]]; then
		echo "unknown (not a bzImage)"
		return
	fi
	off=$(od -An -tu2 -j526 -N2 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=$((off + 512)) count=256 status=none | tr '\0' '\n' | head -n1
}

# The console without carriage returns.
console_text()
{
	tr -d '\r' <"$console"
}

# The console while test $1 ran: its output and the kernel's messages.
test_output()
{
	console_text | awk -v name="$1" '
		$0 == "VMTEST-BEGIN " name { on = 1; next }
		index($0, "VMTEST-END " name ":") == 1 { on = 0 }
		on'
}

kernel_line_re='^\[ *[0-9]+\.[0-9]+\] '

[[ -r $image ]] || die "$image is not readable"
echo "vmtest [$label]: kernel $(image_version "$image")"
echo "vmtest [$label]: image $image, modules ${moddir:-none}"

t=$EPOCHREALTIME
# shellcheck disable=SC2086 # the module list is a word list
"$here/mkinitramfs.sh" "$out/initramfs.cpio" "$build" "$test_timeout" "$moddir" $modules
t_initramfs=$(since "$t")
echo "vmtest [$label]: initramfs $(du -m "$out/initramfs.cpio" | cut -f1) MiB"

# ttyS0 is the console; ttyS1 carries only the result lines (init.in).
: >"$results"
t=$EPOCHREALTIME
qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
	-accel tcg -cpu max -smp 2 -m 2G \
	-serial mon:stdio -serial "file:${results//,/,,}" \
	-kernel "$image" -initrd "$out/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 ${VMTEST_CMDLINE:-}" \
	</dev/null >"$console" 2>&1 &
qpid=$!
trap 'kill "$qpid" 2>/dev/null || true' EXIT

passed=0
failed=()
skipped=()
finished=0
seen=0
declare -A reported=()
t_init=
test_time='?'
t_boot=
t_tests=

handle()
{
	local name rc

	case $1 in
	"VMTEST-KERNEL "*)
		t_init=$(since "$t")
		echo "vmtest [$label]: guest kernel ${1#VMTEST-KERNEL }"
		;;
	"VMTEST-UPTIME "*)
		# Guest time: the first is boot to init, the last ends the tests.
		if [[ -z $t_boot ]]; then
			t_boot=${1#VMTEST-UPTIME }
		else
			t_tests=$(awk -v a="$t_boot" -v b="${1#VMTEST-UPTIME }" \
				'BEGIN { printf "%.1f", b - a }')
		fi
		;;
	"VMTEST-TIME "*)
		test_time=${1##* }
		;;
	"VMTEST-MODULE "*)
		echo "vmtest [$label]: module ${1#VMTEST-MODULE }"
		;;
	"VMTEST-RESULT "*)
		name=${1#VMTEST-RESULT }
		rc=${name##*:}
		name=${name%:*}
		if [[ -n ${reported[$name]:-} ]]; then
			echo "vmtest [$label]: $name reported twice; counted once"
			return
		fi
		reported[$name]=1
		case $rc in
		0)
			passed=$((passed + 1))
			printf 'vmtest [%s]:   PASS  %s (%s s)\n' "$label" "$name" "$test_time"
			;;
		77)
			skipped+=("$name")
			printf 'vmtest [%s]:   SKIP  %s (%s s)\n' "$label" "$name" "$test_time"
			;;
		*)
			failed+=("$name")
			if ((rc > 128)); then
				printf 'vmtest [%s]:   FAIL  %s (%s s, killed by signal %d; test timeout %d s)\n' \
					"$label" "$name" "$test_time" $((rc - 128)) "$test_timeout"
			else
				printf 'vmtest [%s]:   FAIL  %s (%s s, exit %d)\n' "$label" "$name" "$test_time" "$rc"
			fi
			;;
		esac
		test_time='?'
		;;
	VMTEST-DONE)
		finished=1
		;;
	esac
}

# Hands every complete line of the results channel not yet seen to handle().
read_results()
{
	local text lines i

	# One read of the file: whether its last line is complete is judged on
	# the same bytes (a second read could see the line's end arrive and
	# hand on the half read first). The dot keeps a last newline.
	text=$(tr -d '\r' <"$results"; printf .)
	text=${text%.}
	# A last line without its newline is still being written.
	if [[ $text != *$'\n' ]]; then
		[[ $text == *$'\n'* ]] && text=${text%$'\n'*}$'\n' || text=
	fi
	mapfile -t lines < <(printf '%s' "$text")
	for ((i = seen; i < ${#lines[@]}; i++)); do
		handle "${lines[i]}"
	done
	seen=${#lines[@]}
}

status=
deadline=$((SECONDS + timeout))
while kill -0 "$qpid" 2>/dev/null; do
	read_results
	if ((finished)); then
		# poweroff -f ends qemu at once; give a stuck guest a moment.
		for _ in {1..30}; do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 1
		done
		break
	fi
	if ((SECONDS >= deadline)); then
		status="no VMTEST-DONE within $timeout s (VMTEST_TIMEOUT)"
		break
	fi
	sleep 0.2
done
if kill -0 "$qpid" 2>/dev/null; then
	((finished)) && echo "vmtest [$label]: guest finished but did not power off; stopping qemu"
	kill "$qpid"
fi
qrc=0
wait "$qpid" || qrc=$?
trap - EXIT
t_vm=$(since "$t")
read_results
if ((!finished)) && [[ -z $status ]]; then
	status="qemu exited ($qrc) before VMTEST-DONE"
fi
if ((!finished)); then
	running=$(console_text | awk '
		/^VMTEST-BEGIN / { name = $2 }
		/^VMTEST-END / { name = "" }
		END { print name }')
	[[ -z $running ]] || status="$status, in test $running"
fi

ok=1
# A skipped test's reason is the last line it printed.
for name in "${skipped[@]}"; do
	reason=$(test_output "$name" | grep -Ev "$kernel_line_re|^[[:space:]]*\$" | tail -n1)
	echo "vmtest [$label]: skipped $name: $reason"
done
for name in "${failed[@]}"; do
	ok=0
	echo "vmtest [$label]: ---- output of failed test $name ----"
	test_output "$name"
done
# Kernel lines only (the timestamp), so a test printing such words is no splat.
splat_re="$kernel_line_re"'.*(WARNING:|BUG:|Oops|general protection|Call Trace|kernel BUG at|Kernel panic)'
if console_text | grep -Eq "$splat_re"; then
	ok=0
	echo "vmtest [$label]: ---- kernel splat in the guest ----"
	console_text | grep -E -B 10 -A 30 "$splat_re" | head -n 150
fi
if [[ -n $status ]]; then
	ok=0
	echo "vmtest [$label]: guest did not finish: $status"
	echo "vmtest [$label]: ---- last 60 lines of $console ----"
	console_text | tail -n 60
elif ((passed + ${#failed[@]} + ${#skipped[@]} == 0)); then
	ok=0
	echo "vmtest [$label]: the guest ran no test"
fi

echo "vmtest [$label]: times: initramfs ${t_initramfs} s," \
	"boot to init ${t_init:-?} s (guest uptime ${t_boot:-?} s), tests ${t_tests:-?} s," \
	"qemu ${t_vm} s, total $(since "$t_start") s"
echo "vmtest [$label]: console log: $console"
echo "$passed ${#failed[@]} ${#skipped[@]}" >"$out/summary"
echo "vmtest [$label]: $passed passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
exit $((ok ? 0 : 1))
