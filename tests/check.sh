#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# What `make check` and CI run, in order:
#
#   deps    scripts/deps.sh (installs missing Debian packages), when present
#   build   make
#   unit    make test-unit
#   san     make test-san (unit tests under ASan+UBSan)
#   fuzz    make fuzz-short (every libFuzzer harness for 6 s, from its seeds)
#   integ   make test-integ (root; integ_progs skips every test otherwise)
#   vmtest  make vmtest, when vmtest/run.sh exists (SLUICE_SKIP_VMTEST=1 skips)
#
# Each test stage ends with a summary line `N passed, N failed[, N skipped]`;
# deps and build count as one check each. Prints a table per stage and, last,
# exactly one line `N passed, N failed, N skipped` with the totals. Exit
# status is non-zero when anything failed or a test stage ended without its
# summary line.

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

MAKE=${MAKE:-make}
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-check.XXXXXX") || exit 1
trap 'rm -rf "$logdir"' EXIT

summary_re='([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?[[:space:]]*$'

names=()
results=()
passes=()
fails=()
skips=()
times=()
notes=()

record()
{
	names+=("$1")
	results+=("$2")
	passes+=("$3")
	fails+=("$4")
	skips+=("$5")
	times+=("$6")
	notes+=("$7")
}

elapsed()
{
	local start=$1

	awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", e - s }'
}

# run_stage NAME KIND CMD...: KIND "check" is one pass/fail, "tests" needs
# the summary line. Output goes to the terminal and to the stage's log.
run_stage()
{
	local name=$1 kind=$2 log="$logdir/$1.log" start=$EPOCHREALTIME rc line
	shift 2

	echo "==== check: $name: $*"
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}

	if [[ $kind == check ]]; then
		if ((rc == 0)); then
			record "$name" ok 1 0 0 "$(elapsed "$start")" ""
		else
			record "$name" FAIL 0 1 0 "$(elapsed "$start")" "exit status $rc"
		fi
		return "$rc"
	fi

	line=$(grep -E "$summary_re" "$log" | tail -n 1)
	if [[ -z $line ]]; then
		record "$name" BROKEN 0 1 0 "$(elapsed "$start")" \
			"exit status $rc and no 'N passed, N failed' line"
		return 1
	fi
	[[ $line =~ $summary_re ]]
	local p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} s=${BASH_REMATCH[4]:-0}
	if ((rc != 0 && f == 0)); then
		# A crash after the summary, a sanitizer report, a make error.
		record "$name" FAIL "$p" 1 "$s" "$(elapsed "$start")" \
			"exit status $rc after '$line'"
		return 1
	fi
	if ((f > 0)); then
		record "$name" FAIL "$p" "$f" "$s" "$(elapsed "$start")" ""
	else
		record "$name" ok "$p" "$f" "$s" "$(elapsed "$start")" ""
	fi
	return "$rc"
}

skip_stage()
{
	echo "==== check: $1: skipped: $2"
	record "$1" skip 0 0 1 "-" "$2"
}

# A failed deps stage is reported, but the build may still work with what
# is installed, so it runs anyway.
if [[ -x scripts/deps.sh ]]; then
	run_stage deps check scripts/deps.sh
else
	skip_stage deps "scripts/deps.sh not present"
fi
built=true
run_stage build check "$MAKE" --no-print-directory || built=false

if $built; then
	run_stage unit tests "$MAKE" --no-print-directory test-unit
	run_stage san tests "$MAKE" --no-print-directory test-san
	run_stage fuzz tests "$MAKE" --no-print-directory fuzz-short
	if ((EUID != 0)); then
		echo "==== check: integ: not root: integ_progs counts every test as skipped"
	fi
	run_stage integ tests "$MAKE" --no-print-directory test-integ
	if [[ ${SLUICE_SKIP_VMTEST:-0} == 1 ]]; then
		skip_stage vmtest "SLUICE_SKIP_VMTEST=1"
	elif [[ ! -e vmtest/run.sh ]]; then
		skip_stage vmtest "vmtest/run.sh not present"
	else
		run_stage vmtest tests "$MAKE" --no-print-directory vmtest
	fi
else
	for stage in unit san fuzz integ vmtest; do
		skip_stage "$stage" "the build failed"
	done
fi

total_p=0
total_f=0
total_s=0
echo
printf '%-8s %-7s %7s %7s %8s %8s  %s\n' STAGE RESULT PASSED FAILED SKIPPED TIME NOTE
for i in "${!names[@]}"; do
	printf '%-8s %-7s %7d %7d %8d %8s  %s\n' "${names[i]}" "${results[i]}" "${passes[i]}" \
		"${fails[i]}" "${skips[i]}" "${times[i]}" "${notes[i]}"
	total_p=$((total_p + passes[i]))
	total_f=$((total_f + fails[i]))
	total_s=$((total_s + skips[i]))
done
echo "$total_p passed, $total_f failed, $total_s skipped"
((total_f == 0))
