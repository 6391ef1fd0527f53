#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The two-node demo (sudo make demo): node A runs sluiced and two workloads,
# a job and a notebook, and the edge: nginx rendered by its agent from the
# policy's edge: section, in front of node B's API; node B runs the HTTP
# API (nginx), a warehouse (PostgreSQL) and its own sluiced, the receiving
# end of the mTLS tunnel. A mesh CA and both node certificates are made
# with `sluicectl ca`; an IdP (tests/oidc/idp.mjs, oidc-provider) on node A
# issues the workloads' tokens and the edge users' tokens. It walks through
# what the policy in deploy/demo/policy.yaml allows and denies, on both
# nodes and at the edge, and checks every outcome: the exit status is
# nonzero if anything allowed failed or anything denied got through.
#
# Usage: scripts/demo.sh [BUILD_DIR]     (default: build)

set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PSQL=(psql -h "$SL_ADDR_B" -U postgres -d postgres -X -A -t)
TUNNEL_PORT=15008
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
	OUT=$(sl_in_cgroup a "$wl" "$@" 2>&1) || RC=$?
	[[ -z $OUT ]] || printf '%s\n' "$OUT" | sed 's/^/   /'
}

# show NODE CMD...: shows a command run on NODE (a or b, outside any
# workload) and its output; a failing one fails the demo.
show()
{
	local node=$1 rc=0

	shift
	sl_show "${SL_NODE[$node]}" "$@"
	OUT=$(sl_in "$node" "$@" 2>&1) || rc=$?
	[[ -z $OUT ]] || printf '%s\n' "$OUT" | sed 's/^/   /'
	((rc == 0)) || failed+=("on ${SL_NODE[$node]}: $* exited with $rc")
}

# ctl NODE ARGS...: shows a sluicectl command on NODE's pins and its output.
ctl()
{
	local node=$1 rc=0

	shift
	sl_show "${SL_NODE[$node]}" sluicectl "$@"
	OUT=$(sl_ctl "$node" "$@" 2>&1) || rc=$?
	printf '%s\n' "$OUT" | sed 's/^/   /'
	((rc == 0)) || failed+=("sluicectl on ${SL_NODE[$node]}: $* exited with $rc")
}

# sluicectl's JSON output on NODE, for the checks.
ctl_json()
{
	local node=$1

	shift
	sl_ctl "$node" -j "$@" 2>/dev/null
}

curl_code()
{
	run "$1" curl -sS -g -o /dev/null -w '%{http_code}\n' --max-time 5 "$2"
}

# edge USER|- METHOD PATH [CURL_ARGS...]: a request from outside the mesh
# (node A, no workload) to the edge, with USER's token (- for none), shown
# as typed; CODE is the status, BODY the body, WWW the WWW-Authenticate
# header, and all three are shown.
edge()
{
	local user=$1 method=$2 path=$3 auth=() cmd

	shift 3
	[[ $user == - ]] || auth=(-H "@$SL_USER_DIR/$user.hdr")
	cmd=(curl -sS -X "$method" --max-time 5
		--resolve "$SL_EDGE_HOST:$SL_EDGE_PORT:$SL_ADDR_A" "${auth[@]}" "$@"
		"http://$SL_EDGE_HOST$path")
	sl_show node-a "${cmd[@]}"
	CODE=$(sl_in a "${cmd[@]}" -o "$SL_TMP/edge.body" -D "$SL_TMP/edge.headers" \
		-w '%{http_code}' 2>&1) || true
	BODY=$(cat "$SL_TMP/edge.body" 2>/dev/null || true)
	WWW=$(sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *//p' "$SL_TMP/edge.headers" 2>/dev/null |
		tr -d '\r')
	sl_info "HTTP $CODE${WWW:+   WWW-Authenticate: $WWW}"
	[[ -z $BODY ]] || printf '%s\n' "$BODY" | sed 's/^/   /'
}

sl_init demo "${1:-build}"

