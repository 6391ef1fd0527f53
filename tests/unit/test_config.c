// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bad_files.h"

#include "config.h"
#include "log.h"

#define DATA "tests/data/config/"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Each file breaks exactly one rule; the message must name file and line. */
static const struct bad_case bad_cases[] = {
	{ "bad-otlp-endpoint.yaml", 6,
	  "bad otlp.endpoint \"grpc://127.0.0.1:4317\": expected an http:// or https:// URL such "
	  "as http://127.0.0.1:4318" },
	{ "bad-otlp-batch.yaml", 8, "otlp.batch (128) is larger than otlp.queue (64)" },
	{ "bad-otlp-timeout.yaml", 7, "otlp.timeout must be 100ms to 300s" },
	{ "bad-http-header-size.yaml", 6, "http.max_header_size must be 256 bytes to 64k" },
	{ "bad-http-line-over-head.yaml", 6,
	  "http.max_request_line (16384) is larger than http.max_header_size (8192)" },
	{ "bad-http-max-headers.yaml", 6,
	  "bad value \"0\" for \"max_headers\": expected a whole number from 1 to 10000" },
	{ "bad-http-edge-domain.yaml", 6,
	  "workload pattern \"spiffe://other.example/service/edge\" for http.edge_workloads is "
	  "not in trust domain \"acme.example\"" },
	{ "bad-audit-key.yaml", 6, "unknown key \"http_allow\"" },
	{ "bad-unknown-key.yaml", 3, "unknown key \"listn\"" },
	{ "bad-missing-node.yaml", 1, "missing required key \"node\"" },
	{ "bad-missing-policy.yaml", 2, "missing required key \"policy\"" },
	{ "bad-missing-value.yaml", 1, "missing value for \"node\"" },
	{ "bad-node-name.yaml", 1,
	  "bad node name \"Node_A\": expected 1-63 characters of a-z, 0-9, '.' and '-'" },
	{ "bad-node-dotdot.yaml", 1, "bad node name \"..\": cannot be \".\" or \"..\"" },
	{ "bad-peer-dot.yaml", 6, "bad node name \".\": cannot be \".\" or \"..\"" },
	{ "bad-trust-domain.yaml", 2,
	  "bad trust domain \"acme..example\": expected a lowercase DNS name such as "
	  "acme.example" },
	{ "bad-type-list.yaml", 1, "expected a scalar for \"node\", got a sequence" },
	{ "bad-dup-key.yaml", 4, "duplicate key \"node\" (first at line 1)" },
	{ "bad-yaml-syntax.yaml", 4,
	  "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
	  "that started at line 3)" },
	{ "bad-empty.yaml", 1, "empty document" },
	{ "bad-cgroup-root.yaml", 3,
	  "bad cgroup path \"sluice//node-a\" for \"cgroup_root\": expected a path without "
	  "empty, \".\" or \"..\" segments" },
	{ "bad-agent-cgroup.yaml", 5,
	  "bad cgroup path \"/sluiced\" for \"agent_cgroup\": expected a relative path without "
	  "empty, \".\" or \"..\" segments" },
	{ "bad-listen-port.yaml", 7,
	  "bad address \"127.0.0.1:99999\" for listen.outbound: expected IP:PORT or [IPv6]:PORT" },
	{ "bad-listen-family.yaml", 6,
	  "bad address \"[::1]:15001\" for listen.outbound: expected an IPv4 address (IPv6 goes "
	  "in listen.outbound6)" },
	{ "bad-listen6-family.yaml", 6,
	  "bad address \"127.0.0.1:15001\" for listen.outbound6: expected an IPv6 address in "
	  "brackets" },
	{ "bad-listen-port-zero.yaml", 6,
	  "bad address \"127.0.0.1:0\" for listen.outbound: port must be 1-65535" },
	{ "bad-outbound6-port.yaml", 7,
	  "listen.outbound6 port 15002 must equal listen.outbound port 15001" },
	{ "bad-listen-key.yaml", 7, "unknown key \"inbound\"" },
	{ "bad-listen-type.yaml", 5, "expected a mapping for \"listen\", got a scalar" },
	{ "bad-pin-path.yaml", 5,
	  "bad path \"sys/fs/bpf/sluice\" for \"bpf_pin_path\": must be absolute" },
	{ "bad-failure-mode.yaml", 5,
	  "unknown failure_mode \"half-open\" (expected closed or open)" },
	{ "bad-duration.yaml", 5,
	  "bad duration \"3x\" for \"heartbeat_timeout\": expected a number with ms, s, m or h" },
	{ "bad-duration-range.yaml", 5, "duration \"5000000h\" for \"idle_timeout\" is too long" },
	{ "bad-heartbeat-short.yaml", 5,
	  "heartbeat_timeout must be longer than the agent's heartbeat interval (1000ms)" },
	{ "bad-deep.yaml", 69, "nesting deeper than 64 levels" },
	{ "bad-tunnel-max.yaml", 6,
	  "bad value \"0\" for \"max_handshakes\": expected a whole number from 1 to 65536" },
	{ "bad-tunnel-per-address.yaml", 7,
	  "max_handshakes_per_address 65 is more than max_handshakes 64" },
	{ "bad-tunnel-timeout.yaml", 6, "handshake_timeout must be from 100ms to 300s" },
	{ "bad-tunnel-timeout-syntax.yaml", 6,
	  "bad duration \"soon\" for \"handshake_timeout\": expected a number with ms, s, m or h" },
	{ "bad-keepalive-idle.yaml", 6, "keepalive.idle must be whole seconds from 1s to 32767s" },
	{ "bad-keepalive-count.yaml", 6,
	  "bad value \"0\" for \"count\": expected a whole number from 1 to 127" },
	{ "bad-log-level.yaml", 5,
	  "unknown log_level \"verbose\" (expected error, warn, info or debug)" },
	{ "bad-workloads-type.yaml", 6, "expected a sequence for \"workloads\", got a mapping" },
	{ "bad-workload-item.yaml", 6,
	  "expected a mapping for an item of \"workloads\", got a scalar" },
	{ "bad-workload-key.yaml", 8, "unknown key \"role\"" },
	{ "bad-workload-missing-id.yaml", 8, "missing required key \"id\"" },
	{ "bad-cgroup-escape.yaml", 6,
	  "bad cgroup path \"../other\" for \"cgroup\": expected a relative path without empty, "
	  "\".\" or \"..\" segments" },
	{ "bad-spiffe-syntax.yaml", 7,
	  "bad SPIFFE ID \"acme.example/job/1\": expected spiffe://<trust-domain>/<kind>/<name>" },
	{ "bad-spiffe-kind.yaml", 7,
	  "bad SPIFFE ID \"spiffe://acme.example/jobs/1\": kind must be job, notebook, cluster "
	  "or service" },
	{ "bad-spiffe-name.yaml", 7,
	  "bad SPIFFE ID \"spiffe://acme.example/job/a/b\": expected "
	  "spiffe://<trust-domain>/<kind>/<name>" },
	{ "bad-spiffe-domain.yaml", 7,
	  "SPIFFE ID \"spiffe://other.example/job/1\" is not in trust domain \"acme.example\"" },
	{ "bad-dup-cgroup.yaml", 8,
	  "duplicate workload cgroup \"job-1\" (first defined at line 6)" },
	{ "bad-dup-id.yaml", 9,
	  "duplicate workload ID \"spiffe://acme.example/job/1\" (first defined at line 6)" },
	{ "bad-too-many-roles.yaml", 8, "too many items in \"roles\" (17, max 16)" },
	{ "bad-role-name.yaml", 10,
	  "bad role name \"ETL\": expected 1-63 characters of a-z, 0-9, '-' and '_'" },
	{ "bad-dup-role.yaml", 8, "duplicate role \"etl\"" },
	{ "bad-identity-no-key.yaml", 6, "missing required key \"key\"" },
	{ "bad-token-lifetime.yaml", 9, "token_lifetime must be between 3s and 24h" },
	{ "bad-clock-skew.yaml", 9, "clock_skew must be whole seconds from 1s to 5m" },
	{ "bad-peer-tunnel.yaml", 7,
	  "bad tunnel address \"10.99.0.2\" for peer node-b: expected IP:PORT or [IPv6]:PORT" },
	{ "bad-peer-cidr.yaml", 8,
	  "bad CIDR \"10.99.0.1/24\" for peer node-b: host bits must be zero (did you mean "
	  "10.99.0.0/24?)" },
	{ "bad-peer-self.yaml", 6, "peer \"node-a\" is this node; list only other nodes" },
	{ "bad-peer-dup.yaml", 9, "duplicate peer \"node-b\" (first defined at line 6)" },
	{ "bad-inbound.yaml", 8, "unknown inbound \"closed\" (expected open or mesh-only)" },
	{ "bad-oidc-no-client.yaml", 12,
	  "workload \"spiffe://acme.example/job/1\" has no oidc: client (identity.oidc is set)" },
	{ "bad-oidc-two-auth.yaml", 15,
	  "\"oidc\" needs exactly one of secret_file (client_secret_basic) or key_file "
	  "(private_key_jwt)" },
	{ "bad-oidc-without-idp.yaml", 9,
	  "oidc: for workload \"spiffe://acme.example/job/1\" needs identity.oidc" },
	{ "bad-tunnel-addr.yaml", 6,
	  "bad address \"*:15008\" for listen.tunnel: expected IP:PORT or [IPv6]:PORT (port "
	  "1-65535)" },
	{ "bad-oidc-issuer.yaml", 10, "bad issuer \"idp.example\": expected an https:// URL" },
	{ "bad-peer-workload-star.yaml", 11,
	  "bad workload pattern \"spiffe://acme.example/*/1\" for peer node-b: '*' may only end "
	  "the name" },
	{ "bad-peer-workload-kind.yaml", 11,
	  "bad workload pattern \"spiffe://acme.example/*\" for peer node-b: expected "
	  "spiffe://<trust-domain>/<kind>/<name>" },
	{ "bad-peer-workload-domain.yaml", 11,
	  "workload pattern \"spiffe://other.example/job/*\" for peer node-b is not in trust "
	  "domain \"acme.example\"" },
	{ "bad-peer-workload-name.yaml", 11,
	  "bad workload pattern \"spiffe://acme.example/job/a/b\" for peer node-b: expected "
	  "spiffe://<trust-domain>/<kind>/<name>" },
	{ "bad-edge-routable.yaml", 12,
	  "edge.listen \"10.0.0.1:15010\" is not a loopback address: use 127.0.0.1 or [::1], "
	  "or set edge.listen_routable: true" },
	{ "bad-edge-listen.yaml", 12,
	  "bad address \"localhost:15010\" for edge.listen: expected IP:PORT or [IPv6]:PORT "
	  "(port 1-65535)" },
	{ "bad-edge-cache-max.yaml", 13,
	  "bad value \"2000000\" for \"max\": expected a whole number from 0 to 1000000" },
	{ "bad-edge-cache-ttl.yaml", 13, "\"ttl\" must be whole seconds from 1s to 86400s" },
	{ "bad-edge-assertion.yaml", 12,
	  "\"assertion_lifetime\" must be whole seconds from 1s to 300s" },
	{ "bad-edge-group.yaml", 12,
	  "unknown group \"no-such-group-sluice\" for edge.socket_group: give a group name of "
	  "this host or a numeric gid" },
	{ "bad-edge-introspection.yaml", 13, "missing required key \"secret_file\"" },
	{ "bad-edge-key.yaml", 12, "unknown key \"sockett\"" },
	{ "bad-edge-no-oidc.yaml", 9,
	  "edge: needs identity.oidc (the IdP whose tokens the edge verifies); add identity: "
	  "with oidc: issuer: ..." },
	{ "bad-http-routable.yaml", 10,
	  "listen.http \"10.0.0.1:15020\" is not a loopback address: use 127.0.0.1 or [::1], "
	  "or set listen.http_routable: true" },
	{ "bad-http-address.yaml", 10,
	  "bad address \"localhost:15020\" for listen.http: expected IP:PORT, [IPv6]:PORT "
	  "(port 1-65535) or off" },
	{ "bad-http-port.yaml", 10,
	  "bad address \"127.0.0.1:0\" for listen.http: expected IP:PORT, [IPv6]:PORT "
	  "(port 1-65535) or off" },
	{ "bad-edge-no-identity.yaml", 5,
	  "edge: needs identity.oidc (the IdP whose tokens the edge verifies); add identity: "
	  "with oidc: issuer: ..." },
};

