#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# What the agents cost (sudo make bench): wrk on node A against nginx on
# node B, on the demo topology, every way in one run:
#   direct        no agent running, plain TCP
#   nginx-stream  through an nginx L4 proxy on node A (plain TCP)
#   sluiced       through sluiced on node A only, no identity (plain TCP)
#   nginx-pair    through two nginx stream proxies with mutual TLS between
#                 them (deploy/bench), the reference sidecar pair
#   haproxy-h2    through two haproxy HTTP proxies with HTTP/2 over pooled
#                 mutual TLS connections between them (deploy/bench), the
#                 reference multiplexed pair (flows as streams, as HBONE)
#   sluice-mtls   through sluiced on node A, the mTLS tunnel and sluiced on
#                 node B (the demo configs; TLS session resumption on)
#   sluice-full   the same with identity.resumption: false on node A: a full
#                 TLS handshake for every new connection
#   sluice-l4     sluice-mtls with the api as protocol: tcp (the demo policy
#                 without its L7 rules and edge): against sluice-mtls, whose
#                 api is protocol: http, what deciding each request costs
#   sluice-otlp   sluice-mtls with both agents exporting spans (otlp:) to a
#                 collector on node A (an nginx answering 200 to every OTLP
#                 POST, in a cgroup of its own, so its CPU is not the rows')
#   sluiced-filled  sluiced with 10,000 live flows and 1,000 workload/service
#                 pairs in its maps (tests/load/mapfill), not scraped
#   sluiced-scrape  the same, /metrics scraped every BENCH_SCRAPE_EVERY (1s)
#                 during the row: against sluiced-filled, the scrape's cost
# each with keep-alive connections, one connection per request, and one
# connection at a time; and the edge (issue 12): wrk through nginx on node
# A with the config sluice renders from the demo policy's edge: section,
# to a local nginx `return 200` (the same upstream for every row), with
# keep-alive connections and alice's IdP token:
#   edge-none     no authorization (auth_request off)
#   edge-204      auth_request to a trivial nginx answering 204 at once: the
#                 floor any auth_request design pays
#   edge-warm     auth_request to sluiced, its token cache warm
#   edge-cold     the same with edge.cache.max: 0: a signature check (and
#                 an assertion signed) per request The rows run in rounds (agents restarted between
# the phases that need another config), so drift on a shared machine hits
# every row alike; the table gives each figure's median over the rounds.
# Prints the table and writes it to BUILD/bench/results.txt, with wrk's
# output of every run in BUILD/bench/raw/.
#
# Usage: scripts/bench.sh [BUILD_DIR]     (default: build)
# Knobs: BENCH_DURATION (3s), BENCH_ROUNDS (3), BENCH_THREADS (2),
#        BENCH_CONNS (50), BENCH_PHASES (all: "off plain scrape mtls l4 otlp
#        full edge edgecold"; "edge edgecold" runs the edge rows alone,
#        "mtls l4" the L7 against L4 comparison),
#        BENCH_SCRAPE_EVERY (1s: Prometheus' default is 15 times rarer),
#        BENCH_CPUS (LOAD:MEASURED, taskset CPU lists; default 0:1-N on a
#        machine with more than one CPU; off: no placement)

set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${BENCH_DURATION:-3s}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-50}
DIRECT=unmanaged
STREAM_PORT=18080
PAIR_PORT=18443
H2_PORT=18444
H2_STATS_PORT=18445
COLLECTOR_PORT=18446
COLLECTOR=otlp-collector
SCRAPE_EVERY=${BENCH_SCRAPE_EVERY:-1s}
# Every agent's, listen.http's default (the demo configs keep it), in its node.
METRICS_URL=http://127.0.0.1:15020/metrics
# The edge rows: one nginx per kind of authorization, each on its own port
# and in its own cgroup, the upstream they share, the 204 authorizer.
EDGE_UP_PORT=18090
AUTHZ_204_PORT=18091
declare -A EDGE_PORT=([edge-none]=18081 [edge-204]=18082 [edge-warm]=18083 [edge-cold]=18083)
declare -A EDGE_CG=([edge-none]=edge-none [edge-204]=edge-204 [edge-warm]=edge-sluice
	[edge-cold]=edge-sluice)
EDGE_UP=edge-up
AUTHZ_204=authz-204
SIDECAR=sidecar
HAPROXY=haproxy
STREAM=nginx-stream

build=${1:-build}
sl_init bench "$build"

