# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034
# (SC2034: the colours and some names are used by the scripts that source it)
#
# Shared by scripts/demo.sh and scripts/bench.sh (sourced, not run): a two
# node topology in network namespaces, nginx and PostgreSQL on node B, a mesh
# CA with a certificate per node, the test IdP (tests/oidc/idp.mjs) on node
# A with a client per workload and per demo user, a sluiced per node with
# the demo configs, and the edge's nginx on node A, all named with a per-run
# suffix so parallel runs never collide, and all removed again by sl_cleanup
# (installed as the EXIT trap by sl_init).
#
# Nodes are called a and b here; SL_NS, SL_CG_ROOT, SL_PIN, SL_DIR and the
# other per-node arrays are indexed by those letters.
#
# Commands enter a node with nsenter --net, never `ip netns exec`: the latter
# remounts /sys, which hides the cgroup2 and bpf file systems the agent and
# the workload cgroups live on.

SL_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SL_NODES=(a b)
declare -A SL_TEMPLATE=(
	[a]=$SL_SRC/deploy/demo/sluice.yaml
	[b]=$SL_SRC/deploy/demo/sluice-node-b.yaml
)

# The demo config's job and notebook on node A (deploy/demo/sluice.yaml):
# their cgroups here, their SPIFFE IDs read from the config by sl_init.
SL_JOB=job-1234
SL_NOTEBOOK=notebook-77

SL_ADDR_A=10.77.0.1
SL_ADDR_B=10.77.0.2
SL_ADDR6_A=fd77::1
SL_ADDR6_B=fd77::2
SL_SUBNET=10.77.0.0/24

# The IdP: where the demo configs' identity.oidc.issuer says it is.
SL_IDP_PORT=9443
SL_IDP_URL=https://$SL_ADDR_A:$SL_IDP_PORT
# The IdP group each workload's tokens carry (so node B's policy maps the
# job to the role etl, as node A's config says), and the demo's users:
# clients of the IdP that are no workload, with the groups of their tokens.
declare -A SL_IDP_GROUPS=([job-1234]=etl-jobs [notebook-77]=notebooks)
declare -A SL_USERS=([alice]=api-readers)
# The edge: the policy's edge host and port, and the edge workload's cgroup.
SL_EDGE_HOST=api.acme.example
SL_EDGE_PORT=80
SL_EDGE_CG=edge

if [[ -t 1 ]]; then
	SL_BOLD=$'\e[1m' SL_RED=$'\e[31m' SL_GREEN=$'\e[32m' SL_OFF=$'\e[0m'
else
	SL_BOLD='' SL_RED='' SL_GREEN='' SL_OFF=''
fi

sl_step()
{
	printf '\n%s== %s%s\n' "$SL_BOLD" "$*" "$SL_OFF"
}

sl_info()
{
	printf '   %s\n' "$*"
}

sl_die()
{
	printf '%serror:%s %s\n' "$SL_RED" "$SL_OFF" "$*" >&2
	exit 1
}