static void assert_empty(const struct config *cfg)
{
	static const struct config zero;

	assert_memory_equal(cfg, &zero, sizeof(zero));
}

static void assert_sin(const struct sockaddr_in *sin, const char *addr, int port)
{
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(sin->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_sin6(const struct sockaddr_in6 *sin6, const char *addr, int port)
{
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void test_bad_config(void **state)
{
	const struct bad_case *c = *state;
	char path[128], want[ERRMSG_LEN];
	struct errmsg err = {};
	struct config cfg;

	bad_case_expect(DATA, c, path, sizeof(path), want, sizeof(want));
	assert_int_equal(config_load(path, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, want);
	assert_empty(&cfg);
}

static void test_otlp(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "otlp.yaml", &cfg, &err), 0);
	assert_string_equal(cfg.otlp.endpoint, "https://collector.acme.example:4318");
	assert_string_equal(cfg.otlp.traces_url, "https://collector.acme.example:4318/v1/traces");
	assert_non_null(strstr(cfg.otlp.ca_file, "tests/data/config/collector-ca.crt"));
	assert_int_equal(cfg.otlp.queue, 64);
	assert_int_equal(cfg.otlp.batch, 8);
	assert_int_equal(cfg.otlp.interval_ms, 250);
	assert_int_equal(cfg.otlp.timeout_ms, 10000);
	config_free(&cfg);
	assert_int_equal(config_load(DATA "good.yaml", &cfg, &err), 0);
	assert_null(cfg.otlp.endpoint);
	config_free(&cfg);
}

/* The gate's limits and the edge workloads, set and defaulted. */
static void test_http_section(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "http.yaml", &cfg, &err), 0);
	assert_true(cfg.audit_http_allows);
	assert_int_equal(cfg.http_svc.max_request_line, 4096);
	assert_int_equal(cfg.http_svc.max_header_size, 16384);
	assert_int_equal(cfg.http_svc.max_headers, 50);
	assert_true(config_edge_workload(&cfg, "spiffe://acme.example/service/edge"));
	assert_true(config_edge_workload(&cfg, "spiffe://acme.example/service/edge-2"));
	assert_false(config_edge_workload(&cfg, "spiffe://acme.example/service/edgy"));
	assert_false(config_edge_workload(&cfg, "spiffe://acme.example/job/edge"));
	config_free(&cfg);
	assert_int_equal(config_load(DATA "good.yaml", &cfg, &err), 0);
	assert_false(cfg.audit_http_allows);
	assert_int_equal(cfg.http_svc.max_request_line, 8192);
	assert_int_equal(cfg.http_svc.max_header_size, 32768);
	assert_int_equal(cfg.http_svc.max_headers, 100);
	assert_false(config_edge_workload(&cfg, "spiffe://acme.example/service/edge"));
	config_free(&cfg);
}