# Every row runs on the same CPUs: wrk (and the scraper and the OTLP
# collector, as a Prometheus or a collector elsewhere would) on LOAD_CPUS,
# everything it measures (agents, proxies, the nginx on node B, the IdP) on
# MEASURED_CPUS, inherited from this shell. Unplaced, the scheduler moved wrk onto the proxies' core from one
# round to the next, and a row's rounds spread 3x.
LOAD_CPUS=
MEASURED_CPUS=
placement()
{
	local spec=${BENCH_CPUS:-} last=$(($(getconf _NPROCESSORS_ONLN) - 1))

	if [[ -z $spec ]]; then
		((last > 0)) || return 0
		spec=0:1
		((last == 1)) || spec=0:1-$last
	fi
	[[ $spec != off ]] || return 0
	[[ $spec == ?*:?* ]] || sl_die "BENCH_CPUS=$spec: want LOAD:MEASURED CPU lists, e.g. 0:1"
	LOAD_CPUS=${spec%%:*}
	MEASURED_CPUS=${spec#*:}
	taskset -c "$LOAD_CPUS" true 2>/dev/null ||
		sl_die "BENCH_CPUS=$spec: cannot run on CPUs $LOAD_CPUS (taskset -c $LOAD_CPUS)"
	taskset -pc "$MEASURED_CPUS" $$ >/dev/null 2>&1 ||
		sl_die "BENCH_CPUS=$spec: cannot run on CPUs $MEASURED_CPUS (taskset -pc $MEASURED_CPUS)"
}
placement
# What runs a command on the load generator's CPUs.
ON_LOAD=()
[[ -z $LOAD_CPUS ]] || ON_LOAD=(taskset -c "$LOAD_CPUS")
out_dir=$build/bench
raw_dir=$out_dir/raw
results=$out_dir/results.txt
rm -rf "$raw_dir"
mkdir -p "$raw_dir"

AGENT_CG=$(sed -n 's/^agent_cgroup: *//p' "${SL_TEMPLATE[a]}")
[[ $AGENT_CG == "$(sed -n 's/^agent_cgroup: *//p' "${SL_TEMPLATE[b]}")" ]] ||
	sl_die "the demo configs name different agent_cgroups: the CPU columns read one"

# What each path is: wrk's cgroup on node A, its URL, and the cgroups
# (NODE:CGROUP) of the proxies whose CPU it costs.
declare -A CGROUP=(
	[direct]=$DIRECT [nginx-stream]=$DIRECT [sluiced]=$SL_JOB
	[nginx-pair]=$DIRECT [haproxy-h2]=$DIRECT [sluice-mtls]=$SL_JOB [sluice-full]=$SL_JOB
	[sluice-l4]=$SL_JOB
	[sluice-otlp]=$SL_JOB [sluiced-scrape]=$SL_JOB [sluiced-filled]=$SL_JOB
	[edge-none]=$DIRECT [edge-204]=$DIRECT [edge-warm]=$DIRECT [edge-cold]=$DIRECT
)
declare -A URL=(
	[direct]=http://$SL_ADDR_B/ [nginx-stream]=http://127.0.0.1:$STREAM_PORT/
	[sluiced]=http://$SL_ADDR_B/ [nginx-pair]=http://127.0.0.1:$PAIR_PORT/
	[haproxy-h2]=http://127.0.0.1:$H2_PORT/
	[sluice-mtls]=http://$SL_ADDR_B/ [sluice-full]=http://$SL_ADDR_B/
	[sluice-l4]=http://$SL_ADDR_B/
	[sluice-otlp]=http://$SL_ADDR_B/ [sluiced-scrape]=http://$SL_ADDR_B/
	[sluiced-filled]=http://$SL_ADDR_B/
	[edge-none]=http://127.0.0.1:${EDGE_PORT[edge-none]}/api/bench
	[edge-204]=http://127.0.0.1:${EDGE_PORT[edge-204]}/api/bench
	[edge-warm]=http://127.0.0.1:${EDGE_PORT[edge-warm]}/api/bench
	[edge-cold]=http://127.0.0.1:${EDGE_PORT[edge-cold]}/api/bench
)
declare -A PROXIES=(
	[direct]='' [nginx-stream]=a:$STREAM [sluiced]=a:$AGENT_CG
	[nginx-pair]="a:$SIDECAR b:$SIDECAR" [haproxy-h2]="a:$HAPROXY b:$HAPROXY"
	[sluice-mtls]="a:$AGENT_CG b:$AGENT_CG"
	[sluice-full]="a:$AGENT_CG b:$AGENT_CG"
	[sluice-l4]="a:$AGENT_CG b:$AGENT_CG"
	[sluice-otlp]="a:$AGENT_CG b:$AGENT_CG" [sluiced-scrape]=a:$AGENT_CG
	[sluiced-filled]=a:$AGENT_CG
	[edge-none]=a:${EDGE_CG[edge-none]} [edge-204]=a:${EDGE_CG[edge-204]}
	[edge-warm]=a:${EDGE_CG[edge-warm]} [edge-cold]=a:${EDGE_CG[edge-cold]}
)
# The edge rows' authorizer, whose CPU is counted apart from nginx's.
declare -A AUTHZ=([edge-204]=a:$AUTHZ_204 [edge-warm]=a:$AGENT_CG [edge-cold]=a:$AGENT_CG)
# The rows of each phase, PATH:KIND; a phase is which agents run, with
# which config.
read -r -a PHASES <<<"${BENCH_PHASES:-off plain scrape mtls l4 otlp full edge edgecold}"
declare -A PHASE_ROWS=(
	[off]="direct:keep-alive direct:conn-close direct:1-conn direct:1-conn-close
	       nginx-stream:keep-alive nginx-stream:conn-close
	       nginx-pair:keep-alive nginx-pair:conn-close nginx-pair:1-conn nginx-pair:1-conn-close
	       haproxy-h2:keep-alive haproxy-h2:conn-close haproxy-h2:1-conn haproxy-h2:1-conn-close"
	[plain]="sluiced:keep-alive sluiced:conn-close sluiced:1-conn sluiced:1-conn-close"
	[mtls]="sluice-mtls:keep-alive sluice-mtls:conn-close sluice-mtls:1-conn
		sluice-mtls:1-conn-close"
	[scrape]="sluiced-filled:keep-alive sluiced-scrape:keep-alive sluiced-filled:conn-close
		  sluiced-scrape:conn-close"
	[l4]="sluice-l4:keep-alive sluice-l4:1-conn"
	[otlp]="sluice-otlp:keep-alive sluice-otlp:conn-close sluice-otlp:1-conn-close"
	[full]="sluice-full:keep-alive sluice-full:conn-close sluice-full:1-conn-close"
	[edge]="edge-none:keep-alive edge-204:keep-alive edge-warm:keep-alive"
	[edgecold]="edge-cold:keep-alive"
)

# kind_args KIND: wrk's options for a kind of row, in ARGS.
kind_args()
{
	case $1 in
	keep-alive) ARGS=(-t"$THREADS" -c"$CONNS") ;;
	conn-close) ARGS=(-t"$THREADS" -c"$CONNS" -H 'Connection: close') ;;
	1-conn) ARGS=(-t1 -c1) ;;
	1-conn-close) ARGS=(-t1 -c1 -H 'Connection: close') ;;
	*) sl_die "unknown kind of row $1" ;;
	esac
}