sl_step "Setting up two nodes"
sl_bpffs
sl_topology
sl_cgroups a
sl_cgroups b
sl_api
sl_warehouse
sl_agent_config a
sl_agent_config b
sl_info "node-a  ${SL_NS[a]}  $SL_ADDR_A  $SL_ADDR6_A   workloads: $SL_JOB, $SL_NOTEBOOK, $SL_EDGE_CG (nginx)"
sl_info "node-b  ${SL_NS[b]}  $SL_ADDR_B  $SL_ADDR6_B   api: nginx :80   warehouse: postgres :5432"
sl_info "cgroups under ${SL_CG_ROOT[a]} and ${SL_CG_ROOT[b]}, pins in ${SL_PIN[a]} and ${SL_PIN[b]}"

sl_step "A mesh CA for $SL_TRUST_DOMAIN, and a certificate for each node"
sl_pki
sl_show admin sluicectl ca init --trust-domain "$SL_TRUST_DOMAIN" --dir "$SL_TMP/ca"
for n in "${SL_NODES[@]}"; do
	sl_show admin sluicectl ca issue "${SL_NODE[$n]}" --dir "$SL_TMP/ca" --out "${SL_DIR[$n]}/pki"
done
ctl a ca show "${SL_DIR[a]}/pki/node.crt"
expect "node-a's key is readable by root only" \
	test "$(stat -c %a "${SL_DIR[a]}/pki/node.key")" = 600

sl_step "The IdP on node-a (oidc-provider, tests/oidc/idp.mjs) at $SL_IDP_URL"
sl_idp_start
sl_show node-a node tests/oidc/idp.mjs --clients "$SL_IDP_DIR/clients.json" --host "$SL_ADDR_A" \
	--port "$SL_IDP_PORT" --tls-cert "$SL_IDP_DIR/idp.crt" --tls-key "$SL_IDP_DIR/idp.key"
sl_info "(in the background; its own certificate, trusted by both agents as pki/idp-ca.crt)"
sl_info "clients (client_secret_basic; secrets in files of mode 0600, never on a command line):"
jq -r '.[] | "   \(.client_id)   groups [\(.claims.groups // [] | join(","))]\(
	if .tls_client_certificate_bound_access_tokens then "   tokens bound to node-a'"'"'s certificate" else "" end)"' \
	"$SL_IDP_DIR/clients.json"
expect "the workloads' client secrets are readable by root only" \
	test "$(stat -c %a "${SL_DIR[a]}/secrets/$SL_JOB")" = 600

sl_step "Starting sluiced on node-b (the tunnel's receiving end), then on node-a"
sl_info "configs: $SL_SRC/deploy/demo/sluice.yaml (node-a), sluice-node-b.yaml (node-b)"
sl_info "(paths rewritten for this run); policy on both: $SL_SRC/deploy/demo/policy.yaml"
sl_agent b
sl_agent a
sl_creds_wait
for n in b a; do
	sl_info "$(ctl_json "$n" status | jq -r --arg node "${SL_NODE[$n]}" \
		'"\($node): sluiced running, pid \(.agent.pid); policy generation \(.policy.generation) live, default \(.policy.default)"')"
done

sl_step "The job calls the api (allowed: jobs-call-api, through the tunnel to node-b)"
curl_code "$SL_JOB" "http://$SL_ADDR_B/"
expect "job -> api over IPv4 answers 200" test "$RC:$OUT" = 0:200
curl_code "$SL_JOB" "http://[$SL_ADDR6_B]/"
expect "job -> api over IPv6 answers 200" test "$RC:$OUT" = 0:200
expect "node-b's agent let both in and audited them (rule jobs-call-api)" \
	sl_audit_wait "$(printf '.direction == "inbound" and .verdict == "allow" and
		.src_workload == "%s" and .rule == "jobs-call-api"' "$SL_JOB_ID")" 2

sl_step "The notebook calls the api (allowed: notebooks-call-api)"
curl_code "$SL_NOTEBOOK" "http://$SL_ADDR_B/"
expect "notebook -> api answers 200" test "$RC:$OUT" = 0:200

