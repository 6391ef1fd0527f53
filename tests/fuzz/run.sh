#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Usage: tests/fuzz/run.sh DIR SECONDS
#
# Runs each libFuzzer harness DIR/fuzz_<name> for SECONDS, one after the
# other, from its seeds (tests/fuzz/corpus/<name>/) and its dictionary
# (tests/fuzz/<name>.dict, when there is one). What it finds goes to DIR:
# new corpus entries to DIR/corpus/<name>/ (kept for the next run, never
# into the repository), crashing inputs to DIR/crashes/<name>/, the
# fuzzer's output to DIR/log/<name>.log. Prints one line per harness with
# its executions, exec/s, time and coverage (cov: and ft: from libFuzzer's
# final stats), then `N passed, N failed`. A harness fails when it crashes,
# leaks, trips a sanitizer or an assertion, or an input takes longer than
# 10 s; its log's last lines are shown. Exit status is non-zero then.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 DIR SECONDS" >&2
	exit 2
fi
dir=$1
secs=$2
cd "$(dirname "$0")/../.." || exit 2

# Longest input per harness: what the format needs to reach every check,
# short enough for mutations to stay fast.
max_len()
{
	case $1 in
	b64url) echo 1024 ;;
	frame | http | oidc | jwt | authz | assertion | request) echo 4096 ;;
	config | policy | jwks | credfile) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

# The last "cov: N ft: N" libFuzzer printed, and a stat:: value.
cov_of()
{
	grep -o 'cov: [0-9]* ft: [0-9]*' "$1" | tail -n 1
}

stat_of()
{
	sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

passed=0
failed=0
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=${bin##*/fuzz_}
	corpus=$dir/corpus/$name
	crashes=$dir/crashes/$name
	log=$dir/log/$name.log
	mkdir -p "$corpus" "$crashes" "$dir/log"
	args=(-max_total_time="$secs" -max_len="$(max_len "$name")" -timeout=10
	      -print_final_stats=1 -artifact_prefix="$crashes/")
	[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")

	start=$EPOCHREALTIME
	"$bin" "${args[@]}" "$corpus" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	took=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.0f", e - s }')

	cov=$(cov_of "$log")
	line=$(printf '%-9s execs %9s  exec/s %6s  time %4ss  %s' "$name" \
		"$(stat_of "$log" number_of_executed_units)" \
		"$(stat_of "$log" average_exec_per_sec)" "$took" "${cov:-cov: - ft: -}")
	if [ $rc -eq 0 ]; then
		echo "fuzz: ok    $line"
		passed=$((passed + 1))
	else
		echo "fuzz: FAIL  $line (exit status $rc, log $log)"
		grep -E 'ERROR|SUMMARY|artifact|runtime error' "$log" | head -n 5 | sed 's/^/      /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