# Prints "requests/s p50_ms p99_ms errors requests" from wrk --latency.
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
	/ requests in / { n = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { err += $5 }
	END {
		if (rps == "" || n == "") exit 1
		printf "%s %.3f %.3f %d %d\n", rps, p50, p99, err, n
	}'
}

# CPU microseconds used so far by the cgroups given as NODE:CGROUP.
cpu_usec()
{
	local spec sum=0 v

	for spec in "$@"; do
		v=$(awk '$1 == "usage_usec" { print $2 }' \
			"${SL_CG_ROOT[${spec%%:*}]}/${spec#*:}/cpu.stat" 2>/dev/null) || v=0
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# Bytes node A's veth has sent and received so far.
wire_bytes()
{
	ip -n "${SL_NS[a]}" -s -j link show dev veth0 |
		jq '.[0].stats64.rx.bytes + .[0].stats64.tx.bytes'
}

# Flows sluiced on node A has proxied for the job so far (pinned stats).
agent_flows()
{
	sl_ctl a -j stats | jq --arg wl "$SL_JOB_ID" \
		'[.[] | select(.workload == $wl) | .flows] | add // 0'
}

SIDECAR_LOG=$SL_TMP/$SIDECAR-b/logs/tls.log

# The audit lines of the flows node B's agent let in: one per flow,
# written when it closes.
ALLOWED='.direction == "inbound" and .verdict == "allow"'

# "resumed flows" of the allowed flows after OFFSET in node B's audit.
audit_resumed()
{
	sl_audit_lines "$1" |
		jq -rn "[inputs | select($ALLOWED)]"' | "\(map(select(.resumed)) | length) \(length)"'
}

# h2_frontend NODE FRONTEND: "connections requests" FRONTEND of NODE's
# haproxy has accepted so far (its stats page, as CSV).
h2_frontend()
{
	sl_in "$1" curl -sf --max-time 5 "http://127.0.0.1:$H2_STATS_PORT/;csv" |
		awk -F, -v fe="$2" '
		NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
		$1 == fe && $2 == "FRONTEND" { print $col["conn_tot"], $col["req_tot"]; found = 1 }
		END { exit !found }'
}

# h2_counters: H2_NOW=(connections and requests node A's haproxy has
# accepted so far, then node B's).
h2_counters()
{
	local a b

	a=$(h2_frontend a plain) || sl_die "cannot read the stats of node A's haproxy"
	b=$(h2_frontend b mtls) || sl_die "cannot read the stats of node B's haproxy"
	read -r -a H2_NOW <<<"$a $b"
}

# Per kind of haproxy-h2 row, over the rounds: connections wrk opened to
# node A's haproxy, TLS connections node B's accepted, requests it passed.
declare -A H2_CLIENT H2_TLS H2_REQ

# h2_count KIND N BEFORE...: adds what the pair's counters moved by since
# BEFORE (H2_NOW then) in a row where wrk completed N requests.
h2_count()
{
	local kind=$1 n=$2 before=("${@:3}") passed

	h2_counters
	passed=$((H2_NOW[3] - before[3]))
	# As for the agents: the requests must have crossed node B's half.
	((passed >= n)) ||
		sl_die "haproxy-h2 $kind: node B's haproxy passed $passed requests for wrk's $n"
	H2_CLIENT[$kind]=$((${H2_CLIENT[$kind]:-0} + H2_NOW[0] - before[0]))
	H2_TLS[$kind]=$((${H2_TLS[$kind]:-0} + H2_NOW[2] - before[2]))
	H2_REQ[$kind]=$((${H2_REQ[$kind]:-0} + passed))
}

# Figures of every run, per "PATH KIND": space-separated, one per round
# (F_ACPU: the edge rows' authorizer).
declare -A F_RPS F_P50 F_P99 F_ERR F_CPU F_ACPU F_WIRE F_LOAD
# Per sluice path, over all its rows: flows node B allowed, and how many
# of them resumed a TLS session.
declare -A N_FLOWS N_RESUMED
commands=()
declare -A seen_cmd
# sluice-otlp: spans each node's agent exported and dropped, over the
# rounds (both agents restart with each phase, so their counters do).
declare -A OTLP_EXPORTED OTLP_DROPPED

# run_row PATH KIND ROUND: one wrk run; records its figures.
run_row()
{
	local path=$1 kind=$2 round=$3 key="$1 $2" raw row rps p50 p99 err n
	local cpu0 cpu1 wire0 wire1 load flows0=0 flows=0 audit0=0 want i resumed h2_before=()
	local acpu0=0 acpu1=0 edge0=0 decided

	kind_args "$kind"
	# The edge rows send alice's token (read from its file by wrk's script,
	# so it is on no command line) and the edge's Host.
	[[ $path != edge-* ]] || ARGS+=(-s "$EDGE_LUA")
	local cmd=(wrk "${ARGS[@]}" -d"$DURATION" --latency "${URL[$path]}")
	cmd=("${ON_LOAD[@]}" "${cmd[@]}")
	if [[ -z ${seen_cmd[$key]:-} ]]; then
		seen_cmd[$key]=1
		commands+=("$(printf '%-26s cgroup %-10s %s' "$key" "${CGROUP[$path]}" \
			"$(sl_quote "${cmd[@]}")")")
	fi
	# Before the CPU is read: serving its stats page costs haproxy CPU.
	if [[ $path == haproxy-h2 ]]; then
		h2_counters
		h2_before=("${H2_NOW[@]}")
	fi
	# shellcheck disable=SC2086 # PROXIES holds a list
	cpu0=$(cpu_usec ${PROXIES[$path]})
	[[ -z ${AUTHZ[$path]:-} ]] || acpu0=$(cpu_usec "${AUTHZ[$path]}")
	[[ $path != edge-warm && $path != edge-cold ]] || edge0=$(sl_file_size "$SL_AUDIT_A")
	wire0=$(wire_bytes)
	[[ $path != sluiced* ]] || flows0=$(agent_flows)
	[[ $path != sluice-* ]] || audit0=$(sl_file_size "$SL_AUDIT_B")
	load=$(cut -d' ' -f1 /proc/loadavg)
	printf '   %-26s ' "$key"
	raw=$(sl_in_cgroup a "${CGROUP[$path]}" "${cmd[@]}" 2>&1) || {
		printf '\n%s\n' "$raw" >&2
		sl_die "wrk failed for $key"
	}
	printf '%s\n' "$raw" >"$raw_dir/${path}_${kind}_r$round.txt"
	# shellcheck disable=SC2086
	cpu1=$(cpu_usec ${PROXIES[$path]})
	[[ -z ${AUTHZ[$path]:-} ]] || acpu1=$(cpu_usec "${AUTHZ[$path]}")
	wire1=$(wire_bytes)
	row=$(parse_wrk <<<"$raw") || {
		printf '\n%s\n' "$raw" >&2
		sl_die "cannot parse wrk's output for $key"
	}
	read -r rps p50 p99 err n <<<"$row"
	((n > 0)) || sl_die "$key: wrk completed no request"
	[[ $path != haproxy-h2 ]] || h2_count "$kind" "$n" "${h2_before[@]}"

	# A row that never went through the agents would be a fake result:
	# every connection wrk made must be a flow the agents carried.
	case $kind in
	keep-alive) want=$CONNS ;;
	1-conn) want=1 ;;
	*) want=$n ;;
	esac
	if [[ $path == sluiced* ]]; then
		flows=$(($(agent_flows) - flows0))
	elif [[ $path == sluice-* ]]; then
		# Allowed flows are audited when they close, just after wrk exits.
		for ((i = 0; i < 20; i++)); do
			flows=$(sl_audit_count "$ALLOWED" "$audit0")
			((flows >= want)) && break
			sleep 0.1
		done
	fi
	if [[ $path == sluice* ]] && ((flows < want)); then
		sl_die "$key: the agents carried $flows flows for $want wrk connections"
	fi
	# Likewise every request of a sluice edge row must be one the agent
	# decided (and allowed): one audit line each.
	if [[ $path == edge-warm || $path == edge-cold ]]; then
		decided=$(sl_audit_lines "$edge0" "$SL_AUDIT_A" |
			grep -c '"direction":"edge",.*"verdict":"allow"' || true)
		((decided >= n)) ||
			sl_die "$key: node A's agent allowed $decided requests for wrk's $n"
	fi
	if [[ $path == sluice-* ]]; then
		read -r resumed flows <<<"$(audit_resumed "$audit0")"
		N_RESUMED[$path]=$((${N_RESUMED[$path]:-0} + resumed))
		N_FLOWS[$path]=$((${N_FLOWS[$path]:-0} + flows))
	fi

	printf '%10.1f req/s  p50 %7.3f ms  p99 %8.3f ms  %4d errors  load %s\n' \
		"$rps" "$p50" "$p99" "$err" "$load"
	F_RPS[$key]+=" $rps"
	F_P50[$key]+=" $p50"
	F_P99[$key]+=" $p99"
	F_ERR[$key]+=" $err"
	F_CPU[$key]+=" $(awk -v c=$((cpu1 - cpu0)) -v n="$n" 'BEGIN { printf "%.1f", c / n }')"
	F_ACPU[$key]+=" $(awk -v c=$((acpu1 - acpu0)) -v n="$n" 'BEGIN { printf "%.1f", c / n }')"
	F_WIRE[$key]+=" $(awk -v b=$((wire1 - wire0)) -v n="$n" 'BEGIN { printf "%.0f", b / n }')"
	F_LOAD[$key]+=" $load"
	sleep 0.5
}