# Prints its arguments as one shell command line, quoting only where needed.
sl_quote()
{
	local arg line='' plain='^[]A-Za-z0-9_./:=@%+,[-]+$'

	for arg in "$@"; do
		if [[ $arg =~ $plain ]]; then
			line+="$arg "
		elif [[ $arg != *\'* ]]; then
			line+="'$arg' "
		else
			line+="$(printf '%q' "$arg") "
		fi
	done
	printf '%s\n' "${line% }"
}

# sl_show NODE CMD...: prints a command the way a user would type it.
sl_show()
{
	local node=$1

	shift
	printf '%s%s#%s %s\n' "$SL_BOLD" "$node" "$SL_OFF" "$(sl_quote "$@")"
}

# sl_init NAME BUILD: checks the environment and names everything this run
# creates. NAME is "demo" or "bench".
sl_init()
{
	local name=$1 build=$2

	((EUID == 0)) || sl_die "must run as root (try: sudo make $name)"
	SL_BUILD=$(cd "$build" 2>/dev/null && pwd) || sl_die "no build directory $build (run make)"
	[[ -x $SL_BUILD/sluiced && -x $SL_BUILD/sluicectl ]] ||
		sl_die "$SL_BUILD/sluiced or sluicectl missing (run: make BUILD=$build)"

	SL_RUN=$name-$$
	SL_CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[[ -n $SL_CG2 ]] || sl_die "no cgroup2 file system mounted (see /proc/mounts)"
	SL_TMP=$(mktemp -d "/tmp/sluice-$SL_RUN.XXXXXX")
	# nginx workers and postgres run as unprivileged users and read below.
	chmod 0755 "$SL_TMP"
	declare -gA SL_NS SL_PIN SL_CG_ROOT SL_DIR SL_NODE SL_CONFIG SL_AGENT_PID SL_AGENT_LOG
	local n
	for n in "${SL_NODES[@]}"; do
		SL_NS[$n]=sl-$name-$n-$$
		SL_PIN[$n]=/sys/fs/bpf/sluice-$SL_RUN-$n
		SL_CG_ROOT[$n]=$SL_CG2/sluice-$SL_RUN-$n
		SL_DIR[$n]=$SL_TMP/node-$n
		SL_NODE[$n]=$(sed -n 's/^node: *//p' "${SL_TEMPLATE[$n]}")
		SL_AGENT_PID[$n]=
	done
	SL_TRUST_DOMAIN=$(sed -n 's/^trust_domain: *//p' "${SL_TEMPLATE[a]}")
	SL_JOB_ID=$(sl_workload_id a "$SL_JOB")
	SL_NOTEBOOK_ID=$(sl_workload_id a "$SL_NOTEBOOK")
	SL_AUDIT_B=${SL_DIR[b]}/run/audit.jsonl
	SL_AUDIT_A=${SL_DIR[a]}/run/audit.jsonl
	SL_IDP_DIR=$SL_TMP/idp
	SL_EDGE=$SL_TMP/edge
	SL_USER_DIR=$SL_TMP/users
	SL_PIDS=()
	SL_PG_DATA=

	trap sl_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# sl_workload_id NODE CGROUP: the id NODE's demo config gives CGROUP.
sl_workload_id()
{
	local id

	id=$(sed -n "/^ *- cgroup: *$2\$/{n;s/^ *id: *//p}" "${SL_TEMPLATE[$1]}")
	[[ -n $id ]] || sl_die "${SL_TEMPLATE[$1]}: no workload with cgroup $2"
	printf '%s\n' "$id"
}

sl_file_size()
{
	stat -c %s "$1" 2>/dev/null || echo 0
}

# sl_audit_lines [OFFSET [FILE]]: node B's (or FILE's) audit lines after
# byte OFFSET (0).
sl_audit_lines()
{
	local file=${2:-$SL_AUDIT_B}

	[[ -e $file ]] || return 0
	tail -c +"$((${1:-0} + 1))" "$file"
}

# sl_audit_count FILTER [OFFSET [FILE]]: how many of them match the jq
# FILTER.
sl_audit_count()
{
	sl_audit_lines "${2:-0}" "${3:-}" | jq -n "[inputs | select($1)] | length"
}

# sl_audit_wait FILTER WANT [OFFSET [FILE]]: waits up to 2 s for WANT such
# lines. A flow's line is written when it closes, just after the client is
# done.
sl_audit_wait()
{
	local i

	for ((i = 0; i < 20; i++)); do
		(($(sl_audit_count "$1" "${3:-0}" "${4:-}") >= $2)) && return 0
		sleep 0.1
	done
	return 1
}

# sl_in NODE CMD...: runs CMD in node NODE's network namespace (and nothing
# else).
sl_in()
{
	local node=$1

	shift
	nsenter --net="/run/netns/${SL_NS[$node]}" -- "$@"
}

# sl_in_cgroup NODE CGROUP CMD...: runs CMD in node NODE inside CGROUP (a
# path relative to that node's cgroup root), as a workload process would.
sl_in_cgroup()
{
	local node=$1 cg=${SL_CG_ROOT[$1]}/$2

	shift 2
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	sl_in "$node" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

sl_bpffs()
{
	if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
		sl_info "mounting bpffs at /sys/fs/bpf"
		mount -t bpf bpf /sys/fs/bpf || sl_die "cannot mount bpffs at /sys/fs/bpf"
	fi
}

# Two nodes joined by a veth pair; both ends are called veth0, which only
# has to be unique inside each namespace.
sl_topology()
{
	local a=${SL_NS[a]} b=${SL_NS[b]} ns

	ip netns add "$a" || sl_die "ip netns add $a"
	ip netns add "$b" || sl_die "ip netns add $b"
	ip link add veth0 netns "$a" type veth peer name veth0 netns "$b" ||
		sl_die "cannot create the veth pair"
	ip -n "$a" addr add "$SL_ADDR_A/24" dev veth0
	ip -n "$a" addr add "$SL_ADDR6_A/64" dev veth0 nodad
	ip -n "$b" addr add "$SL_ADDR_B/24" dev veth0
	ip -n "$b" addr add "$SL_ADDR6_B/64" dev veth0 nodad
	for ns in "$a" "$b"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set veth0 up
	done
}

# sl_cgroups NODE [NAME...]: creates NODE's cgroup root, the cgroup of every
# workload its demo config lists, and the extra cgroups named.
sl_cgroups()
{
	local node=$1 root=${SL_CG_ROOT[$1]} cg

	shift
	mkdir "$root" || sl_die "cannot create cgroup $root"
	for cg in $(sed -n 's/^ *- cgroup: *//p' "${SL_TEMPLATE[$node]}") "$@"; do
		mkdir -p "$root/$cg" || sl_die "cannot create cgroup $root/$cg"
	done
}

# sl_nginx NAME NODE BODY [CGROUP]: starts an nginx master in node NODE, in
# CGROUP of that node if given, with its own prefix under $SL_TMP/NAME; BODY
# is the main-context configuration. It goes before events {}, as
# load_module must.
sl_nginx()
{
	local name=$1 node=$2 body=$3 dir=$SL_TMP/$1
	local run=(sl_in "$node")

	[[ -z ${4:-} ]] || run=(sl_in_cgroup "$node" "$4")

	mkdir -p "$dir/logs" "$dir/tmp"
	cat >"$dir/nginx.conf" <<-EOF
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/logs/error.log;
		$body
		events {
		    worker_connections 4096;
		}
	EOF
	"${run[@]}" nginx -q -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" ||
		sl_die "nginx $name did not start: $(tail -n3 "$dir/logs/error.log" 2>/dev/null)"
	sl_track_pidfile "$dir/nginx.pid" "nginx $name"
}

# sl_track_pidfile FILE WHAT: waits up to 5 s for a daemon to write its pid
# file (after it has bound its ports) and adds the pid to those cleaned up.
sl_track_pidfile()
{
	local file=$1 what=$2 i

	for ((i = 0; i < 50; i++)); do
		[[ -s $file ]] && break
		sleep 0.1
	done
	[[ -s $file ]] || sl_die "$what wrote no pid file"
	SL_PIDS+=("$(cat "$file")")
}

# The "api" service: nginx on node B serving a small page and a 1 MiB file,
# and under /api/ a line naming the caller the edge's assertion vouched for
# (the headers nginx at the edge sets from the agent's answer; a client's
# own copies never get this far).
sl_api()
{
	local html=$SL_TMP/api/html tmp=$SL_TMP/api/tmp

	mkdir -p "$html"
	echo "hello from the api on node-b" >"$html/index.html"
	head -c 1048576 /dev/urandom >"$html/1m.bin"
	sl_nginx api b "
		http {
		    access_log off;
		    client_body_temp_path $tmp/body;
		    proxy_temp_path $tmp/proxy;
		    fastcgi_temp_path $tmp/fastcgi;
		    uwsgi_temp_path $tmp/uwsgi;
		    scgi_temp_path $tmp/scgi;
		    keepalive_requests 1000000;
		    default_type text/plain;
		    # The assertion carries a certificate: a few kB in one header.
		    large_client_header_buffers 4 16k;
		    server {
		        listen $SL_ADDR_B:80;
		        listen [$SL_ADDR6_B]:80;
		        root $html;
		        location /api/ {
		            return 200 \"caller=\$http_x_sluice_caller roles=\$http_x_sluice_roles\\n\";
		        }
		    }
		}"
	sl_in a curl -sf -o /dev/null --max-time 5 "http://$SL_ADDR_B/" ||
		sl_die "node-a cannot reach the api at http://$SL_ADDR_B/"
}

# The "warehouse" service: PostgreSQL on node B, trusting node A's subnet.
sl_warehouse()
{
	local bin dir=$SL_TMP/pg

	bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
	[[ -x $bin/initdb ]] || sl_die "PostgreSQL server binaries not found in /usr/lib/postgresql"
	id postgres >/dev/null 2>&1 || sl_die "no postgres user (is the postgresql package installed?)"
	mkdir -p "$dir/sock"
	chown postgres: "$dir" "$dir/sock"
	# From /: postgres inherits the cwd, and a clone under a directory only
	# root may enter makes it warn "could not change directory".
	(cd / && runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres -N) \
		>"$dir/initdb.log" 2>&1 || sl_die "initdb failed: $(tail -n3 "$dir/initdb.log")"
	echo "host all all $SL_SUBNET trust" >>"$dir/data/pg_hba.conf"
	SL_PG_DATA=$dir/data
	SL_PG_BIN=$bin
	(cd / && sl_in b runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-w -t 30 -o "-c listen_addresses=$SL_ADDR_B -k $dir/sock" start) >/dev/null ||
		sl_die "postgres did not start: $(tail -n3 "$dir/server.log")"
}

# The mesh CA (in $SL_TMP/ca) and each node's certificate and key, in the
# pki/ directory next to its config, all from `sluicectl ca`.
sl_pki()
{
	local n log=$SL_TMP/ca.log

	"$SL_BUILD/sluicectl" ca init --trust-domain "$SL_TRUST_DOMAIN" --dir "$SL_TMP/ca" \
		>"$log" 2>&1 || sl_die "sluicectl ca init failed: $(cat "$log")"
	for n in "${SL_NODES[@]}"; do
		"$SL_BUILD/sluicectl" ca issue "${SL_NODE[$n]}" --dir "$SL_TMP/ca" \
			--out "${SL_DIR[$n]}/pki" >>"$log" 2>&1 ||
			sl_die "sluicectl ca issue ${SL_NODE[$n]} failed: $(tail -n3 "$log")"
	done
}

# sl_agent_config NODE: writes NODE's demo config with this run's paths, and
# the policy next to it, into SL_DIR[NODE]; SL_CONFIG[NODE] names it.
sl_agent_config()
{
	local node=$1 dir=${SL_DIR[$1]}

	mkdir -p "$dir/run"
	SL_CONFIG[$node]=$dir/sluice.yaml
	sed -e "s|^cgroup_root: .*|cgroup_root: ${SL_CG_ROOT[$node]#"$SL_CG2"/}|" \
	    -e "s|^bpf_pin_path: .*|bpf_pin_path: ${SL_PIN[$node]}|" \
	    -e "s|^run_dir: .*|run_dir: $dir/run|" \
	    -e "s|^  render_dir: .*|  render_dir: $dir/edge|" \
	    -e "s|^  nginx_conf: .*|  nginx_conf: $dir/edge-nginx.conf|" \
	    -e "s|^  nginx_pid: .*|  nginx_pid: $SL_EDGE/nginx.pid|" \
	    "${SL_TEMPLATE[$node]}" >"${SL_CONFIG[$node]}"
	cp "$SL_SRC/deploy/demo/policy.yaml" "$dir/policy.yaml"
	# The edge's outer nginx config: the agent runs nginx -t inside it.
	if grep -q '^edge:' "${SL_CONFIG[$node]}"; then
		mkdir -p "$SL_EDGE/logs" "$SL_EDGE/tmp"
		sed -e "s|@DIR@|$SL_EDGE|g" -e "s|@RENDER_DIR@|$dir/edge|g" \
			"$SL_SRC/deploy/demo/edge-nginx.conf" >"$dir/edge-nginx.conf"
	fi
	sl_secrets "$node"
}

# sl_random_secret FILE: 128 random bits, hex, in FILE (mode 0600).
sl_random_secret()
{
	(umask 077 && openssl rand -hex 16 >"$1") || sl_die "cannot write $1"
}

# sl_secrets NODE: a client secret for each of NODE's workloads with an
# oidc: key, in the file its config names (relative to the config's
# directory).
sl_secrets()
{
	local node=$1 dir=${SL_DIR[$1]} f

	while read -r f; do
		[[ $f == /* ]] || f=$dir/$f
		mkdir -p "$(dirname "$f")" && chmod 0700 "$(dirname "$f")"
		[[ -s $f ]] || sl_random_secret "$f"
	done < <(sed -n 's/^ *secret_file: *//p' "${SL_CONFIG[$node]}")
}

# sl_idp_clients FILE: the IdP's clients (idp.mjs's format): one per
# workload of node A's config, client_id its SPIFFE ID, its secret, its
# tokens bound to the certificate it fetches them with (node A's), groups
# from SL_IDP_GROUPS; and one per demo user (SL_USERS), whose secret and a
# curl config holding it go to SL_USER_DIR. The file holds secrets: 0600.
sl_idp_clients()
{
	local out=$1 cg id secret user list='[]'

	mkdir -p "$SL_USER_DIR" && chmod 0700 "$SL_USER_DIR"
	while read -r cg; do
		id=$(sl_workload_id a "$cg")
		secret=$(cat "${SL_DIR[a]}/secrets/$cg") || sl_die "no client secret for $cg"
		list=$(jq -c --arg id "$id" --arg s "$secret" --arg g "${SL_IDP_GROUPS[$cg]:-}" \
			'. + [{client_id: $id, client_secret: $s,
			       token_endpoint_auth_method: "client_secret_basic",
			       tls_client_certificate_bound_access_tokens: true}
			      + (if $g == "" then {} else {claims: {groups: [$g]}} end)]' <<<"$list")
	done < <(sed -n 's/^ *- cgroup: *//p' "${SL_TEMPLATE[a]}")
	for user in "${!SL_USERS[@]}"; do
		sl_random_secret "$SL_USER_DIR/$user.secret"
		secret=$(cat "$SL_USER_DIR/$user.secret")
		(umask 077 && printf 'user = "%s:%s"\n' "$user" "$secret" >"$SL_USER_DIR/$user.curl")
		list=$(jq -c --arg id "$user" --arg s "$secret" --arg g "${SL_USERS[$user]}" \
			'. + [{client_id: $id, client_secret: $s,
			       token_endpoint_auth_method: "client_secret_basic",
			       claims: {groups: [$g]}}]' <<<"$list")
	done
	(umask 077 && jq . <<<"$list" >"$out") || sl_die "cannot write $out"
}

# sl_idp_start: the test IdP on node A at SL_IDP_URL, https with a
# self-signed certificate that both nodes' configs trust (pki/idp-ca.crt),
# tokens of SL_IDP_TTL seconds (default 300). Call after sl_pki and
# sl_agent_config, before the agents start.
sl_idp_start()
{
	local dir=$SL_IDP_DIR n pid i log

	"$SL_SRC/tests/oidc/setup.sh" >"$SL_TMP/idp-setup.log" 2>&1 ||
		sl_die "tests/oidc/setup.sh failed: $(tail -n3 "$SL_TMP/idp-setup.log")"
	mkdir -p "$dir" && chmod 0700 "$dir"
	log=$dir/idp.log
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=sluice-demo-idp -addext "subjectAltName=IP:$SL_ADDR_A" \
		-keyout "$dir/idp.key" -out "$dir/idp.crt" >"$log" 2>&1 ||
		sl_die "cannot make the IdP's certificate: $(tail -n3 "$log")"
	for n in "${SL_NODES[@]}"; do
		cp "$dir/idp.crt" "${SL_DIR[$n]}/pki/idp-ca.crt"
	done
	sl_idp_clients "$dir/clients.json"
	# As for sluiced: $! must be node itself, which nsenter execs.
	nsenter --net="/run/netns/${SL_NS[a]}" -- node "$SL_SRC/tests/oidc/idp.mjs" \
		--clients "$dir/clients.json" --host "$SL_ADDR_A" --port "$SL_IDP_PORT" \
		--ttl "${SL_IDP_TTL:-300}" --tls-cert "$dir/idp.crt" --tls-key "$dir/idp.key" \
		</dev/null >"$dir/ready" 2>"$log" &
	pid=$!
	SL_PIDS+=("$pid")
	for ((i = 0; i < 150; i++)); do
		grep -q '^READY ' "$dir/ready" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sl_die "the IdP did not get ready: $(tail -n3 "$log")"
}

# sl_user_token USER: a token for the demo user USER from the IdP (client
# credentials, the secret from USER's curl config, never on a command line),
# in SL_USER_DIR/USER.token and, as a header line curl and wrk read,
# USER.hdr (both 0600). Prints nothing of the token.
sl_user_token()
{
	local user=$1 tok

	tok=$(sl_in a curl -sS --fail-with-body --max-time 10 --cacert "$SL_IDP_DIR/idp.crt" \
		-K "$SL_USER_DIR/$user.curl" -d grant_type=client_credentials \
		-d "resource=spiffe://$SL_TRUST_DOMAIN" "$SL_IDP_URL/token" |
		jq -er .access_token) || sl_die "the IdP gave $user no token"
	(umask 077 && printf '%s\n' "$tok" >"$SL_USER_DIR/$user.token" &&
		printf 'Authorization: Bearer %s\n' "$tok" >"$SL_USER_DIR/$user.hdr")
}

# sl_creds_wait: waits up to 15 s for node A's agent to hold a valid IdP
# token for each of its workloads and node B's the IdP's keys.
sl_creds_wait()
{
	local want i

	want=$(grep -c '^ *- cgroup:' "${SL_TEMPLATE[a]}")
	for ((i = 0; i < 150; i++)); do
		(($(sl_ctl a -j cred list --run-dir "${SL_DIR[a]}/run" 2>/dev/null | jq \
			'[.[] | select(.kind == "token" and .source == "oidc" and .state == "valid")] |
			length') >= want)) &&
			sl_ctl b -j cred list --run-dir "${SL_DIR[b]}/run" 2>/dev/null |
			jq -e 'any(.[]; .kind == "jwks" and .state == "valid")' >/dev/null &&
			return 0
		sleep 0.1
	done
	sl_die "no IdP tokens on node A or no IdP keys on node B after 15 s: $(tail -n3 "${SL_AGENT_LOG[a]}")"
}

# sl_edge_nginx: starts the edge's nginx on node A, in the edge workload's
# cgroup (its upstream connections are that workload's flows), with the
# outer config sl_agent_config wrote; node A's agent must have rendered
# live.conf already.
sl_edge_nginx()
{
	local conf=${SL_DIR[a]}/edge-nginx.conf

	[[ -e ${SL_DIR[a]}/edge/live.conf ]] ||
		sl_die "node A's agent rendered no ${SL_DIR[a]}/edge/live.conf: $(tail -n3 "${SL_AGENT_LOG[a]}")"
	rm -f "$SL_EDGE/nginx.pid"
	sl_in_cgroup a "$SL_EDGE_CG" nginx -q -e "$SL_EDGE/logs/error.log" -p "$SL_EDGE" \
		-c "$conf" || sl_die "the edge's nginx did not start: $(tail -n3 "$SL_EDGE/logs/error.log")"
	sl_track_pidfile "$SL_EDGE/nginx.pid" "the edge's nginx"
}

# sl_ctl NODE ARGS...: sluicectl on NODE's pins and control socket.
sl_ctl()
{
	local node=$1

	shift
	"$SL_BUILD/sluicectl" -P "${SL_PIN[$node]}" -S "${SL_DIR[$node]}/run/ctl/control.sock" "$@"
}

# sl_agent NODE [CONFIG]: starts sluiced in NODE with CONFIG (default
# SL_CONFIG[NODE]) and waits until sluicectl reports it running with a
# policy generation live. Its log, across restarts, is SL_AGENT_LOG[NODE].
sl_agent()
{
	local node=$1 config=${2:-${SL_CONFIG[$1]}} log=${SL_DIR[$1]}/sluiced.log pid i

	SL_AGENT_LOG[$node]=$log
	# Not through sl_in: $! must be sluiced itself (nsenter execs it), not a
	# subshell that would leave it running when signalled.
	nsenter --net="/run/netns/${SL_NS[$node]}" -- "$SL_BUILD/sluiced" -c "$config" 2>>"$log" &
	pid=$!
	SL_AGENT_PID[$node]=$pid
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			sed 's/^/   sluiced: /' "$log" >&2
			SL_AGENT_PID[$node]=
			sl_die "sluiced on ${SL_NODE[$node]} exited during start"
		fi
		sl_ctl "$node" -j status 2>/dev/null |
			jq -e '.agent.state == "running" and .policy.generation != null' \
				>/dev/null 2>&1 && return 0
		sleep 0.1
	done
	sed 's/^/   sluiced: /' "$log" >&2
	sl_die "sluiced on ${SL_NODE[$node]} not running with a live policy after 10 s"
}

# sl_agent_stop NODE: stops NODE's agent with SIGTERM; returns its exit
# status.
sl_agent_stop()
{
	local node=$1 pid=${SL_AGENT_PID[$1]} rc=0 i

	[[ -n $pid ]] || return 0
	SL_AGENT_PID[$node]=
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# Removes a cgroup tree bottom-up, killing what still runs in it.
sl_cgroup_remove()
{
	local dir=$1 sub i

	[[ -d $dir ]] || return 0
	for sub in "$dir"/*/; do
		[[ -d $sub ]] && sl_cgroup_remove "${sub%/}"
	done
	if [[ -e $dir/cgroup.kill ]]; then
		echo 1 >"$dir/cgroup.kill" 2>/dev/null
	else
		xargs -r kill -KILL <"$dir/cgroup.procs" 2>/dev/null
	fi
	for ((i = 0; i < 50; i++)); do
		rmdir "$dir" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "warning: cannot remove cgroup $dir" >&2
}

# EXIT trap: undoes whatever sl_init and the setup functions created, in
# reverse order, and keeps the script's exit status.
sl_cleanup()
{
	local rc=$? pid n ns i

	set +e
	trap - EXIT
	# A second Ctrl-C must not leave half the run behind.
	trap "" INT TERM
	for n in "${SL_NODES[@]}"; do
		sl_agent_stop "$n"
	done
	if [[ -n $SL_PG_DATA && -e $SL_PG_DATA/postmaster.pid ]]; then
		(cd / && runuser -u postgres -- "$SL_PG_BIN/pg_ctl" -D "$SL_PG_DATA" -m immediate \
			-w stop) >/dev/null 2>&1
	fi
	for pid in "${SL_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${SL_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
	for n in "${SL_NODES[@]}"; do
		sl_cgroup_remove "${SL_CG_ROOT[$n]}"
		ns=${SL_NS[$n]}
		if [[ -e /run/netns/$ns ]]; then
			# Anything still in the namespace was started by this run.
			ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
			ip netns del "$ns"
		fi
		[[ -e ${SL_PIN[$n]} ]] && rm -rf "${SL_PIN[$n]}"
	done
	[[ -n $SL_TMP && -d $SL_TMP ]] && rm -rf "$SL_TMP"
	exit "$rc"
}