static void test_good_full(void **state)
{
	struct errmsg err = {};
	struct workload_cfg *w;
	struct config cfg;

	assert_int_equal(config_load(DATA "good.yaml", &cfg, &err), 0);
	assert_string_equal(cfg.path, DATA "good.yaml");
	assert_string_equal(cfg.node, "node-a");
	assert_string_equal(cfg.trust_domain, "acme.example");
	assert_string_equal(cfg.cgroup_root, "/sluice/node-a");
	assert_string_equal(cfg.agent_cgroup, "sluiced");
	assert_sin(&cfg.outbound4, "127.0.0.2", 15002);
	assert_sin6(&cfg.outbound6, "::1", 15002);
	assert_string_equal(cfg.pin_path, "/sys/fs/bpf/sluice-test");
	assert_string_equal(cfg.run_dir, "/run/sluice-test");
	assert_string_equal(cfg.policy_path, DATA "../policy/good.yaml");
	assert_true(cfg.fail_open);
	assert_int_equal(cfg.heartbeat_timeout_ms, 1500);
	assert_int_equal(cfg.idle_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(cfg.keepalive.idle_s, 30);
	assert_int_equal(cfg.keepalive.interval_s, 5);
	assert_int_equal(cfg.keepalive.count, 3);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.nr_workloads, 3);

	w = &cfg.workloads[0];
	assert_string_equal(w->cgroup, "job-1234");
	assert_string_equal(w->id, "spiffe://acme.example/job/1234");
	assert_int_equal(w->kind, WL_KIND_JOB);
	assert_int_equal(w->nr_roles, 1);
	assert_string_equal(w->roles[0], "etl");
	assert_int_equal(w->line, 17);
	assert_int_equal(w->roles_line, 19);

	w = &cfg.workloads[1];
	assert_string_equal(w->cgroup, "notebooks/nb-7");
	assert_string_equal(w->id, "spiffe://acme.example/notebook/7");
	assert_int_equal(w->kind, WL_KIND_NOTEBOOK);
	assert_int_equal(w->nr_roles, 2);
	assert_string_equal(w->roles[0], "analyst");
	assert_string_equal(w->roles[1], "etl");
	assert_int_equal(w->line, 20);
	assert_int_equal(w->roles_line, 22);

	w = &cfg.workloads[2];
	assert_string_equal(w->cgroup, "svc-api");
	assert_int_equal(w->kind, WL_KIND_SERVICE);
	assert_int_equal(w->nr_roles, 0);
	assert_int_equal(w->line, 25);

	config_free(&cfg);
	assert_empty(&cfg);
}