# The agent configs of the phases, derived from the demo's node A config so
# the bench measures what the demo runs.
config_plain=${SL_DIR[a]}/sluice-plain.yaml
config_full=${SL_DIR[a]}/sluice-full.yaml
config_cold=${SL_DIR[a]}/sluice-edge-cold.yaml
config_otlp_a=${SL_DIR[a]}/sluice-otlp.yaml
config_otlp_b=${SL_DIR[b]}/sluice-otlp.yaml
config_l4_a=${SL_DIR[a]}/sluice-l4.yaml
config_l4_b=${SL_DIR[b]}/sluice-l4.yaml
# l4_policy FILE: the demo policy with the api as protocol: tcp: without
# the protocol line, the rules with methods or paths (they need http) and
# the edge section (it routes to http services).
l4_policy()
{
	awk '/^[^ \t#]/ { edge = /^edge:/ }
	     edge { next }
	     /^    protocol: http$/ { next }
	     /^  - name:/ && inrules { flush(); buf = $0 "\n"; l7 = 0; next }
	     /^rules:/ { inrules = 1; print; next }
	     inrules && /^    (methods|paths):/ { l7 = 1 }
	     inrules && /^    / { buf = buf $0 "\n"; next }
	     { flush(); print }
	     function flush() { if (buf != "" && !l7) printf "%s", buf; buf = "" }
	     END { flush() }' "$1"
}
make_configs()
{
	# Issue 2's agent: no identity, no peers, so flows go plain TCP; no
	# edge (it needs identity.oidc), no workload OIDC clients, and
	# listen.http at its default (127.0.0.1:15020: /metrics only, the CA
	# and keys being identity's).
	awk '/^[^ \t#]/ { skip = /^(identity|peers|edge):/ }
	     /^  http:/ { next }
	     /^    oidc:/ { client = 1; next }
	     client && /^      / { next }
	     { client = 0 }
	     !skip' "${SL_CONFIG[a]}" >"$config_plain"
	sed 's/^\(  resumption:\) true$/\1 false/' "${SL_CONFIG[a]}" >"$config_full"
	grep -q '^  resumption: false$' "$config_full" ||
		sl_die "${SL_TEMPLATE[a]} has no \"  resumption: true\" line under identity to turn off"
	awk '{ print } /^edge:$/ { print "  cache:"; print "    max: 0" }' "${SL_CONFIG[a]}" \
		>"$config_cold"
	grep -q '^    max: 0$' "$config_cold" || sl_die "${SL_TEMPLATE[a]} has no edge: section"
	local n
	for n in a b; do
		{
			cat "${SL_CONFIG[$n]}"
			printf 'otlp:\n  endpoint: http://%s:%d\n' "$SL_ADDR_A" "$COLLECTOR_PORT"
		} >"${SL_DIR[$n]}/sluice-otlp.yaml"
		l4_policy "${SL_DIR[$n]}/policy.yaml" >"${SL_DIR[$n]}/policy-l4.yaml"
		grep -q 'protocol: http' "${SL_DIR[$n]}/policy-l4.yaml" &&
			sl_die "policy-l4.yaml of node $n still has an http service"
		sed 's/^policy: policy.yaml$/policy: policy-l4.yaml/' "${SL_CONFIG[$n]}" \
			>"${SL_DIR[$n]}/sluice-l4.yaml"
		grep -q '^policy: policy-l4.yaml$' "${SL_DIR[$n]}/sluice-l4.yaml" ||
			sl_die "${SL_TEMPLATE[$n]} has no \"policy: policy.yaml\" line"
	done
}

