#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: tests/run_unit.sh [-v] DIR
#
# First installs the test IdP (tests/oidc/setup.sh: npm ci of oidc-provider,
# a no-op when already done); test_oidc runs against it. Its failure (no
# node or npm: `make deps`) counts as one failed case, so the IdP tests
# never quietly drop out of a run.
#
# Then runs every DIR/test_* binary from the repository root (test data paths
# are relative to it). A binary's output is shown when it fails, or always
# with -v; the cases it skipped are named. The last line is the total over
# individual cmocka test cases: `N passed, N failed, N skipped`. A binary
# that crashes or exits non-zero without failing a test case counts as one
# failed case (e.g. a LeakSanitizer report after all cases passed). Exit
# status is non-zero if anything failed.
set -u

verbose=0
if [ "${1:-}" = "-v" ]; then
	verbose=1
	shift
fi
if [ $# -ne 1 ]; then
	echo "usage: $0 [-v] DIR" >&2
	exit 2
fi
dir=$(cd "$1" 2>/dev/null && pwd) || {
	echo "$0: $1: no such directory" >&2
	exit 2
}
cd "$(dirname "$0")/.." || exit 2

passed=0
failed=0
skipped=0
ran=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

tests/oidc/setup.sh >"$out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
	cat "$out"
	echo "FAIL   tests/oidc/setup.sh: exit status $rc (the OIDC tests have no IdP)"
	failed=1
elif [ "$verbose" = 1 ]; then
	cat "$out"
fi

for bin in "$dir"/test_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	ran=$((ran + 1))
	"$bin" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test(s)\..*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test(s).*/\1/p' "$out" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]\+\) test(s).*/\1/p' "$out" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	s=${s:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# Crashed, or failed after its cases passed (a sanitizer report).
		f=1
		if [ "$rc" -gt 128 ]; then
			result="FAIL   $name: killed by signal $((rc - 128))"
		else
			result="FAIL   $name: exit status $rc"
		fi
	elif [ "$f" -ne 0 ]; then
		result="FAIL   $name: $f of $((p + f)) cases failed"
	else
		result="PASS   $name: $p cases"
	fi
	if [ "$s" -ne 0 ]; then
		# Each skipped case is named twice: where it ran and in the list.
		result="$result, $s skipped:$(awk '/^\[  SKIPPED \] [^ ]+$/ && !seen[$4]++ {
			printf " %s", $4 }' "$out")"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "${result%% *}" = FAIL ] || [ "$verbose" = 1 ]; then
		cat "$out"
	fi
	echo "$result"
done

if [ "$ran" -eq 0 ]; then
	echo "$0: no test_* binaries in $dir" >&2
	failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