static void test_good_identity(void **state)
{
	const struct peer_cfg *peer;
	struct sockaddr_in6 *s6;
	struct errmsg err = {};
	struct config cfg;
	uint32_t addr[4] = {};

	assert_int_equal(config_load(DATA "good-identity.yaml", &cfg, &err), 0);
	assert_sin((struct sockaddr_in *)&cfg.tunnel, "10.99.0.1", 15108);
	assert_true(cfg.identity.enabled);
	assert_string_equal(cfg.identity.ca, DATA "pki/ca.crt");
	assert_string_equal(cfg.identity.cert, "/etc/sluice/pki/node.crt");
	assert_string_equal(cfg.identity.key, DATA "pki/node.key");
	assert_int_equal(cfg.identity.token_lifetime_s, 120);
	assert_int_equal(cfg.identity.clock_skew_s, 10);
	assert_false(cfg.identity.resumption);
	assert_true(cfg.identity.oidc);
	assert_string_equal(cfg.identity.oidc_issuer, "https://idp.acme.example");
	assert_string_equal(cfg.identity.oidc_audience, "spiffe://acme.example");
	assert_string_equal(cfg.identity.oidc_ca_file, DATA "pki/idp-ca.crt");
	assert_true(cfg.identity.oidc_bind_cert);
	assert_string_equal(cfg.audit_log, "/run/sluice-id/audit.jsonl");

	assert_int_equal(cfg.nr_peers, 2);
	assert_string_equal(cfg.peers[0].node, "node-b");
	assert_int_equal(cfg.peers[0].nr_cidrs, 2);
	assert_int_equal(cfg.peers[1].nr_cidrs, 1);
	s6 = (struct sockaddr_in6 *)&cfg.peers[1].tunnel;
	assert_sin6(s6, "fd99::3", 15008);
	/* The longest prefix wins: 10.99.0.2 is node-b's, the rest of the
	 * /24 node-c's. */
	inet_pton(AF_INET, "10.99.0.2", addr);
	peer = config_peer_for(&cfg, AF_INET, addr);
	assert_non_null(peer);
	assert_string_equal(peer->node, "node-b");
	inet_pton(AF_INET, "10.99.0.9", addr);
	peer = config_peer_for(&cfg, AF_INET, addr);
	assert_non_null(peer);
	assert_string_equal(peer->node, "node-c");
	inet_pton(AF_INET, "10.98.0.2", addr);
	assert_null(config_peer_for(&cfg, AF_INET, addr));
	inet_pton(AF_INET6, "fd99::77", addr);
	peer = config_peer_for(&cfg, AF_INET6, addr);
	assert_non_null(peer);
	assert_string_equal(peer->node, "node-b");

	assert_int_equal(cfg.peers[0].nr_workloads, 3);
	assert_string_equal(cfg.peers[0].workloads[1], "spiffe://acme.example/notebook/*");
	assert_ptr_equal(config_peer_by_node(&cfg, "node-c"), &cfg.peers[1]);
	assert_null(config_peer_by_node(&cfg, "node-a"));

	assert_true(cfg.workloads[0].mesh_only);
	assert_string_equal(cfg.workloads[0].oidc_client_id, "spiffe://acme.example/job/1234");
	assert_string_equal(cfg.workloads[0].oidc_secret_file, DATA "secrets/job-1234");
	assert_null(cfg.workloads[0].oidc_key_file);
	assert_false(cfg.workloads[1].mesh_only);
	assert_string_equal(cfg.workloads[1].oidc_client_id, "nb-7");
	assert_string_equal(cfg.workloads[1].oidc_key_file, "/etc/sluice/keys/nb-7.pem");
	assert_int_equal(cfg.handshakes.max, 512);
	assert_int_equal(cfg.handshakes.per_address, 64);
	assert_int_equal(cfg.handshakes.timeout_ms, 2500);
	config_handshake_defaults(&cfg.handshakes, 1024);
	assert_int_equal(cfg.handshakes.max, 512);
	assert_int_equal(cfg.handshakes.per_address, 64);
	assert_int_equal(cfg.handshakes.timeout_ms, 2500);
	assert_ptr_equal(config_workload_by_id(&cfg, "spiffe://acme.example/notebook/7"),
			 &cfg.workloads[1]);
	assert_null(config_workload_by_id(&cfg, "spiffe://acme.example/notebook/8"));
	config_free(&cfg);
	assert_empty(&cfg);
}