sl_step "The job's Java client calls the api (JVM defaults: a dual-stack socket to ::ffff:$SL_ADDR_B)"
run "$SL_JOB" java -XX:TieredStopAtLevel=1 deploy/demo/HttpStatus.java "http://$SL_ADDR_B/"
expect "job's JVM -> api answers 200" test "$RC:$OUT" = 0:200

sl_step "The job tries DELETE on the api (denied per request by node-b's agent: no-job-deletes)"
run "$SL_JOB" curl -sS -g -o /dev/null -w '%{http_code}\n' --max-time 5 -X DELETE "http://$SL_ADDR_B/"
expect "403 from node-b's agent; the request never reached nginx" test "$RC:$OUT" = 0:403
expect "node-b's agent audited the request (rule no-job-deletes)" \
	sl_audit_wait "$(printf '.direction == "request" and .verdict == "deny" and
		.src_workload == "%s" and .rule == "no-job-deletes" and .method == "DELETE"' \
		"$SL_JOB_ID")" 1

sl_step "The notebook calls its own loopback service (as PySpark's py4j does), the job calls it too"
sl_show "node-a/$SL_NOTEBOOK" python3 -m http.server --bind 127.0.0.1 25333
sl_info "(in the background)"
# Bounded by timeout, so nothing outlives the step whatever happens to it.
sl_in_cgroup a "$SL_NOTEBOOK" timeout 30 python3 -m http.server --bind 127.0.0.1 25333 \
	</dev/null >/dev/null 2>&1 &
LOCAL_PID=$!
for ((i = 0; i < 50; i++)); do
	sl_in a sh -c 'exec 3<>/dev/tcp/127.0.0.1/25333' 2>/dev/null && break
	sleep 0.1
done
curl_code "$SL_NOTEBOOK" "http://127.0.0.1:25333/"
expect "notebook -> its own 127.0.0.1:25333 answers 200 (no rule needed)" test "$RC:$OUT" = 0:200
run "$SL_JOB" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 25333))'
expect "job -> the notebook's loopback listener is refused (default deny)" test "$RC" != 0
expect "connect() was refused with EPERM" grep -q 'Operation not permitted' <<<"$OUT"
kill "$LOCAL_PID" 2>/dev/null
pkill -f 'http.server --bind 127.0.0.1 25333'

sl_step "The job queries the warehouse (allowed: etl-reads-warehouse, role etl from its token)"
run "$SL_JOB" "${PSQL[@]}" -c 'SELECT now()'
expect "job -> warehouse query succeeds" test "$RC" = 0

sl_step "The notebook queries the warehouse (denied: no rule, default deny)"
run "$SL_NOTEBOOK" "${PSQL[@]}" -c 'SELECT now()'
expect "notebook -> warehouse fails" test "$RC" != 0
expect "connect() was refused with EPERM on node-a" grep -q 'Operation not permitted' <<<"$OUT"

sl_step "A policy change, dry run first: the notebook would gain the warehouse"
NB_POLICY=${SL_DIR[a]}/policy-notebooks-warehouse.yaml
sed '/^  - name: etl-reads-warehouse$/i\
  - name: notebooks-read-warehouse\
    from: {kind: notebook}\
    to: [warehouse]\
    action: allow' "${SL_DIR[a]}/policy.yaml" >"$NB_POLICY"
sl_show node-a sluicectl policy apply "$NB_POLICY" --dry-run
OUT=$(sl_ctl a policy apply "$NB_POLICY" --dry-run 2>&1) || true
printf '%s\n' "$OUT" | sed 's/^/   /'
expect "the diff adds the rule notebooks-read-warehouse" grep -q '^  + notebooks-read-warehouse' <<<"$OUT"
expect "... and the notebook's pair with the warehouse goes deny -> allow" \
	grep -Eq "$(sl_workload_id a "$SL_NOTEBOOK") +warehouse .*deny +allow" <<<"$OUT"
run "$SL_NOTEBOOK" "${PSQL[@]}" -c 'SELECT 1'
expect "the dry run changed nothing: the notebook is still refused" test "$RC" != 0

