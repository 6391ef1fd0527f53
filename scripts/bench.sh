#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# What the agent costs (sudo make bench): wrk on node A against nginx on
# node B, on the demo topology, three ways in one run:
#   direct        wrk in a cgroup sluiced does not manage (BPF attached, passes)
#   sluiced       wrk in the job's cgroup: connect() is steered through sluiced
#   nginx-stream  wrk through a plain nginx L4 proxy on node A, as a reference
# each with keep-alive connections and with one connection per request.
# Prints a table and writes it to BUILD/bench/results.txt.
#
# Usage: scripts/bench.sh [BUILD_DIR]     (default: build)
# Knobs: BENCH_DURATION (10s), BENCH_THREADS (2), BENCH_CONNS (50)

set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-50}
JOB=job-1234
DIRECT=unmanaged
PROXY_PORT=18080

build=${1:-build}
sl_init bench "$build"
out_dir=$build/bench
mkdir -p "$out_dir"
results=$out_dir/results.txt

# Prints "requests/s p50_ms p99_ms errors" from wrk --latency output.
parse_wrk()
{
	awk '
	function ms(v) {
		if (v ~ /us$/) return v / 1000
		if (v ~ /ms$/) return v + 0
		if (v ~ /m$/) return v * 60000
		if (v ~ /s$/) return v * 1000
		return v + 0
	}
	/^ +50%/ { p50 = ms($2) }
	/^ +99%/ { p99 = ms($2) }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { err += $5 }
	END {
		if (rps == "") exit 1
		printf "%s %.3f %.3f %d\n", rps, p50, p99, err
	}'
}

# Flows sluiced has proxied for the job so far (from the pinned stats).
agent_flows()
{
	sl_ctl -j stats | jq '[.[] | select(.workload == "spiffe://acme.example/job/1234") | .flows] | add // 0'
}

# bench LABEL CGROUP URL [WRK_ARGS...]: one wrk run; appends a table row.
rows=()
commands=()
bench()
{
	local label=$1 cg=$2 url=$3 raw row rps p50 p99 err

	shift 3
	local cmd=(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
	commands+=("$(printf '%-24s cgroup %-10s %s' "$label" "$cg" "$(sl_quote "${cmd[@]}")")")
	printf '   %-24s ' "$label"
	raw=$(sl_in_cgroup "$SL_NS_A" "$cg" "${cmd[@]}" 2>&1) || {
		printf '\n%s\n' "$raw" >&2
		sl_die "wrk failed for $label"
	}
	row=$(parse_wrk <<<"$raw") || {
		printf '\n%s\n' "$raw" >&2
		sl_die "cannot parse wrk's output for $label"
	}
	read -r rps p50 p99 err <<<"$row"
	printf '%10.1f req/s   p50 %7.3f ms   p99 %8.3f ms   %d errors\n' "$rps" "$p50" "$p99" "$err"
	rows+=("$label $row")
	sleep 1
}

sl_step "Setting up (wrk ${DURATION} per run, $THREADS threads, $CONNS connections)"
sl_bpffs
sl_topology
# One connection per request runs through many ephemeral ports.
sl_in "$SL_NS_A" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535"
sl_cgroups "$DIRECT"
sl_api
sl_nginx proxy "$SL_NS_A" "
	load_module /usr/lib/nginx/modules/ngx_stream_module.so;
	stream {
	    server {
	        listen 127.0.0.1:$PROXY_PORT;
	        proxy_pass $SL_ADDR_B:80;
	    }
	}"
sl_agent_config
sl_agent

sl_step "Running wrk (requests/s, p50 ms, p99 ms, errors)"
url=http://$SL_ADDR_B/
proxy_url=http://127.0.0.1:$PROXY_PORT/
close=(-H 'Connection: close')

flows_before=$(agent_flows)
bench "keep-alive direct" "$DIRECT" "$url"
bench "keep-alive sluiced" "$JOB" "$url"
flows_keepalive=$(agent_flows)
bench "keep-alive nginx-stream" "$DIRECT" "$proxy_url"
bench "conn-close direct" "$DIRECT" "$url" "${close[@]}"
bench "conn-close sluiced" "$JOB" "$url" "${close[@]}"
bench "conn-close nginx-stream" "$DIRECT" "$proxy_url" "${close[@]}"
# One connection, one request at a time: what the agent adds to a request
# when nothing queues (the loaded rows' p99 is mostly queueing).
bench "one-conn direct" "$DIRECT" "$url" -t1 -c1
bench "one-conn sluiced" "$JOB" "$url" -t1 -c1

# A sluiced row that never went through the agent would be a fake result.
((flows_keepalive - flows_before >= CONNS)) ||
	sl_die "sluiced proxied $((flows_keepalive - flows_before)) flows for $CONNS wrk connections"

# Prints what sluiced adds to p50 and p99 on the one-connection rows.
added_latency()
{
	local r kind label rps p50 p99 err d50= d99= s50= s99=

	for r in "${rows[@]}"; do
		read -r kind label rps p50 p99 err <<<"$r"
		[[ $kind == one-conn ]] || continue
		if [[ $label == direct ]]; then
			d50=$p50 d99=$p99
		elif [[ $label == sluiced ]]; then
			s50=$p50 s99=$p99
		fi
	done
	[[ -n $d50 && -n $s50 ]] || return 0
	awk -v d50="$d50" -v d99="$d99" -v s50="$s50" -v s99="$s99" 'BEGIN {
		printf "\nadded by sluiced, one connection: p50 %+.0f us, p99 %+.0f us\n",
			(s50 - d50) * 1000, (s99 - d99) * 1000
	}'
}

report()
{
	local r kind label rps p50 p99 err
	local -A direct

	printf 'sluice bench, %s, kernel %s, %s CPUs, sluice %s\n' "$(date -u +%FT%TZ)" \
		"$(uname -r)" "$(nproc)" "$(git -C "$SL_SRC" describe --always --dirty 2>/dev/null || echo '?')"
	printf 'wrk -t%s -c%s -d%s against nginx (1 worker) on node B, client on node A (veth)\n' \
		"$THREADS" "$CONNS" "$DURATION"
	printf 'direct: wrk in a cgroup under the agent'"'"'s cgroup root that no workload owns\n'
	printf 'sluiced: wrk in job-1234'"'"'s cgroup, every connection steered through sluiced\n'
	printf 'nginx-stream: wrk through an nginx L4 proxy (stream, 1 worker) on node A\n'
	printf 'conn-close rows: one TCP connection per request, so requests/s = connections/s\n\n'
	printf '%-24s %12s %9s %9s %7s %10s\n' scenario requests/s p50_ms p99_ms errors vs_direct
	for r in "${rows[@]}"; do
		read -r kind label rps p50 p99 err <<<"$r"
		[[ $label == direct ]] && direct[$kind]=$rps
		printf '%-24s %12.1f %9.3f %9.3f %7d %10.2f\n' "$kind $label" "$rps" "$p50" "$p99" \
			"$err" "$(awk -v a="$rps" -v b="${direct[$kind]}" 'BEGIN { print a / b }')"
	done
	added_latency
	printf '\nreproduce: sudo make bench BUILD=%s BENCH_DURATION=%s BENCH_THREADS=%s BENCH_CONNS=%s\n' \
		"$build" "$DURATION" "$THREADS" "$CONNS"
	printf 'wrk runs (in node A'"'"'s network namespace, from the given cgroup):\n'
	printf '  %s\n' "${commands[@]}"
}

sl_step "Results (also in $results)"
report | tee "$results"
