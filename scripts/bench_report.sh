#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The report of scripts/bench.sh, sourced by it once every round has run:
# medians, ranges and ratios of the F_* figures bench.sh collected, and
# the command that reproduces them.
# shellcheck disable=SC2154 # load_start, build, commands...: bench.sh's

# median VALUES...
median()
{
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# fig ARRAY KEY: the median of a figure over the rounds.
fig()
{
	local -n arr=$1
	# shellcheck disable=SC2086 # a list of numbers
	median ${arr[$2]:-}
}

# ratio A B [FORMAT]
ratio()
{
	awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b > 0) printf f, a / b; else printf "-" }'
}

table_header()
{
	printf '%-26s %11s %13s %8s %8s %6s %7s %7s %9s %5s\n' scenario requests/s "(min-max)" \
		p50_ms p99_ms errors cpu_us wire_B vs_direct load
}

# A row whose rounds' requests/s spread wider than this (max/min) is
# marked noisy: its median is no evidence against another row's.
NOISY=1.15

# spread KEY: the rounds' requests/s as "min-max".
spread()
{
	# shellcheck disable=SC2086 # a list of numbers
	printf '%s\n' ${F_RPS[$1]} | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
		END { printf "%.0f-%.0f", lo, hi }'
}

# noisy KEY: " noisy" when the rounds' requests/s spread past NOISY.
noisy()
{
	# shellcheck disable=SC2086
	printf '%s\n' ${F_RPS[$1]} | sort -g | awk -v max="$NOISY" 'NR == 1 { lo = $1 } { hi = $1 }
		END { if (lo > 0 && hi / lo > max) printf " noisy" }'
}

# table_row PATH KIND: one line of medians.
table_row()
{
	local key="$1 $2" rps cpu spread errs

	rps=$(fig F_RPS "$key")
	spread=$(spread "$key")
	# shellcheck disable=SC2086
	errs=$(printf '%s\n' ${F_ERR[$key]} | awk '{ s += $1 } END { print s }')
	cpu=-
	[[ -z ${PROXIES[$1]} ]] || cpu=$(fig F_CPU "$key")
	printf '%-26s %11.1f %13s %8.3f %8.3f %6d %7s %7.0f %9s %5s%s\n' "$key" "$rps" "$spread" \
		"$(fig F_P50 "$key")" "$(fig F_P99 "$key")" "$errs" "$cpu" "$(fig F_WIRE "$key")" \
		"$(ratio "$rps" "$(fig F_RPS "direct $2")")" "$(fig F_LOAD "$key")" "$(noisy "$key")"
}

# ratio_row PATH KIND BASE: requests/s, p50 and p99 of PATH over BASE's.
ratio_row()
{
	local a="$1 $2" b="$3 $2"

	printf '%-12s %-26s %7s %7s %7s\n' "$2" "$1 / $3" \
		"$(ratio "$(fig F_RPS "$a")" "$(fig F_RPS "$b")")" \
		"$(ratio "$(fig F_P50 "$a")" "$(fig F_P50 "$b")")" \
		"$(ratio "$(fig F_P99 "$a")" "$(fig F_P99 "$b")")"
}

# added PATH KIND BASE FIGURE: what PATH adds to BASE's median, in us.
added_us()
{
	awk -v a="$(fig "$4" "$1 $2")" -v b="$(fig "$4" "$3 $2")" 'BEGIN { printf "%+.0f", (a - b) * 1000 }'
}

# edge_row PATH: one line of the edge table (keep-alive).
edge_row()
{
	local key="$1 keep-alive" rps spread errs acpu=-

	rps=$(fig F_RPS "$key")
	spread=$(spread "$key")
	# shellcheck disable=SC2086
	errs=$(printf '%s\n' ${F_ERR[$key]} | awk '{ s += $1 } END { print s }')
	[[ -z ${AUTHZ[$1]:-} ]] || acpu=$(fig F_ACPU "$key")
	printf '%-22s %11.1f %13s %8.3f %8.3f %6d %8s %8s %7s %5s%s\n' "$1" "$rps" "$spread" \
		"$(fig F_P50 "$key")" "$(fig F_P99 "$key")" "$errs" "$(fig F_CPU "$key")" "$acpu" \
		"$(ratio "$rps" "$(fig F_RPS "edge-204 keep-alive")")" "$(fig F_LOAD "$key")" "$(noisy "$key")"
}