sl_step "Applying it on both nodes (node-b decides the tunnel's OPEN, node-a the connect())"
for n in b a; do
	sl_show "${SL_NODE[$n]}" sluicectl policy apply "$NB_POLICY"
	OUT=$(sl_ctl "$n" policy apply "$NB_POLICY" 2>&1 | head -n1) || true
	printf '   %s\n' "$OUT"
	expect "${SL_NODE[$n]}: a new generation is live" grep -q 'generation [0-9]* live' <<<"$OUT"
done
run "$SL_NOTEBOOK" "${PSQL[@]}" -c 'SELECT 1'
expect "notebook -> warehouse query now succeeds" test "$RC" = 0

sl_step "Rolling it back on both nodes: one write each"
for n in b a; do
	sl_show "${SL_NODE[$n]}" sluicectl policy rollback
	OUT=$(sl_ctl "$n" policy rollback 2>&1) || true
	printf '   %s\n' "$OUT"
	expect "${SL_NODE[$n]}: rolled back" grep -q '^rolled back: generation' <<<"$OUT"
done
run "$SL_NOTEBOOK" "${PSQL[@]}" -c 'SELECT 1'
expect "notebook -> warehouse is refused again" test "$RC" != 0

sl_step "Node-a's policy history: who applied what, and which is live"
sl_show node-a sluicectl policy history
sl_ctl a policy history | sed 's/^/   /'
expect "history: the file's generation is live again, the applied one is the rollback target" \
	test "$(sl_ctl a -j policy history | jq -r '[.generations[0].source, .live < .generations[0].generation] | @tsv')" = "$(printf 'socket\ttrue')"

sl_step "A user outside the control groups is refused by the control socket"
sl_show node-a "setpriv --reuid=nobody --regid=nogroup --clear-groups sluicectl policy rollback"
OUT=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$SL_BUILD/sluicectl" \
	-S "${SL_DIR[a]}/run/ctl/control.sock" policy rollback 2>&1) && RC=0 || RC=$?
printf '   %s\n' "$OUT"
expect "nobody is refused, and told why" grep -q 'permission denied' <<<"$OUT"

sl_step "A long query: the bytes cross the tunnel, node-b's agent dials the warehouse"
sl_show "node-a/$SL_JOB" "${PSQL[@]}" -c 'SELECT pg_sleep(4)'
sl_info "(in the background)"
sl_in_cgroup a "$SL_JOB" "${PSQL[@]}" -c 'SELECT pg_sleep(4)' >/dev/null 2>&1 &
sleep_pid=$!
sleep 1
ctl a flow list
sl_show node-a sluicectl top --once
sl_ctl a top --once | sed 's/^/   /'
expect "sluicectl top shows the job's live warehouse flow" \
	grep -q "$SL_JOB_ID .*warehouse" <<<"$(sl_ctl a top --once)"
expect "the open warehouse flow is listed on node-a" \
	test "$(ctl_json a flow list | jq --arg wl "$SL_JOB_ID" \
		'[.[] | select(.workload == $wl and .service == "warehouse" and .dport == 5432)] | length')" -ge 1
# On node B the flow is two sockets of sluiced: the tunnel from node A, and
# its own connection to the warehouse; no connection comes from node A to
# port 5432 itself.
show b ss -tnpH state established "( sport = :$TUNNEL_PORT or dport = :5432 )"
ss_b=$OUT
expect "node-b: a tunnel connection from node-a, held by sluiced" \
	grep -Eq "^ *[0-9]+ +[0-9]+ +$SL_ADDR_B:$TUNNEL_PORT +$SL_ADDR_A:[0-9]+ .*\"sluiced\"" <<<"$ss_b"
expect "node-b: sluiced's own connection to the warehouse, from node-b's address" \
	grep -Eq "^ *[0-9]+ +[0-9]+ +$SL_ADDR_B:[0-9]+ +$SL_ADDR_B:5432 .*\"sluiced\"" <<<"$ss_b"
expect "node-b: nothing from node-a reaches port 5432 directly" \
	test "$(sl_in b ss -tnH state established "( dport = :5432 or sport = :5432 )" |
		grep -c "$SL_ADDR_A:")" = 0