/* Which workloads node-b of good-identity.yaml may vouch for; node-c lists
 * none, so it vouches for nobody. */
static void test_edge_full(void **state)
{
	struct errmsg err = {};
	struct config cfg;
	struct edge_cfg *e = &cfg.edge;

	assert_int_equal(config_load(DATA "edge-full.yaml", &cfg, &err), 0);
	assert_true(e->enabled);
	assert_string_equal(e->socket, "/run/sluice/edge.sock");
	assert_int_equal(e->socket_gid, 33);
	assert_true(e->has_listen);
	assert_false(e->listen_routable);
	assert_sin6((struct sockaddr_in6 *)&e->listen, "::1", 15010);
	assert_string_equal(e->audience, "https://api.acme.example");
	assert_int_equal(e->cache_max, 50);
	assert_int_equal(e->cache_ttl_s, 120);
	assert_int_equal(e->assertion_lifetime_s, 30);
	assert_string_equal(e->introspection_client_id, "sluice-edge");
	assert_string_equal(e->introspection_secret_file, DATA "secrets/edge");
	assert_string_equal(e->render_dir, DATA "edge");
	assert_string_equal(e->nginx, "/usr/local/sbin/nginx");
	assert_string_equal(e->nginx_conf, "/etc/nginx/edge.conf");
	assert_string_equal(e->nginx_pid, "/run/nginx.pid");
	config_free(&cfg);
}

/* The defaults the config's top comment promises. */
static void test_edge_defaults(void **state)
{
	struct errmsg err = {};
	struct config cfg;
	struct edge_cfg *e = &cfg.edge;

	assert_int_equal(config_load(DATA "edge-defaults.yaml", &cfg, &err), 0);
	assert_true(e->enabled);
	assert_string_equal(e->socket, "/run/sluice/authz.sock");
	assert_int_equal(e->socket_gid, 0);
	assert_false(e->has_listen);
	assert_string_equal(e->audience, "spiffe://acme.example");
	assert_int_equal(e->cache_max, 10000);
	assert_int_equal(e->cache_ttl_s, 60);
	assert_int_equal(e->assertion_lifetime_s, 60);
	assert_null(e->introspection_client_id);
	assert_null(e->introspection_secret_file);
	assert_string_equal(e->render_dir, "/etc/sluice/edge");
	assert_string_equal(e->nginx, "/usr/sbin/nginx");
	assert_string_equal(e->nginx_conf, "/etc/nginx/sluice-edge.conf");
	assert_null(e->nginx_pid);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "good-identity.yaml", &cfg, &err), 0);
	assert_false(cfg.edge.enabled);
	assert_null(cfg.edge.socket);
	config_free(&cfg);
}