# The edge rows and issue 12's goals: warm at least 0.9x the 204 floor's
# requests/s and within 0.3 ms of its p99; cold with its cost per
# verification.
report_edge()
{
	local path warm=edge-warm floor=edge-204 cold=edge-cold r d c

	printf '\n== The edge: wrk through nginx (1 worker) on node A, config rendered from the\n'
	printf '   demo policy, keep-alive, alice'"'"'s IdP token on every request, upstream a\n'
	printf '   local nginx return 200 (the same for every row)\n'
	printf '%-22s %11s %13s %8s %8s %6s %8s %8s %7s %5s\n' scenario requests/s "(min-max)" \
		p50_ms p99_ms errors nginx_us authz_us vs_204 load
	for path in edge-none edge-204 edge-warm edge-cold; do
		[[ -z ${F_RPS["$path keep-alive"]:-} ]] || edge_row "$path"
	done
	printf 'nginx_us, authz_us: CPU per request of the edge'"'"'s nginx and of its authorizer\n'
	printf '  (the 204 nginx, or sluiced on node A: cgroup cpu.stat)\n'
	[[ -n ${F_RPS["$warm keep-alive"]:-} && -n ${F_RPS["$floor keep-alive"]:-} ]] || return 0
	r=$(ratio "$(fig F_RPS "$warm keep-alive")" "$(fig F_RPS "$floor keep-alive")")
	d=$(awk -v a="$(fig F_P99 "$warm keep-alive")" -v b="$(fig F_P99 "$floor keep-alive")" \
		'BEGIN { printf "%+.3f", a - b }')
	printf 'goal: warm >= 0.9x the 204 floor'"'"'s requests/s: %s (%s)\n' "$r" \
		"$(awk -v r="$r" 'BEGIN { print (r >= 0.9 ? "met" : "missed") }')"
	printf 'goal: warm p99 within 0.3 ms of the floor'"'"'s: %s ms (%s)\n' "$d" \
		"$(awk -v d="$d" 'BEGIN { print (d <= 0.3 ? "met" : "missed") }')"
	[[ -n ${F_RPS["$cold keep-alive"]:-} ]] || return 0
	c=$(awk -v a="$(fig F_ACPU "$cold keep-alive")" -v b="$(fig F_ACPU "$warm keep-alive")" \
		'BEGIN { printf "%.0f", a - b }')
	printf 'cold (edge.cache.max: 0): %s of warm'"'"'s requests/s, p99 %s ms; sluiced CPU %s us\n' \
		"$(ratio "$(fig F_RPS "$cold keep-alive")" "$(fig F_RPS "$warm keep-alive")")" \
		"$(fig F_P99 "$cold keep-alive")" "$(fig F_ACPU "$cold keep-alive")"
	printf '  a request against %s us warm: %s us per verification (an ES256 check of the\n' \
		"$(fig F_ACPU "$warm keep-alive")" "$c"
	printf '  token and an assertion signed; at most %s verifications/s of one core)\n' \
		"$(awk -v c="$(fig F_ACPU "$cold keep-alive")" 'BEGIN { if (c > 0) printf "%.0f", 1e6 / c; else print "-" }')"
}