# The spans NODE's agent exported and dropped (or had rejected), as its
# /metrics says: "exported dropped".
otlp_spans()
{
	sl_in "$1" curl -sf --max-time 5 "$METRICS_URL" | awk '
		/^sluice_otlp_spans_total\{result="exported"\}/ { e = $2 }
		/^sluice_otlp_spans_total\{result="(dropped|rejected)/ { d += $2 }
		END { printf "%d %d\n", e, d }'
}

# Scrapes node A's /metrics every SCRAPE_EVERY until stopped, each scrape's
# time (curl's time_total, ms) into SCRAPE_TIMES.
SCRAPE_TIMES=$raw_dir/scrape-times.txt
SCRAPE_FAILED=$raw_dir/scrape-failed.txt
scraper_start()
{
	(
		while :; do
			# A failed scrape is counted apart: its time says nothing.
			sl_in a "${ON_LOAD[@]}" curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 \
				"$METRICS_URL" | awk -v failed="$SCRAPE_FAILED" '
				$1 == 200 { printf "%.1f\n", $2 * 1000; next }
				{ print "HTTP " $1 >>failed }' >>"$SCRAPE_TIMES"
			sleep "$SCRAPE_EVERY"
		done
	) &
	SCRAPER_PID=$!
}

# scrape_cpu: node A's agent's CPU per scrape with no load (ms), over 5
# scrapes: the cost the scraped rows' ratio is too noisy to resolve.
SCRAPE_CPU=
scrape_cpu()
{
	local c0 c1 i

	c0=$(cpu_usec "a:$AGENT_CG")
	for ((i = 0; i < 5; i++)); do
		sl_in a "${ON_LOAD[@]}" curl -sf -o /dev/null --max-time 5 "$METRICS_URL" ||
			sl_die "node A's /metrics did not answer"
	done
	c1=$(cpu_usec "a:$AGENT_CG")
	awk -v c=$((c1 - c0)) 'BEGIN { printf "%.1f", c / 5000 }'
}

scraper_stop()
{
	[[ -n ${SCRAPER_PID:-} ]] || return 0
	kill "$SCRAPER_PID" 2>/dev/null || true
	wait "$SCRAPER_PID" 2>/dev/null || true
	SCRAPER_PID=
}

# stop_agent NODE: an agent that does not exit cleanly on SIGTERM after a
# phase ends the bench with its log.
stop_agent()
{
	local rc=0

	sl_agent_stop "$1" || rc=$?
	((rc == 0)) && return 0
	tail -n 20 "${SL_AGENT_LOG[$1]}" | sed 's/^/   sluiced: /' >&2
	sl_die "sluiced on ${SL_NODE[$1]} exited with status $rc when stopped"
}

# warm_tunnel: one request through both agents once node A's has started,
# as the nginx pair's check at setup is for the pair: node A then holds a
# TLS session for node B, as the pair's client half does, and the first row
# of the phase starts its connections the way the later rows do (resumed,
# or full handshakes with resumption off) rather than with no session at all.
warm_tunnel()
{
	local audit0

	audit0=$(sl_file_size "$SL_AUDIT_B")
	sl_in_cgroup a "$SL_JOB" curl -sf -o /dev/null --max-time 5 "${URL[sluice-mtls]}" ||
		sl_die "no request crosses the agents: $(tail -n3 "${SL_AGENT_LOG[a]}")"
	# Its audit line is written at close: before the next row counts.
	sl_audit_wait "$ALLOWED" 1 "$audit0" || true
}

# warm_edge: one request through the edge's nginx to node A's agent once
# it has started, so the first edge row starts with the IdP's keys fetched
# (and, with the cache on, alice's token verified), as the later ones do.
warm_edge()
{
	local i

	for ((i = 0; i < 100; i++)); do
		sl_in a curl -sf -o /dev/null --max-time 5 -H "@$SL_USER_DIR/alice.hdr" \
			-H "Host: $SL_EDGE_HOST" "${URL[edge-warm]}" && return 0
		sleep 0.1
	done
	sl_die "no request passes the edge: $(tail -n3 "${SL_AGENT_LOG[a]}")"
}

# edge_variant NAME EDIT...: one edge nginx (1 worker) in node A's cgroup
# NAME: the demo's outer config (deploy/demo/edge-nginx.conf) around the
# config sluicectl renders from the demo policy, changed by the sed
# commands EDIT (each s|FROM|TO|); its upstream the local nginx.
edge_variant()
{
	local name=$1 dir=$SL_TMP/$1 edit to
	local edits=("s|server $SL_ADDR_B:80;|server 127.0.0.1:$EDGE_UP_PORT;|" "${@:2}")

	mkdir -p "$dir/logs" "$dir/tmp"
	printf '%s\n' "$EDGE_RENDERED" >"$dir/edge.conf"
	# One edit at a time, and each must have hit: a variant that is not
	# what its row says would be a fake result.
	for edit in "${edits[@]}"; do
		to=${edit#s|*|}
		to=${to%|*}
		sed -i "$edit" "$dir/edge.conf"
		grep -qF -- "$to" "$dir/edge.conf" ||
			sl_die "edge variant $name: \"$edit\" changed nothing in the rendered config"
	done
	sed -e "s|@DIR@|$dir|g" -e "s|include @RENDER_DIR@/live.conf;|include $dir/edge.conf;|" \
		"$SL_SRC/deploy/demo/edge-nginx.conf" >"$dir/nginx.conf"
	sl_in_cgroup a "$name" nginx -q -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" ||
		sl_die "nginx $name did not start: $(tail -n3 "$dir/logs/error.log")"
	sl_track_pidfile "$dir/nginx.pid" "nginx $name"
}

# The edge rows' nginx: the shared upstream, the 204 authorizer, and one
# edge per kind of authorization, all on node A.
start_edges()
{
	local p

	sl_nginx "$EDGE_UP" a "
		http {
		    access_log off;
		    keepalive_requests 1000000;
		    client_body_temp_path $SL_TMP/$EDGE_UP/tmp/body;
		    proxy_temp_path $SL_TMP/$EDGE_UP/tmp/proxy;
		    large_client_header_buffers 4 16k;
		    server {
		        listen 127.0.0.1:$EDGE_UP_PORT;
		        location / { return 200 \"ok\\n\"; }
		    }
		}" "$EDGE_UP"
	sl_nginx "$AUTHZ_204" a "
		http {
		    access_log off;
		    keepalive_requests 1000000;
		    client_body_temp_path $SL_TMP/$AUTHZ_204/tmp/body;
		    proxy_temp_path $SL_TMP/$AUTHZ_204/tmp/proxy;
		    server {
		        listen 127.0.0.1:$AUTHZ_204_PORT;
		        location / { return 204; }
		    }
		}" "$AUTHZ_204"
	EDGE_RENDERED=$(sl_ctl a edge render "${SL_DIR[a]}/policy.yaml" -c "${SL_CONFIG[a]}") ||
		sl_die "sluicectl edge render failed: $EDGE_RENDERED"
	p="s|listen $SL_EDGE_PORT|listen 127.0.0.1:"
	edge_variant "${EDGE_CG[edge-none]}" "${p}${EDGE_PORT[edge-none]}|g" \
		"s|auth_request /_sluice/authz;|auth_request off;|"
	edge_variant "${EDGE_CG[edge-204]}" "${p}${EDGE_PORT[edge-204]}|g" \
		"s|server unix:[^;]*;|server 127.0.0.1:$AUTHZ_204_PORT;|"
	edge_variant "${EDGE_CG[edge-warm]}" "${p}${EDGE_PORT[edge-warm]}|g"
	EDGE_LUA=$SL_TMP/edge.lua
	cat >"$EDGE_LUA" <<-EOF
		local f = assert(io.open("$SL_USER_DIR/alice.token"))
		wrk.headers["Authorization"] = "Bearer " .. f:read("*l")
		f:close()
		wrk.headers["Host"] = "$SL_EDGE_HOST"
	EOF
	for p in edge-none edge-204; do
		sl_in a curl -sf -o /dev/null --max-time 5 -H "Host: $SL_EDGE_HOST" "${URL[$p]}" ||
			sl_die "$p does not reach its upstream: $(tail -n3 "$SL_TMP/${EDGE_CG[$p]}/logs/error.log")"
	done
}

# start_haproxy NAME NODE TEMPLATE SED_ARGS...: haproxy in NODE's $HAPROXY
# cgroup, its config TEMPLATE filled in by SED_ARGS and the node's paths,
# with the node's certificate and key in one PEM, as haproxy wants them.
start_haproxy()
{
	local name=$1 node=$2 template=$3 dir=$SL_TMP/$1 pki=${SL_DIR[$2]}/pki

	shift 3
	mkdir -p "$dir"
	(umask 077 && cat "$pki/node.crt" "$pki/node.key" >"$dir/node.pem")
	sed "$@" -e "s|@PEM@|$dir/node.pem|" -e "s|@PKI@|$pki|g" -e "s|@STATS@|$H2_STATS_PORT|" \
		"$template" >"$dir/haproxy.cfg"
	sl_in_cgroup "$node" "$HAPROXY" haproxy -D -p "$dir/haproxy.pid" -f "$dir/haproxy.cfg" \
		>"$dir/start.log" 2>&1 || sl_die "haproxy $name did not start: $(tail -n3 "$dir/start.log")"
	sl_track_pidfile "$dir/haproxy.pid" "haproxy $name"
}

# agent_b CONFIG: node B's agent started afresh with CONFIG. Kept running
# when the config did not change, it ran on from one phase into the next
# only in some rounds, and ABBA's two orders no longer met the same agents.
agent_b()
{
	stop_agent b
	sl_agent b "$1"
}

# enter_phase PHASE: stops and starts the agents the phase runs with.
enter_phase()
{
	case $1 in
	off | plain)
		stop_agent a
		stop_agent b
		[[ $1 == off ]] || sl_agent a "$config_plain"
		;;
	scrape)
		stop_agent a
		stop_agent b
		sl_agent a "$config_plain"
		"$SL_BUILD/tests/mapfill" "${SL_PIN[a]}" >/dev/null ||
			sl_die "mapfill could not fill node A's maps"
		;;
	mtls)
		stop_agent a
		agent_b "${SL_CONFIG[b]}"
		sl_agent a
		sl_creds_wait
		warm_tunnel
		;;
	l4)
		stop_agent a
		agent_b "$config_l4_b"
		sl_agent a "$config_l4_a"
		sl_creds_wait
		warm_tunnel
		;;
	otlp)
		stop_agent a
		agent_b "$config_otlp_b"
		sl_agent a "$config_otlp_a"
		sl_creds_wait
		warm_tunnel
		;;
	full)
		stop_agent a
		agent_b "${SL_CONFIG[b]}"
		sl_agent a "$config_full"
		sl_creds_wait
		warm_tunnel
		;;
	edge)
		stop_agent a
		sl_agent a
		warm_edge
		;;
	edgecold)
		stop_agent a
		sl_agent a "$config_cold"
		warm_edge
		;;
	esac
}

