#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The two-node demo (sudo make demo): node A runs sluiced and two workloads,
# a job and a notebook; node B runs an HTTP API (nginx) and a warehouse
# (PostgreSQL). It walks through what the policy in deploy/demo/policy.yaml
# allows and denies, and checks every outcome: the exit status is nonzero if
# anything allowed failed or anything denied got through.
#
# Usage: scripts/demo.sh [BUILD_DIR]     (default: build)

set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JOB=job-1234
JOB_ID=spiffe://acme.example/job/1234
NOTEBOOK=notebook-77
NOTEBOOK_ID=spiffe://acme.example/notebook/77
PSQL=(psql -h "$SL_ADDR_B" -U postgres -d postgres -X -A -t)
export PGCONNECT_TIMEOUT=5

passed=0
failed=()

expect()
{
	local what=$1

	shift
	if "$@"; then
		printf '   %sok%s %s\n' "$SL_GREEN" "$SL_OFF" "$what"
		passed=$((passed + 1))
	else
		printf '   %sFAIL%s %s\n' "$SL_RED" "$SL_OFF" "$what"
		failed+=("$what")
	fi
}

# run WORKLOAD CMD...: runs CMD as the workload on node-a; leaves the output
# in OUT and the exit status in RC, and shows both.
run()
{
	local wl=$1

	shift
	sl_show "node-a/$wl" "$@"
	RC=0
	OUT=$(sl_in_cgroup "$SL_NS_A" "$wl" "$@" 2>&1) || RC=$?
	[[ -z $OUT ]] || printf '%s\n' "$OUT" | sed 's/^/   /'
}

# Shows a sluicectl command and its output; a failing one fails the demo.
ctl()
{
	local rc=0

	sl_show node-a sluicectl "$@"
	OUT=$(sl_ctl "$@" 2>&1) || rc=$?
	printf '%s\n' "$OUT" | sed 's/^/   /'
	((rc == 0)) || failed+=("sluicectl $* exited with $rc")
}

# sluicectl's JSON output, for the checks.
ctl_json()
{
	sl_ctl -j "$@" 2>/dev/null
}

curl_code()
{
	run "$1" curl -sS -g -o /dev/null -w '%{http_code}\n' --max-time 5 "$2"
}

sl_init demo "${1:-build}"

sl_step "Setting up two nodes"
sl_bpffs
sl_topology
sl_cgroups
sl_api
sl_warehouse
sl_agent_config
sl_info "node-a  $SL_NS_A  $SL_ADDR_A  $SL_ADDR6_A   workloads: $JOB, $NOTEBOOK"
sl_info "node-b  $SL_NS_B  $SL_ADDR_B  $SL_ADDR6_B   api: nginx :80   warehouse: postgres :5432"
sl_info "cgroups under $SL_CG_ROOT, pins in $SL_PIN"

sl_step "Starting sluiced on node-a"
sl_info "config: $SL_SRC/deploy/demo/sluice.yaml (paths rewritten for this run)"
sl_info "policy: $SL_SRC/deploy/demo/policy.yaml"
sl_agent
sl_info "$(ctl_json status | jq -r '"sluiced running, pid \(.agent.pid); policy generation \(.policy.generation) live, default \(.policy.default)"')"

sl_step "The job calls the api (allowed: jobs-call-api, steered through sluiced)"
curl_code "$JOB" "http://$SL_ADDR_B/"
expect "job -> api over IPv4 answers 200" test "$RC:$OUT" = 0:200
curl_code "$JOB" "http://[$SL_ADDR6_B]/"
expect "job -> api over IPv6 answers 200" test "$RC:$OUT" = 0:200
expect "sluiced proxied the job's api connections" \
	test "$(ctl_json stats | jq --arg wl "$JOB_ID" \
		'[.[] | select(.workload == $wl and .service == "api") | .flows] | add // 0')" -ge 2

sl_step "The notebook calls the api (allowed: notebooks-call-api)"
curl_code "$NOTEBOOK" "http://$SL_ADDR_B/"
expect "notebook -> api answers 200" test "$RC:$OUT" = 0:200

sl_step "The job queries the warehouse (allowed: etl-reads-warehouse, role etl)"
run "$JOB" "${PSQL[@]}" -c 'SELECT now()'
expect "job -> warehouse query succeeds" test "$RC" = 0

sl_step "The notebook queries the warehouse (denied: no rule, default deny)"
run "$NOTEBOOK" "${PSQL[@]}" -c 'SELECT now()'
expect "notebook -> warehouse fails" test "$RC" != 0
expect "connect() was refused with EPERM" grep -q 'Operation not permitted' <<<"$OUT"

sl_step "A long query while we look at the live flows"
sl_show "node-a/$JOB" "${PSQL[@]}" -c 'SELECT pg_sleep(4)'
sl_info "(in the background)"
sl_in_cgroup "$SL_NS_A" "$JOB" "${PSQL[@]}" -c 'SELECT pg_sleep(4)' >/dev/null 2>&1 &
sleep_pid=$!
sleep 1
ctl flow list
expect "the open warehouse flow is listed" \
	test "$(ctl_json flow list | jq --arg wl "$JOB_ID" \
		'[.[] | select(.workload == $wl and .service == "warehouse" and .dport == 5432)] | length')" -ge 1
sleep_rc=0
wait "$sleep_pid" || sleep_rc=$?
expect "the 4 s query completed" test "$sleep_rc" = 0

sl_step "Violations: who was refused, and why"
ctl violation list
expect "the notebook's warehouse attempt is counted" \
	test "$(ctl_json violation list | jq --arg wl "$NOTEBOOK_ID" \
		'[.[] | select(.workload == $wl and .reason == "default-deny") | .count] | add // 0')" -ge 1

sl_step "Per-service statistics (flows, bytes, upstream connect latency)"
ctl stats

sl_step "Agent status"
ctl status

sl_step "What sluiced logged"
sed 's/^/   /' "$SL_AGENT_LOG"

sl_step "Stopping sluiced (SIGTERM)"
agent_rc=0
sl_agent_stop || agent_rc=$?
expect "sluiced exited cleanly" test "$agent_rc" = 0
expect "its pins are gone" test -z "$(ls -A "$SL_PIN" 2>/dev/null)"

printf '\n'
if ((${#failed[@]} > 0)); then
	printf '%sdemo: %d of %d checks FAILED:%s\n' "$SL_RED" "${#failed[@]}" \
		$((passed + ${#failed[@]})) "$SL_OFF"
	printf '   %s\n' "${failed[@]}"
	exit 1
fi
printf '%sdemo: all %d checks passed%s\n' "$SL_GREEN" "$passed" "$SL_OFF"