static void test_edge_routable(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "edge-routable.yaml", &cfg, &err), 0);
	assert_true(cfg.edge.has_listen);
	assert_true(cfg.edge.listen_routable);
	assert_sin((struct sockaddr_in *)&cfg.edge.listen, "0.0.0.0", 15010);
	config_free(&cfg);
}

/* Every agent serves /metrics (and, with identity, its CA and keys) on
 * loopback unless told otherwise. */
static void test_http_listener(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "good-identity.yaml", &cfg, &err), 0);
	assert_true(cfg.has_http);
	assert_false(cfg.http_routable);
	assert_sin((struct sockaddr_in *)&cfg.http, "127.0.0.1", 15020);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "minimal.yaml", &cfg, &err), 0);
	assert_true(cfg.has_http);
	assert_sin((struct sockaddr_in *)&cfg.http, "127.0.0.1", 15020);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "http-no-identity.yaml", &cfg, &err), 0);
	assert_false(cfg.identity.enabled);
	assert_true(cfg.has_http);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "http-off.yaml", &cfg, &err), 0);
	assert_true(cfg.identity.enabled);
	assert_false(cfg.has_http);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "http-off-no-identity.yaml", &cfg, &err), 0);
	assert_false(cfg.has_http);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "http-v6.yaml", &cfg, &err), 0);
	assert_true(cfg.has_http);
	assert_sin6((struct sockaddr_in6 *)&cfg.http, "::1", 15120);
	config_free(&cfg);

	assert_int_equal(config_load(DATA "http-routable.yaml", &cfg, &err), 0);
	assert_true(cfg.has_http);
	assert_true(cfg.http_routable);
	assert_sin((struct sockaddr_in *)&cfg.http, "0.0.0.0", 15120);
	/* listen.http leaves the other listeners at their defaults. */
	assert_sin(&cfg.outbound4, "127.0.0.1", 15001);
	assert_sin6(&cfg.outbound6, "::1", 15001);
	config_free(&cfg);
}

static void test_peer_vouches(void **state)
{
	static const struct {
		const char *id;
		bool b, c;
	} cases[] = {
		{ "spiffe://acme.example/job/1234", true, false },
		/* Exact IDs match only themselves. */
		{ "spiffe://acme.example/job/12345", false, false },
		{ "spiffe://acme.example/job/123", false, false },
		{ "spiffe://acme.example/notebook/7", true, false },
		{ "spiffe://acme.example/notebook/alice.b", true, false },
		/* The '*' stands for at least one character, never a '/'. */
		{ "spiffe://acme.example/notebook/", false, false },
		{ "spiffe://acme.example/notebook/a/b", false, false },
		{ "spiffe://acme.example/notebooks/7", false, false },
		{ "spiffe://acme.example/service/api-v2", true, false },
		{ "spiffe://acme.example/service/api", false, false },
		{ "spiffe://acme.example/service/web", false, false },
		{ "spiffe://other.example/job/1234", false, false },
	};
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "good-identity.yaml", &cfg, &err), 0);
	assert_int_equal(cfg.peers[1].nr_workloads, 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (config_peer_vouches(&cfg.peers[0], cases[i].id) != cases[i].b ||
		    config_peer_vouches(&cfg.peers[1], cases[i].id) != cases[i].c)
			fail_msg("%s: node-b %d, node-c %d; want %d, %d", cases[i].id,
				 config_peer_vouches(&cfg.peers[0], cases[i].id),
				 config_peer_vouches(&cfg.peers[1], cases[i].id), cases[i].b,
				 cases[i].c);
	}
	config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "minimal.yaml", &cfg, &err), 0);
	assert_string_equal(cfg.node, "node-b");
	assert_string_equal(cfg.cgroup_root, "sluice/node-b");
	assert_null(cfg.agent_cgroup);
	assert_sin(&cfg.outbound4, "127.0.0.1", 15001);
	assert_sin6(&cfg.outbound6, "::1", 15001);
	assert_string_equal(cfg.pin_path, "/sys/fs/bpf/sluice");
	assert_string_equal(cfg.run_dir, "/run/sluice");
	/* Absolute policy paths are kept as written. */
	assert_string_equal(cfg.policy_path, "/etc/sluice/policy.yaml");
	assert_false(cfg.fail_open);
	assert_int_equal(cfg.heartbeat_timeout_ms, 3000);
	/* No idle reset unless asked for: keepalive finds dead peers. */
	assert_int_equal(cfg.idle_timeout_ms, 0);
	assert_int_equal(cfg.keepalive.idle_s, 60);
	assert_int_equal(cfg.keepalive.interval_s, 10);
	assert_int_equal(cfg.keepalive.count, 6);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.nr_workloads, 0);
	assert_null(cfg.workloads);
	assert_sin((struct sockaddr_in *)&cfg.tunnel, "0.0.0.0", 15008);
	assert_false(cfg.identity.enabled);
	assert_string_equal(cfg.audit_log, "/run/sluice/audit.jsonl");
	assert_int_equal(cfg.nr_peers, 0);
	config_free(&cfg);
}