# The nginx pair's server half logged each connection it accepted: prints
# "connections resumed protocol/cipher/group...".
pair_summary()
{
	awk '{ n++; if ($4 == "r") r++; s[$1 " " $2 " " $3]++ }
	     END { printf "%d %d", n, r; for (k in s) printf " %s", k; printf "\n" }' \
		"$SIDECAR_LOG"
}

# What the agents said while under load: warnings and errors in their logs,
# and node B's decisions, denials by reason.
agent_health()
{
	local n

	printf '\nagents under load:\n'
	for n in a b; do
		# BENCH_PHASES may have left one agent unstarted.
		[[ -n ${SL_AGENT_LOG[$n]:-} ]] || continue
		printf '  %s log: %s warnings, %s errors\n' "${SL_NODE[$n]}" \
			"$(awk '$2 == "warn"' "${SL_AGENT_LOG[$n]}" | wc -l)" \
			"$(awk '$2 == "error"' "${SL_AGENT_LOG[$n]}" | wc -l)"
		# The most frequent of them, digits folded so repeats group.
		awk '$2 == "warn" || $2 == "error" { $1 = ""; print substr($0, 2, 160) }' \
			"${SL_AGENT_LOG[$n]}" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c |
			sort -rn | head -n3 | sed 's/^/    /'
	done
	audit_summary "${SL_NODE[b]}" inbound "$SL_AUDIT_B"
	audit_summary "${SL_NODE[a]}" edge "$SL_AUDIT_A"
}