sleep_rc=0
wait "$sleep_pid" || sleep_rc=$?
expect "the 4 s query completed" test "$sleep_rc" = 0

sl_step "Someone outside the mesh dials node-b's tunnel with a certificate from another CA"
"$SL_BUILD/sluicectl" ca init --trust-domain "$SL_TRUST_DOMAIN" --dir "$SL_TMP/rogue" >/dev/null
"$SL_BUILD/sluicectl" ca issue "${SL_NODE[a]}" --dir "$SL_TMP/rogue" >/dev/null
denied_before=$(sl_audit_count '.direction == "inbound" and .verdict == "deny"')
run_rogue=(openssl s_client -brief -connect "$SL_ADDR_B:$TUNNEL_PORT"
	-cert "$SL_TMP/rogue/${SL_NODE[a]}/node.crt" -key "$SL_TMP/rogue/${SL_NODE[a]}/node.key"
	-CAfile "$SL_TMP/rogue/ca.crt")
sl_show node-a "${run_rogue[@]}"
OUT=$(sl_in a "${run_rogue[@]}" </dev/null 2>&1) || true
printf '%s\n' "$OUT" | tail -n 3 | sed 's/^/   /'
expect "node-b refused the handshake and audited it" \
	sl_audit_wait '.direction == "inbound" and .verdict == "deny"' $((denied_before + 1))

sl_step "The edge: node-a's agent rendered nginx's config from the policy's edge: section"
live=${SL_DIR[a]}/edge/live.conf
show a ls -l "${SL_DIR[a]}/edge"
show a grep -nE '^ *(listen|server_name|auth_request|proxy_pass|server unix|server [0-9])' "$live"
expect "the rendered config is root's, mode 0640" \
	test "$(stat -L -c %U:%a "$live")" = root:640
sl_edge_nginx
sl_show "node-a/$SL_EDGE_CG" nginx -p "$SL_EDGE" -c "${SL_DIR[a]}/edge-nginx.conf"
sl_info "(in the background, in the enrolled workload $SL_EDGE_CG: its connections to the api cross the tunnel)"

sl_step "alice gets a token from the IdP (client credentials; her tokens carry groups [${SL_USERS[alice]}])"
sl_show node-a curl -sS --cacert "$SL_IDP_DIR/idp.crt" -K "$SL_USER_DIR/alice.curl" \
	-d grant_type=client_credentials -d "resource=spiffe://$SL_TRUST_DOMAIN" "$SL_IDP_URL/token"
sl_user_token alice
sl_info "(the token goes to $SL_USER_DIR/alice.hdr, not to the screen; its claims:)"
cut -d. -f2 "$SL_USER_DIR/alice.token" | tr '_-' '/+' | base64 -d 2>/dev/null |
	jq -c '{iss, sub, aud, groups, exp}' | sed 's/^/   /' || true

sl_step "alice calls GET /api/jobs through the edge (allowed: readers-get-api)"
edge_a=$(sl_file_size "$SL_AUDIT_A")
edge alice GET /api/jobs
expect "200, and the api on node-b names alice as the caller (from the assertion)" \
	test "$CODE:$BODY" = "200:caller=alice roles=api-readers"
expect "node-a's agent audited the edge decision (caller alice, rule readers-get-api)" \
	sl_audit_wait '.direction == "edge" and .verdict == "allow" and .caller == "alice" and
		.rule == "readers-get-api"' 1 "$edge_a" "$SL_AUDIT_A"
expect "node-b's agent heard the request in the tunnel: the edge workload, caller alice, assertion verified" \
	sl_audit_wait "$(printf '.direction == "request" and .reason == "ok" and
		.src_workload == "spiffe://%s/service/edge" and .caller == "alice" and
		.path == "/api/jobs"' "$SL_TRUST_DOMAIN")" 1