static void test_idle_and_keepalive_off(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "idle-off.yaml", &cfg, &err), 0);
	assert_int_equal(cfg.idle_timeout_ms, 0);
	assert_int_equal(cfg.keepalive.idle_s, 0);
	config_free(&cfg);
	assert_int_equal(config_load(DATA "idle-zero.yaml", &cfg, &err), 0);
	assert_int_equal(cfg.idle_timeout_ms, 0);
	assert_int_equal(cfg.keepalive.idle_s, 60);
	config_free(&cfg);
}

/* Unset caps follow the fd limit: an eighth of it, 16 to 1024, and a
 * quarter of that per address; an unset timeout is 10 s. */
static void test_handshake_defaults(void **state)
{
	static const struct {
		unsigned long nofile;
		unsigned int max, per_address;
	} cases[] = {
		{ 20, 16, 4 }, { 1024, 128, 32 }, { 20000, 1024, 256 }, { 1 << 20, 1024, 256 },
	};
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "minimal.yaml", &cfg, &err), 0);
	assert_int_equal(cfg.handshakes.max, 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cfg.handshakes = (struct handshake_caps){};
		config_handshake_defaults(&cfg.handshakes, cases[i].nofile);
		assert_int_equal(cfg.handshakes.max, cases[i].max);
		assert_int_equal(cfg.handshakes.per_address, cases[i].per_address);
		assert_int_equal(cfg.handshakes.timeout_ms, 10000);
	}
	config_free(&cfg);
}

static void test_outbound6_follows_outbound_port(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "listen-v4-only.yaml", &cfg, &err), 0);
	assert_sin(&cfg.outbound4, "127.0.0.1", 16001);
	assert_sin6(&cfg.outbound6, "::1", 16001);
	assert_string_equal(cfg.policy_path, DATA "policy.yaml");
	config_free(&cfg);
}

static void test_policy_path_without_dir(void **state)
{
	struct errmsg err = {};
	struct config cfg;
	int here, ret;

	here = open(".", O_RDONLY | O_DIRECTORY);
	assert_true(here >= 0);
	assert_int_equal(chdir(DATA), 0);
	ret = config_load("listen-v4-only.yaml", &cfg, &err);
	assert_int_equal(fchdir(here), 0);
	close(here);
	assert_int_equal(ret, 0);
	assert_string_equal(cfg.policy_path, "policy.yaml");
	config_free(&cfg);
}

static void test_missing_file(void **state)
{
	struct errmsg err = {};
	struct config cfg;

	assert_int_equal(config_load(DATA "does-not-exist.yaml", &cfg, &err), -ENOENT);
	assert_string_equal(err.msg, DATA "does-not-exist.yaml: No such file or directory");
	assert_empty(&cfg);
	assert_int_equal(config_load("tests/data/config", &cfg, &err), -EISDIR);
	assert_string_equal(err.msg, "tests/data/config: Is a directory");
}

static void test_parse_sockaddr(void **state)
{
	static const char *const bad[] = {
		"", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3.4:65536", "1.2.3.4:80x", "1.2.3.4:-1",
		"::1:80", "[::1]80", "[::1]:", "[::1", "[1.2.3.4]:80", "host:80", "1.2.3:80",
	};
	struct sockaddr_storage ss;

	assert_int_equal(parse_sockaddr("10.0.0.1:80", &ss), 0);
	assert_sin((struct sockaddr_in *)&ss, "10.0.0.1", 80);
	assert_int_equal(parse_sockaddr("[fd00::1]:65535", &ss), 0);
	assert_sin6((struct sockaddr_in6 *)&ss, "fd00::1", 65535);
	/* Port 0 parses; whoever needs a real port says so. */
	assert_int_equal(parse_sockaddr("0.0.0.0:0", &ss), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_sockaddr(bad[i], &ss) != -EINVAL)
			fail_msg("parse_sockaddr(\"%s\") accepted", bad[i]);
	}
}

static void test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		int ret;
		unsigned int ms;
	} cases[] = {
		{ "250ms", 0, 250 },	   { "3s", 0, 3000 },	   { "5m", 0, 300000 },
		{ "1h", 0, 3600000 },	   { "7", 0, 7000 },	   { "0", 0, 0 },
		{ "4294967295ms", 0, UINT_MAX },
		{ "", -EINVAL, 0 },	   { "s", -EINVAL, 0 },	   { "3x", -EINVAL, 0 },
		{ "1.5s", -EINVAL, 0 },	   { "-1s", -EINVAL, 0 }, { "3 s", -EINVAL, 0 },
		{ "3S", -EINVAL, 0 },	   { "4294968s", -ERANGE, 0 },
		{ "99999999999ms", -ERANGE, 0 },
	};
	unsigned int ms;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ms = 12345;
		if (parse_duration_ms(cases[i].s, &ms) != cases[i].ret)
			fail_msg("parse_duration_ms(\"%s\") != %d", cases[i].s, cases[i].ret);
		if (!cases[i].ret && ms != cases[i].ms)
			fail_msg("parse_duration_ms(\"%s\") = %u, want %u", cases[i].s, ms,
				 cases[i].ms);
	}
}