# audit_summary NODE DIRECTION FILE: NODE's decisions of DIRECTION in its
# audit FILE, by verdict and reason.
audit_summary()
{
	[[ -e $3 ]] || return 0
	printf '  %s audit, %s decisions:' "$1" "$2"
	jq -rn --arg d "$2" '[inputs | select(.direction == $d)] | group_by(.verdict + " " + .reason)
		| map(" \(length) \(.[0].verdict) (\(.[0].reason))") | join(",")' "$3"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
sl_step "Setting up (load average $load_start)"
sl_bpffs
sl_topology
# One connection per request runs through many ephemeral ports; the wider
# range must not hand out the ports the agents and proxies listen on, or a
# restarted agent finds its tunnel port taken by an old outbound connection.
listen_ports=$(sed -n 's/^ *\(outbound\|tunnel\|http\): .*:\([0-9]\+\)$/\2/p' "${SL_TEMPLATE[@]}" |
	sort -u | tr '\n' ,)$STREAM_PORT,$PAIR_PORT,$H2_PORT,$H2_STATS_PORT,$SL_IDP_PORT
listen_ports+=,$EDGE_UP_PORT,$AUTHZ_204_PORT,${EDGE_PORT[edge-none]},${EDGE_PORT[edge-204]}
listen_ports+=,${EDGE_PORT[edge-warm]},$COLLECTOR_PORT
sl_in a sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" \
	net.ipv4.ip_local_reserved_ports="$listen_ports"
sl_cgroups a "$DIRECT" "$STREAM" "$SIDECAR" "$HAPROXY" "$EDGE_UP" "$AUTHZ_204" "$COLLECTOR" \
	"${EDGE_CG[edge-none]}" "${EDGE_CG[edge-204]}" "${EDGE_CG[edge-warm]}"
sl_cgroups b "$SIDECAR" "$HAPROXY"
sl_api
sl_pki
sl_agent_config a
sl_agent_config b
make_configs
# The IdP the demo configs name (identity.oidc), its tokens good for the
# whole run, and alice's token for the edge rows.
SL_IDP_TTL=3600
sl_idp_start
sl_user_token alice
start_edges
sl_nginx "$STREAM" a "
	load_module /usr/lib/nginx/modules/ngx_stream_module.so;
	stream {
	    server {
	        listen 127.0.0.1:$STREAM_PORT;
	        proxy_pass $SL_ADDR_B:80;
	    }
	}" "$STREAM"
# The OTLP collector of the sluice-otlp rows: takes every export and
# answers as OTLP/HTTP JSON says a full success looks.
sl_nginx "$COLLECTOR" a "
	http {
	    access_log off;
	    server {
	        listen $SL_ADDR_A:$COLLECTOR_PORT;
	        client_max_body_size 64m;
	        client_body_buffer_size 1m;
	        location = /v1/traces {
	            default_type application/json;
	            return 200 '{}';
	        }
	    }
	}" "$COLLECTOR"
# The collector stands for a service on another machine: it takes no CPU
# from the rows it receives spans from.
[[ -z $LOAD_CPUS ]] || while read -r pid; do
	taskset -apc "$LOAD_CPUS" "$pid" >/dev/null ||
		sl_die "cannot move the collector (pid $pid) to CPUs $LOAD_CPUS"
done <"${SL_CG_ROOT[a]}/$COLLECTOR/cgroup.procs"
sl_nginx "$SIDECAR-a" a "$(sed -e "s|@PORT@|$PAIR_PORT|" -e "s|@PEER@|$SL_ADDR_B:$PAIR_PORT|" \
	-e "s|@PEER_NODE@|${SL_NODE[b]}|" -e "s|@PKI@|${SL_DIR[a]}/pki|g" \
	"$SL_SRC/deploy/bench/nginx-sidecar-a.conf")" "$SIDECAR"
sl_nginx "$SIDECAR-b" b "$(sed -e "s|@ADDR@|$SL_ADDR_B|" -e "s|@PORT@|$PAIR_PORT|" \
	-e "s|@UPSTREAM@|$SL_ADDR_B:80|" -e "s|@PKI@|${SL_DIR[b]}/pki|g" \
	-e "s|@LOG@|$SIDECAR_LOG|" "$SL_SRC/deploy/bench/nginx-sidecar-b.conf")" "$SIDECAR"
sl_in_cgroup a "$DIRECT" curl -sf -o /dev/null --max-time 5 "${URL[nginx-pair]}" ||
	sl_die "the nginx pair does not reach the api: $(tail -n3 "$SL_TMP"/$SIDECAR-*/logs/error.log)"
start_haproxy "$HAPROXY-a" a "$SL_SRC/deploy/bench/haproxy-a.cfg" -e "s|@PORT@|$H2_PORT|" \
	-e "s|@PEER@|$SL_ADDR_B:$H2_PORT|" -e "s|@PEER_NODE@|${SL_NODE[b]}|g"
start_haproxy "$HAPROXY-b" b "$SL_SRC/deploy/bench/haproxy-b.cfg" -e "s|@ADDR@|$SL_ADDR_B|" \
	-e "s|@PORT@|$H2_PORT|" -e "s|@UPSTREAM@|$SL_ADDR_B:80|"
# As for the nginx pair: one request across before the rows, which also
# asks node B's half what the pooled connection negotiated.
h2_tls=$(sl_in_cgroup a "$DIRECT" curl -sf --max-time 5 "${URL[haproxy-h2]}.bench-tls") ||
	sl_die "no request crosses the haproxy pair: $(cat "$SL_TMP"/$HAPROXY-*/start.log)"
sl_in_cgroup a "$DIRECT" curl -sf -o /dev/null --max-time 5 "${URL[haproxy-h2]}" ||
	sl_die "the haproxy pair does not reach the api"

# in_round_order: the lines of stdin as this round takes them: as they
# are in odd rounds, last first in even ones.
in_round_order()
{
	if ((round % 2)); then cat; else tac; fi
}

for ((round = 1; round <= ROUNDS; round++)); do
	sl_step "Round $round of $ROUNDS (wrk $DURATION per row; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	# Odd rounds run the phases and their rows in order, even rounds last
	# first (ABBA): a machine whose speed drifts during the run then
	# favours neither row of a pair compared round by round.
	mapfile -t order < <(printf '%s\n' "${PHASES[@]}" | in_round_order)
	for phase in "${order[@]}"; do
		enter_phase "$phase"
		# shellcheck disable=SC2086 # a list of rows
		mapfile -t rows < <(printf '%s\n' ${PHASE_ROWS[$phase]} | in_round_order)
		for row in "${rows[@]}"; do
			[[ ${row%%:*} != sluiced-scrape ]] || scraper_start
			run_row "${row%%:*}" "${row#*:}" "$round"
			scraper_stop
		done
		[[ $phase != scrape ]] || SCRAPE_CPU+=" $(scrape_cpu)"
		if [[ $phase == otlp ]]; then
			# Once the exporters' interval (1 s) is over, every span of
			# the phase is exported or counted dropped.
			sleep 2
			for n in a b; do
				read -r e d <<<"$(otlp_spans "$n")"
				OTLP_EXPORTED[$n]=$((${OTLP_EXPORTED[$n]:-0} + e))
				OTLP_DROPPED[$n]=$((${OTLP_DROPPED[$n]:-0} + d))
			done
		fi
	done
done
enter_phase off
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
# What making and sending a span costs the agent, without the network, on
# the CPUs the agents ran on: "us_per_span bytes_per_span".
SPAN_COST=
[[ " ${PHASES[*]} " != *" otlp "* ]] || SPAN_COST=$("$SL_BUILD/tests/spancost") ||
	sl_die "tests/load/spancost failed"


# shellcheck source=scripts/bench_report.sh
. "$(dirname "$0")/bench_report.sh"

sl_step "Results (also in $results)"
report | tee "$results"