# nginx keeps its upstream connection open: the tunnel flow is audited on
# node B when it closes, so the check looks at the flow list instead.
ctl a flow list
expect "nginx's connection to the api is a flow of the edge workload on node-a" \
	test "$(ctl_json a flow list | jq --arg wl "spiffe://$SL_TRUST_DOMAIN/service/edge" \
		'[.[] | select(.workload == $wl and .service == "api")] | length')" -ge 1

sl_step "A client that sends its own identity headers cannot pass for someone else"
edge alice GET /api/jobs -H 'X-Sluice-Caller: root' -H 'X-Sluice-Roles: admin' \
	-H 'X-Sluice-Assertion: forged'
expect "200, and the api still sees alice, not the client's headers" \
	test "$CODE:$BODY" = "200:caller=alice roles=api-readers"

sl_step "alice tries DELETE /api/jobs/7 (readers-get-api allows GET and HEAD only)"
edge alice DELETE /api/jobs/7
expect "403 (default-deny: no rule allows DELETE)" test "$CODE:${BODY%%:*}" = 403:default-deny

sl_step "alice tries GET /api/admin/users (denied: no-admin)"
edge alice GET /api/admin/users
expect "403 (policy-deny by rule no-admin)" \
	grep -q '^403:policy-deny: .*no-admin' <<<"$CODE:$BODY"

sl_step "No token at all"
edge - GET /api/jobs
expect "401 with WWW-Authenticate: Bearer" grep -q '^401:Bearer ' <<<"$CODE:$WWW"