report()
{
	printf 'sluice bench, %s, kernel %s, %s CPUs, sluice %s\n' "$(date -u +%FT%TZ)" \
		"$(uname -r)" "$(getconf _NPROCESSORS_ONLN)" "$(git -C "$SL_SRC" describe --always --dirty 2>/dev/null || echo '?')"
	printf 'load average before %s, after %s (each row'"'"'s: the load column)\n' \
		"$load_start" "$load_end"
	printf 'wrk on node A against nginx (1 worker) on node B over a veth; every proxy 1 process\n'
	printf 'medians of %s rounds of %s per row, rounds interleaved (even rounds last row\n' \
		"$ROUNDS" "$DURATION"
	printf '  first); (min-max) of requests/s, a row marked noisy when max/min is over %s\n' \
		"$NOISY"
	if [[ -n $LOAD_CPUS ]]; then
		printf 'CPUs: wrk, the scraper and the collector on %s; agents, proxies and nginx on\n  %s (taskset)\n' \
			"$LOAD_CPUS" "$MEASURED_CPUS"
	else
		printf 'CPUs: no placement (BENCH_CPUS=off, or one CPU): rows share every CPU\n'
	fi
	cat <<-EOF
		kinds:  keep-alive    wrk -t$THREADS -c$CONNS, HTTP keep-alive
		        conn-close    wrk -t$THREADS -c$CONNS, Connection: close: requests/s = new connections/s
		        1-conn        wrk -t1 -c1: one request at a time, nothing queues
		        1-conn-close  wrk -t1 -c1, Connection: close: one new connection at a time
		paths:  direct        no agent running, plain TCP
		        nginx-stream  nginx L4 proxy on node A, plain TCP
		        sluiced       sluiced on node A only, no identity, plain TCP
		        nginx-pair    nginx stream proxy on each node, mutual TLS between them
		        haproxy-h2    haproxy HTTP proxy on each node, HTTP/2 between them over
		                      pooled mutual TLS connections (http-reuse always): each
		                      request a stream, not a connection of its own (as HBONE)
		        sluice-mtls   sluiced on both nodes, mTLS tunnel, session resumption
		        sluice-full   the same, identity.resumption: false (full handshakes)
		        sluice-l4     sluice-mtls with the api as protocol: tcp: no request
		                      parsed (sluice-mtls's api is protocol: http)
		        sluice-otlp   sluice-mtls, both agents exporting spans (otlp:) to a
		                      collector on node A (nginx answering 200)
		        sluiced-filled  sluiced with 10,000 flows and 1,000 pairs in its maps
		        sluiced-scrape  the same, /metrics scraped every $SCRAPE_EVERY during
		                      the rows
		        all TLS paths: TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, the same
		        CA and node certificates (sluicectl ca); only sluice checks a token
		        and a policy per connection
		        edge-none     the edge's nginx, auth_request off
		        edge-204      auth_request to an nginx answering 204 (the floor)
		        edge-warm     auth_request to sluiced, token cache warm
		        edge-cold     the same, edge.cache.max: 0 (a signature check each)
		cpu_us: CPU of the proxies (both nodes; cgroup cpu.stat) per request
		wire_B: bytes on the veth (both ways) per request
		load:   1-minute load average as the row started (others share the machine)
		keep-alive p99 of a short run includes setting up the $CONNS connections at its
		start: wrk corrects for coordinated omission, so a first response that waited
		for a tunnel counts as many late samples (a longer BENCH_DURATION dilutes it)
		one request crosses each TLS path before its rows (the pairs at setup, the
		agents after each start), so each holds a session to resume from
		haproxy-h2 forwards requests: a new client connection on node A is a new
		stream, neither a TLS handshake nor a new connection to nginx on node B

	EOF
	[[ -z ${F_RPS["direct keep-alive"]:-} ]] || report_mesh
	report_observability
	report_l7
	report_edge
	agent_health

	printf '\nreproduce: sudo make bench BUILD=%s BENCH_DURATION=%s BENCH_ROUNDS=%s BENCH_THREADS=%s BENCH_CONNS=%s%s%s\n' \
		"$build" "$DURATION" "$ROUNDS" "$THREADS" "$CONNS" \
		"${BENCH_PHASES:+ BENCH_PHASES=\"$BENCH_PHASES\"}" "${BENCH_CPUS:+ BENCH_CPUS=$BENCH_CPUS}"
	printf 'wrk runs (in node A'"'"'s network namespace, from the given cgroup):\n'
	printf '  %s\n' "${commands[@]}"
}

# round_ratio KEY_A KEY_B [ARRAY]: A's requests/s (or ARRAY's figure) over
# B's, round by round (both ran in the same round, minutes apart at most):
# "median (q1-q3 of N rounds)". The quartiles, not the extremes: on a
# shared machine one round in ten lands on a neighbour's burst.
round_ratio()
{
	local -n arr=${3:-F_RPS}

	# shellcheck disable=SC2086 # lists of numbers
	paste <(printf '%s\n' ${arr[$1]}) <(printf '%s\n' ${arr[$2]}) |
		awk '$2 > 0 { print $1 / $2 }' | sort -g |
		awk 'function rank(q) { r = int(q * NR); return v[r < q * NR ? r + 1 : r] }
		     { v[NR] = $1 }
		     END { if (!NR) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.3f (%.3f-%.3f of %d rounds)", m, rank(0.25), rank(0.75), NR }'
}

# goal_line WHAT RATIO_TEXT MIN: says whether the median ratio is at least MIN.
goal_line()
{
	printf 'goal: %s: %s (%s)\n' "$1" "$2" \
		"$(awk -v r="${2%% *}" -v m="$3" 'BEGIN { print (r != "-" && r >= m ? "met" : "missed") }')"
}

# HTTP-aware services (issue 14): the same api as protocol: http (each
# request parsed and decided on node B, framed on node A) against
# protocol: tcp, in the same rounds.
report_l7()
{
	local kind added

	[[ -n ${F_RPS["sluice-l4 keep-alive"]:-} && -n ${F_RPS["sluice-mtls keep-alive"]:-} ]] ||
		return 0
	printf '\n== HTTP-aware: the api as protocol: http (sluice-mtls) against protocol: tcp\n'
	printf '   (sluice-l4), across the tunnel\n'
	table_header
	for kind in keep-alive 1-conn; do
		for path in sluice-l4 sluice-mtls; do
			[[ -z ${F_RPS["$path $kind"]:-} ]] || table_row "$path" "$kind"
		done
	done
	goal_line "L7/L4 requests/s, keep-alive, >= 0.9" \
		"$(round_ratio "sluice-mtls keep-alive" "sluice-l4 keep-alive")" 0.9
	for kind in keep-alive 1-conn; do
		[[ -z ${F_RPS["sluice-l4 $kind"]:-} || -z ${F_RPS["sluice-mtls $kind"]:-} ]] && continue
		added=$(added_us sluice-mtls "$kind" sluice-l4 F_P99)
		printf 'goal: p99 added by L7, %s, under 100 us: %s us (%s); p50 added: %s us\n' \
			"$kind" "$added" "$( ((${added#+} < 100)) && echo met || echo missed)" \
			"$(added_us sluice-mtls "$kind" sluice-l4 F_P50)"
		printf 'CPU per request of both agents, L7/L4, %s: %s\n' "$kind" \
			"$(round_ratio "sluice-mtls $kind" "sluice-l4 $kind" F_CPU)"
	done
}

# What watching costs (issue 13): tracing on against off across nodes, and
# a scrape of the maps at the goal's size against none, each pair in the
# same rounds.
report_observability()
{
	local kind path times us bytes ms

	[[ -n ${F_RPS["sluice-otlp keep-alive"]:-}${F_RPS["sluiced-scrape keep-alive"]:-} ]] ||
		return 0
	printf '\n== What watching costs: OTLP tracing on (sluice-otlp) against off (sluice-mtls),\n'
	printf '   and /metrics scraped every %s with 10,000 flows and 1,000 pairs in the maps\n' \
		"$SCRAPE_EVERY"
	printf '   (sluiced-scrape) against the same maps not scraped (sluiced-filled)\n'
	table_header
	for kind in keep-alive conn-close 1-conn-close; do
		for path in sluice-mtls sluice-otlp sluiced sluiced-filled sluiced-scrape; do
			[[ -z ${F_RPS["$path $kind"]:-} ]] || table_row "$path" "$kind"
		done
	done
	printf 'requests/s ratios, per round: median (quartiles)\n'
	for kind in keep-alive conn-close 1-conn-close; do
		[[ -z ${F_RPS["sluice-otlp $kind"]:-} ]] ||
			goal_line "tracing on/off, $kind, >= 0.95" \
				"$(round_ratio "sluice-otlp $kind" "sluice-mtls $kind")" 0.95
	done
	for kind in keep-alive conn-close; do
		[[ -z ${F_RPS["sluiced-scrape $kind"]:-} ]] ||
			goal_line "scraped/not, $kind, >= 0.98" \
				"$(round_ratio "sluiced-scrape $kind" "sluiced-filled $kind")" 0.98
	done
	# On a shared machine the rows' requests/s move with the neighbours;
	# what each request cost the proxies moves much less.
	printf 'CPU per request of the agents, per round: median (quartiles); goal: at most\n'
	printf '  1/0.95 = 1.053 with tracing, 1/0.98 = 1.020 scraped\n'
	for kind in keep-alive conn-close 1-conn-close; do
		[[ -z ${F_RPS["sluice-otlp $kind"]:-} ]] ||
			printf '  tracing on/off, %-12s %s\n' "$kind:" \
				"$(round_ratio "sluice-otlp $kind" "sluice-mtls $kind" F_CPU)"
	done
	for kind in keep-alive conn-close; do
		[[ -z ${F_RPS["sluiced-scrape $kind"]:-} ]] ||
			printf '  scraped/not, %-15s %s\n' "$kind:" \
				"$(round_ratio "sluiced-scrape $kind" "sluiced-filled $kind" F_CPU)"
	done
	for kind in keep-alive conn-close; do
		[[ -z ${F_RPS["sluiced-filled $kind"]:-} || -z ${F_RPS["sluiced $kind"]:-} ]] ||
			printf 'maps filled/empty, %s (no goal): %s\n' "$kind" \
				"$(round_ratio "sluiced-filled $kind" "sluiced $kind")"
	done
	# What the ratios cannot resolve on a noisy machine, accounted: the
	# CPU a span and a scrape take, against the same run's rows.
	if [[ -n $SPAN_COST ]]; then
		read -r us bytes <<<"$SPAN_COST"
		printf 'a span costs the agent %s us of CPU (tests/load/spancost, %s bytes of\n' "$us" "$bytes"
		printf '  OTLP/JSON; the POST not included); two per flow, one on each node, are\n'
		for kind in conn-close 1-conn-close; do
			[[ -z ${F_CPU["sluice-mtls $kind"]:-} ]] ||
				printf '  %s%% of sluice-mtls %s'"'"'s %s us of CPU per flow (goal: 5%%)\n' \
					"$(awk -v s="$us" -v c="$(fig F_CPU "sluice-mtls $kind")" \
						'BEGIN { printf "%.1f", 200 * s / c }')" "$kind" \
					"$(fig F_CPU "sluice-mtls $kind")"
		done
	fi
	if [[ -n $SCRAPE_CPU ]]; then
		# shellcheck disable=SC2086 # a list of numbers
		ms=$(median $SCRAPE_CPU)
		printf 'a scrape costs the agent %s ms of CPU with no load (median of %d rounds, 5\n' \
			"$ms" "$(wc -w <<<"$SCRAPE_CPU")"
		printf '  scrapes each): %s%% of one CPU at one scrape every %s (goal: 2%%)\n' \
			"$(awk -v m="$ms" -v e="${SCRAPE_EVERY%s}" 'BEGIN { printf "%.1f", m / e / 10 }')" \
			"$SCRAPE_EVERY"
	fi
	if [[ -n ${OTLP_EXPORTED[a]:-} ]]; then
		printf 'spans exported: %s by %s, %s by %s; dropped or rejected: %s, %s\n' \
			"${OTLP_EXPORTED[a]}" "${SL_NODE[a]}" "${OTLP_EXPORTED[b]}" "${SL_NODE[b]}" \
			"${OTLP_DROPPED[a]}" "${OTLP_DROPPED[b]}"
	fi
	if [[ -s $SCRAPE_TIMES ]]; then
		times=$(sort -g "$SCRAPE_TIMES" | awk '{ v[NR] = $1 } END {
			printf "%d scrapes under load, %.1f ms median (%.1f-%.1f)", NR,
				v[int((NR + 1) / 2)], v[1], v[NR] }')
		printf '%s; goal: under 50 ms\n' "$times"
	fi
	if [[ -s $SCRAPE_FAILED ]]; then
		printf 'failed scrapes: %s\n' "$(sort "$SCRAPE_FAILED" | uniq -c | awk '{ $1 = $1 } 1' |
			paste -sd, -)"
	fi
}

# The mesh rows: one agent, then both across the tunnel, against the pairs.
report_mesh()
{
	local kind path pair cmp

	printf '== One agent, plain TCP: what the agent costs a workload on its own node\n'
	table_header
	for kind in keep-alive conn-close 1-conn 1-conn-close; do
		for path in direct sluiced nginx-stream; do
			if [[ -n ${F_RPS["$path $kind"]:-} ]]; then
				table_row "$path" "$kind"
			fi
		done
	done
	printf '\nadded by sluiced, 1-conn: p50 %s us, p99 %s us\n' \
		"$(added_us sluiced 1-conn direct F_P50)" "$(added_us sluiced 1-conn direct F_P99)"

	printf '\n== Across nodes, mutual TLS: sluice against the nginx and haproxy pairs\n'
	table_header
	for kind in keep-alive conn-close 1-conn 1-conn-close; do
		for path in direct nginx-pair haproxy-h2 sluice-mtls sluice-full; do
			if [[ -n ${F_RPS["$path $kind"]:-} ]]; then
				table_row "$path" "$kind"
			fi
		done
	done

	printf '\nratios (of the medians)  %19s %7s %7s %7s\n' '' 'req/s' p50 p99
	for kind in keep-alive conn-close 1-conn 1-conn-close; do
		for path in nginx-pair haproxy-h2 sluice-mtls sluice-full; do
			if [[ -n ${F_RPS["$path $kind"]:-} ]]; then
				ratio_row "$path" "$kind" direct
			fi
		done
		for cmp in haproxy-h2:nginx-pair sluice-mtls:nginx-pair sluice-full:nginx-pair \
			sluice-mtls:haproxy-h2; do
			if [[ -n ${F_RPS["${cmp%%:*} $kind"]:-} && -n ${F_RPS["${cmp#*:} $kind"]:-} ]]; then
				ratio_row "${cmp%%:*}" "$kind" "${cmp#*:}"
			fi
		done
	done

	printf '\nnew connections, one at a time (1-conn-close), over direct:\n'
	for path in nginx-pair haproxy-h2 sluice-mtls sluice-full; do
		printf '  %-12s p50 %s us, p99 %s us, proxies'"'"' CPU %s us, %s wire bytes per connection\n' \
			"$path" "$(added_us "$path" 1-conn-close direct F_P50)" \
			"$(added_us "$path" 1-conn-close direct F_P99)" "$(fig F_CPU "$path 1-conn-close")" \
			"$(fig F_WIRE "$path 1-conn-close")"
	done
	printf 'a full handshake instead of a resumed one (sluice-full - sluice-mtls, 1-conn-close):\n'
	printf '  p50 %s us, CPU %s us of both agents, %s wire bytes per connection\n' \
		"$(added_us sluice-full 1-conn-close sluice-mtls F_P50)" \
		"$(awk -v a="$(fig F_CPU "sluice-full 1-conn-close")" \
			-v b="$(fig F_CPU "sluice-mtls 1-conn-close")" 'BEGIN { printf "%+.0f", a - b }')" \
		"$(awk -v a="$(fig F_WIRE "sluice-full 1-conn-close")" \
			-v b="$(fig F_WIRE "sluice-mtls 1-conn-close")" 'BEGIN { printf "%+.0f", a - b }')"
	read -r -a pair <<<"$(pair_summary)"
	printf 'nginx pair, its server half'"'"'s log: %s connections, %s resumed, negotiated: %s\n' \
		"${pair[0]}" "${pair[1]}" "${pair[*]:2}"
	printf 'haproxy pair, node B'"'"'s half on the pooled connection: %s\n' "$h2_tls"
	printf 'haproxy pair, its stats (all rounds): client connections into node A, TLS\n'
	printf '  connections node B accepted, requests it passed:\n'
	for kind in keep-alive conn-close 1-conn 1-conn-close; do
		printf '  %-12s %8s clients %5s TLS %9s requests\n' "$kind" \
			"${H2_CLIENT[$kind]:-0}" "${H2_TLS[$kind]:-0}" "${H2_REQ[$kind]:-0}"
	done
	for path in sluice-mtls sluice-full; do
		printf '%s, %s'"'"'s audit: %s flows, %s resumed\n' "$path" "${SL_NODE[b]}" \
			"${N_FLOWS[$path]:-0}" "${N_RESUMED[$path]:-0}"
	done
}