static void test_workload_kind(void **state)
{
	static const char *const names[] = { "job", "notebook", "cluster", "service" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		assert_int_equal(workload_kind_parse(names[i]), WL_KIND_JOB + i);
		assert_string_equal(workload_kind_name(WL_KIND_JOB + i), names[i]);
	}
	assert_int_equal(workload_kind_parse("jobs"), 0);
	assert_int_equal(workload_kind_parse(""), 0);
	assert_string_equal(workload_kind_name(0), "unknown");
}

static void test_spiffe_id(void **state)
{
	static const struct {
		const char *id;
		const char *why;
	} bad[] = {
		{ "spiffe://acme.example/job", "expected spiffe://<trust-domain>/<kind>/<name>" },
		{ "spiffe://acme.example/job/", "expected spiffe://<trust-domain>/<kind>/<name>" },
		{ "https://acme.example/job/1", "expected spiffe://<trust-domain>/<kind>/<name>" },
		{ "spiffe://Acme.example/job/1", "bad trust domain" },
		{ "spiffe://-acme.example/job/1", "bad trust domain" },
		{ "spiffe:///job/1", "bad trust domain" },
		{ "spiffe://acme.example/pod/1", "kind must be job, notebook, cluster or service" },
		{ "spiffe://acme.example/job/..", "name cannot be \".\" or \"..\"" },
		{ "spiffe://acme.example/job/a b",
		  "name may only use A-Z, a-z, 0-9, '.', '-' and '_'" },
	};
	char longid[CONFIG_NAME_MAX + 1];
	struct spiffe_id sid;
	const char *why;

	assert_int_equal(spiffe_id_parse("spiffe://acme.example/cluster/Etl_2.b-c", &sid, &why),
			 0);
	assert_int_equal(sid.kind, WL_KIND_CLUSTER);
	assert_int_equal(sid.trust_domain_len, strlen("acme.example"));
	assert_memory_equal(sid.trust_domain, "acme.example", sid.trust_domain_len);
	assert_true(spiffe_id_in_domain(&sid, "acme.example"));
	assert_false(spiffe_id_in_domain(&sid, "acme.exampl"));
	assert_false(spiffe_id_in_domain(&sid, "acme.example.org"));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		if (spiffe_id_parse(bad[i].id, &sid, &why) != -EINVAL)
			fail_msg("spiffe_id_parse(\"%s\") accepted", bad[i].id);
		assert_string_equal(why, bad[i].why);
	}
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memcpy(longid, "spiffe://acme.example/job/", strlen("spiffe://acme.example/job/"));
	assert_int_equal(spiffe_id_parse(longid, &sid, &why), -EINVAL);
	assert_string_equal(why, "longer than 127 characters");
	longid[CONFIG_NAME_MAX - 1] = '\0';
	assert_int_equal(spiffe_id_parse(longid, &sid, &why), 0);
}

static void test_name_valid(void **state)
{
	char name[65];

	assert_true(name_valid("node-a.b", ".-"));
	assert_true(name_valid("etl_2", "-_"));
	assert_false(name_valid("", "-"));
	assert_false(name_valid("Upper", "-"));
	assert_false(name_valid("a_b", "-"));
	assert_false(name_valid("a b", "-"));
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_false(name_valid(name, ""));
	name[63] = '\0';
	assert_true(name_valid(name, ""));
	assert_true(node_name_valid("node-a.b"));
	assert_true(node_name_valid("..a"));
	assert_false(node_name_valid("."));
	assert_false(node_name_valid(".."));
	assert_false(node_name_valid("node_a"));
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_good_full),
		cmocka_unit_test(test_good_identity),
		cmocka_unit_test(test_edge_full),
		cmocka_unit_test(test_edge_defaults),
		cmocka_unit_test(test_edge_routable),
		cmocka_unit_test(test_http_listener),
		cmocka_unit_test(test_peer_vouches),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_idle_and_keepalive_off),
		cmocka_unit_test(test_handshake_defaults),
		cmocka_unit_test(test_outbound6_follows_outbound_port),
		cmocka_unit_test(test_policy_path_without_dir),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_parse_sockaddr),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_otlp),
		cmocka_unit_test(test_http_section),
		cmocka_unit_test(test_workload_kind),
		cmocka_unit_test(test_spiffe_id),
		cmocka_unit_test(test_name_valid),
	};
	return run_with_bad_files("config", fixed, ARRAY_SIZE(fixed), bad_cases, ARRAY_SIZE(bad_cases),
				  test_bad_config);
}