sl_step "A forged token: alice's with one byte of its signature changed"
# A base64url character in the middle of the signature: every one of its
# bits is signature, unlike the last character's.
tok=$(cat "$SL_USER_DIR/alice.token")
i=$((${#tok} - 20))
c=${tok:i:1}
[[ $c == A ]] && c=B || c=A
(umask 077 && printf 'Authorization: Bearer %s\n' "${tok:0:i}$c${tok:i+1}" \
	>"$SL_USER_DIR/forged.hdr")
unset tok
edge forged GET /api/jobs
expect "401 invalid_token (bad-signature)" \
	grep -q '^401:Bearer .*error="invalid_token".*bad-signature' <<<"$CODE:$WWW"

sl_step "Node-a's edge decisions in its audit log"
edge_fields='select(.direction == "edge") | {verdict, caller, method, path, rule, reason}'
sl_show node-a jq -c "$edge_fields" "$SL_AUDIT_A"
jq -c "$edge_fields" "$SL_AUDIT_A" | sed 's/^/   /'
expect "six edge decisions audited" \
	test "$(sl_audit_count '.direction == "edge"' "$edge_a" "$SL_AUDIT_A")" = 6

sl_step "The edge's nginx stops: node-b audits its flow, the edge workload's"
# Only now: nginx keeps its upstream connection open, and node-b writes a
# flow's line when it closes.
show a nginx -p "$SL_EDGE" -c "${SL_DIR[a]}/edge-nginx.conf" -s quit
expect "node-b's agent let the edge workload in (rule edge-calls-api)" \
	sl_audit_wait "$(printf '.direction == "inbound" and .verdict == "allow" and
		.src_workload == "spiffe://%s/service/edge" and .rule == "edge-calls-api"' \
		"$SL_TRUST_DOMAIN")" 1

sl_step "Violations on node-a: who was refused at connect(), and why"
ctl a violation list
expect "the notebook's warehouse attempt is counted, under the warehouse service" \
	test "$(ctl_json a violation list | jq --arg wl "$SL_NOTEBOOK_ID" \
		'[.[] | select(.workload == $wl and .reason == "default-deny" and
			.service == "warehouse") | .count] | add // 0')" -ge 1

sl_step "The notebook's refused psql in node-a's audit log: BPF refused it, the agent wrote it"
psql_refused='.direction == "outbound" and .reason == "default-deny" and .comm == "psql"'
sl_show node-a jq -c "select($psql_refused)" "$SL_AUDIT_A"
jq -c "select($psql_refused)" "$SL_AUDIT_A" | tail -n 2 | sed 's/^/   /'
expect "one line per refusal, naming the warehouse, the workload and psql's pid" \
	test "$(jq -c "select($psql_refused and .service == \"warehouse\" and
		.src_workload == \"$SL_NOTEBOOK_ID\" and .pid > 0)" "$SL_AUDIT_A" | wc -l)" -ge 1

sl_step "Node-a's /metrics (Prometheus): the refusal and flow counters this traffic caused"
metrics=$(sl_in a curl -sf http://127.0.0.1:15020/metrics) || metrics=
sl_show node-a curl -s http://127.0.0.1:15020/metrics
sl_info "(the violation and connection counters of its $(wc -l <<<"$metrics") lines)"
grep -E '^sluice_(violations|tcp_connections_opened)_total' <<<"$metrics" | sed 's/^/   /'
expect "/metrics counts the notebook's default-deny to the warehouse" \
	grep -Eq "^sluice_violations_total\{source_workload=\"$SL_NOTEBOOK_ID\",destination_service=\"warehouse\",reason=\"default-deny\"\} [1-9]" <<<"$metrics"
metrics_b=$(sl_in b curl -sf http://127.0.0.1:15020/metrics) || metrics_b=
grep '^sluice_tunnel_decisions_total{direction="inbound"' <<<"$metrics_b" | grep -v ' 0$' |
	sed 's/^/   node-b: /'
expect "node-b's /metrics counts the tunnel flows it allowed" \
	grep -Eq '^sluice_tunnel_decisions_total\{direction="inbound",verdict="allow",session="(full|resumed)"\} [1-9]' <<<"$metrics_b"
expect "/metrics counts the job's allowed warehouse connections" \
	grep -Eq "^sluice_tcp_connections_opened_total\{source_workload=\"$SL_JOB_ID\",destination_service=\"warehouse\",verdict=\"allow\"\} [1-9]" <<<"$metrics"

sl_step "Credentials and when they expire"
for n in a b; do
	ctl "$n" cred list --run-dir "${SL_DIR[$n]}/run"
done
expect "node-a holds a valid token for the job, from the IdP" \
	test "$(ctl_json a cred list --run-dir "${SL_DIR[a]}/run" | jq --arg wl "$SL_JOB_ID" \
		'[.[] | select(.kind == "token" and .name == $wl and .source == "oidc" and
			.state == "valid")] | length')" = 1

sl_step "Node-b's audit log: one line per decision and per edge request (last 6)"
sl_show node-b tail -n 6 "$SL_AUDIT_B"
tail -n 6 "$SL_AUDIT_B" | sed 's/^/   /'
expect "no token in any log (no JWT in the audit logs, the agents', the IdP's or nginx's logs)" \
	test "$(cat "$SL_AUDIT_B" "$SL_AUDIT_A" "${SL_AGENT_LOG[a]}" "${SL_AGENT_LOG[b]}" \
		"$SL_IDP_DIR/idp.log" "$SL_EDGE/logs/error.log" |
		grep -cE 'eyJ[A-Za-z0-9_-]*\.eyJ')" = 0

sl_step "Per-service statistics on node-a (flows, bytes, upstream connect latency)"
ctl a stats

sl_step "Agent status on node-a"
ctl a status

for n in a b; do
	sl_step "What sluiced logged on ${SL_NODE[$n]}"
	sed 's/^/   /' "${SL_AGENT_LOG[$n]}"
done

sl_step "Stopping both agents (SIGTERM)"
for n in a b; do
	agent_rc=0
	sl_agent_stop "$n" || agent_rc=$?
	expect "sluiced on ${SL_NODE[$n]} exited cleanly" test "$agent_rc" = 0
	expect "its pins are gone" test -z "$(ls -A "${SL_PIN[$n]}" 2>/dev/null)"
done

printf '\n'
if ((${#failed[@]} > 0)); then
	printf '%sdemo: %d of %d checks FAILED:%s\n' "$SL_RED" "${#failed[@]}" \
		$((passed + ${#failed[@]})) "$SL_OFF"
	printf '   %s\n' "${failed[@]}"
	exit 1
fi
printf '%sdemo: all %d checks passed%s\n' "$SL_GREEN" "$passed" "$SL_OFF"
