// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The proxy's TLS tunnels on loopback, no BPF, no privileges: an outbound
 * proxy (node-a) and an inbound one (node-b) in one process, with real
 * mesh credentials made in a temporary directory. The ops here stand in
 * for agent/mesh/tunnel.c: route sends every flow to the inbound proxy's tunnel
 * listener with a proper OPEN (or the bytes a test puts in its place),
 * authorize allows or denies as the test says. Both proxies run in one
 * thread driven only by their fds turning readable, so a deadline that
 * needed the caller to poll would hang here.
 *
 * The test_audited_* ones run node-b with agent/mesh/tunnel.c itself (its own
 * config, policy and audit log) behind the same proxy, and read its audit
 * log: one decision, one line.
 *
 * test_handshake_timeout waits out the proxy's fixed 10 s tunnel deadline
 * (HANDSHAKE_TIMEOUT_MS, not configurable), once for three silent peers,
 * and test_audited_upstream_timeout once more.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "audit.h"
#include "config.h"
#include "credfile.h"
#include "frame.h"
#include "http_gate.h"
#include "jwt.h"
#include "pki.h"
#include "pki_ca.h"
#include "policy.h"
#include "proxy.h"
#include "tunnel.h"
#include "unit/json_lines.h"
#include "unit/proxy_harness.h"
#include "unit/sock_util.h"
#include "workloads.h"

#define TD "acme.example"
#define SRC "spiffe://" TD "/job/1234"
#define NOTEBOOK "spiffe://" TD "/notebook/7"
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJqb2IifQ.c2ln"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define DAY 86400
#define IO_TIMEOUT_S 5
/* What the proxy allows a tunnel to get set up, and some slack for SAN. */
#define DEADLINE_MS 10000
#define DEADLINE_SLACK_MS 2000
#define BULK_LEN (1 << 20)

enum { OUT, IN };

/* The flow_ctx route and authorize hand the proxy. */
static char out_flow, in_flow;

/* Credentials made once for all tests. */
static struct {
	char dir[64];
	struct pki_creds *a, *b;	/* node-a (outbound), node-b (inbound) */
	struct pki_creds *stranger;	/* node-a, from another CA of the same name */
	SSL_CTX *client;		/* node-a's */
	SSL_CTX *server;		/* node-b's */
	char *job_token, *notebook_token; /* node-a's, as its agent mints them */
} fx;

/* node-b's policy under agent/mesh/tunnel.c: jobs may reach anything on
 * 127.0.0.1, notebooks nothing. */
static const char audited_policy[] = "version: 1\n"
				     "default: deny\n"
				     "services:\n"
				     "  - name: db\n"
				     "    addresses: [127.0.0.1/32]\n"
				     "rules:\n"
				     "  - name: jobs-read\n"
				     "    from: {kind: job}\n"
				     "    to: [db]\n"
				     "    action: allow\n";
#define AUDITED_GENERATION 7

/* What the callbacks saw; copied out with snap() before asserting. */
struct record {
	int routes;
	int readies;
	int accepts;
	int authorizes;
	int refusals;
	int setup_failures;
	int closed[2];
	int status[2];
	uint64_t up[2], down[2];
	void *closed_ctx[2];
	int verdicts[2];
	struct frame_verdict verdict[2];
	void *verdict_ctx[2];
	char ready_peer[PKI_ID_MAX];	/* the inbound's SPIFFE ID, as the outbound saw it */
	char authz_peer[PKI_ID_MAX];	/* and the other way round */
	char src[FRAME_ID_MAX];
	char traceparent[FRAME_TRACEPARENT_LEN + 1];
	char token[128];
	size_t token_len;
	struct sockaddr_storage dst;
	char reason[FRAME_REASON_MAX];	/* the last tunnel_refused or setup_failed */
	char detail[256];
	bool refused_ssl;
	int hs[2][PROXY_HS_NR];		/* handshake_done's, by side and result */
	int hs_resumed[2];
	uint64_t hs_ns[2];		/* the last one's duration */
	void *hs_ctx[2];
	int exchanges, last_status;	/* the gate's, gated flows */
	int gate_refusals;
};

struct side {
	struct harness *h;
	int idx;
};

struct harness {
	struct proxy_loop loop;		/* p[OUT] node-a's proxy, p[IN] node-b's */
	struct side side[2];
	int upstream_lfd;
	struct sockaddr_storage upstream; /* the destination behind node-b */
	struct sockaddr_storage tunnel;	/* node-b's tunnel listener */
	struct sockaddr_storage peer;	/* where route sends tunnels */
	/* Set by a test before its flow. */
	const uint8_t *open;		/* sent instead of a proper OPEN */
	size_t open_len;
	int ready_ret;
	bool accept_null;
	bool no_tickets;		/* node-b sends no session ticket */
	bool deny;
	bool gated;			/* authorize sets an HTTP gate */
	struct record rec;
	/* node-b as agent/mesh/tunnel.c, for the test_audited_* ones. */
	struct tunnel *tun;
	struct audit *audit_log;	/* node-b's, which the tunnel writes */
	struct config cfg;
	struct policy pol;
	char dir[PATH_MAX];
	char audit[PATH_MAX];		/* its audit log */
};

/* agent/mesh/tunnel.c's proxy callbacks. */
static struct proxy_ops tun_ops;
static const struct workload_set no_workloads;

/* A workload's connection, as BPF would have steered it to node-a's proxy. */
static int client_connect(struct harness *h)
{
	struct sockaddr_storage addr;

	assert_int_equal(proxy_listen_addr(h->loop.p[OUT], AF_INET, &addr), 0);
	return connect_to(&addr, IO_TIMEOUT_S);
}

/* A client whose first bytes are sent before node-a accepts it: the
 * proxies wait for their lock meanwhile. */
static int client_connect_early(struct harness *h, const char *bytes, size_t len)
{
	struct sockaddr_storage addr;
	ssize_t n = -1;
	int fd, ret;

	assert_int_equal(proxy_listen_addr(h->loop.p[OUT], AF_INET, &addr), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeouts(fd, IO_TIMEOUT_S);
	pthread_mutex_lock(&h->loop.lock);
	ret = connect(fd, (struct sockaddr *)&addr, ss_len(&addr));
	if (!ret)
		n = send(fd, bytes, len, MSG_NOSIGNAL);
	pthread_mutex_unlock(&h->loop.lock);
	assert_int_equal(ret, 0);
	assert_int_equal(n, len);
	return fd;
}

static int accept_upstream(struct harness *h)
{
	return accept_within(h->upstream_lfd, IO_TIMEOUT_S);
}

/* Nothing reached the destination. */
static void assert_no_upstream(struct harness *h)
{
	struct pollfd pfd = { .fd = h->upstream_lfd, .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, 0), 0);
}

/* Up to seconds for a counter in h->rec to reach n; returns it. */
static int wait_count_within(struct harness *h, const int *count, int n, int seconds)
{
	return proxy_loop_wait(&h->loop, count, n, seconds);
}

static int wait_count(struct harness *h, const int *count, int n)
{
	return wait_count_within(h, count, n, IO_TIMEOUT_S);
}

/* Copies the record out, so that a failed assert never holds the lock. */
static void snap(struct harness *h, struct record *r)
{
	pthread_mutex_lock(&h->loop.lock);
	*r = h->rec;
	pthread_mutex_unlock(&h->loop.lock);
}

static void stats(struct harness *h, int idx, struct proxy_stats *st)
{
	proxy_loop_stats(&h->loop, idx, st);
}

/* Knobs the proxy thread reads change under its lock. */
static void set_addr(struct harness *h, struct sockaddr_storage *knob,
		     const struct sockaddr_storage *addr)
{
	pthread_mutex_lock(&h->loop.lock);
	*knob = *addr;
	pthread_mutex_unlock(&h->loop.lock);
}

static void set_flag(struct harness *h, bool *knob)
{
	pthread_mutex_lock(&h->loop.lock);
	*knob = true;
	pthread_mutex_unlock(&h->loop.lock);
}

static int cb_lookup(void *ctx, const struct sockaddr_storage *peer, struct sluice_orig_dst *out)
{
	struct side *s = ctx;

	test_dst(&s->h->upstream, out);
	return 0;
}

static void cb_flow_closed(void *ctx, void *flow_ctx, const struct sluice_orig_dst *dst,
			   const struct flow_end *e)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	r->closed[s->idx]++;
	r->status[s->idx] = e->status;
	r->up[s->idx] = e->bytes_up;
	r->down[s->idx] = e->bytes_down;
	r->closed_ctx[s->idx] = flow_ctx;
	if (s->h->tun && s->idx == IN && flow_ctx)
		tunnel_flow_closed(s->h->tun, flow_ctx, e);
}

static int cb_route(void *ctx, const struct sluice_orig_dst *dst, struct proxy_route *out)
{
	struct side *s = ctx;
	struct harness *h = s->h;
	struct frame_open o = { .token = h->tun ? fx.job_token : TOKEN, .src = SRC,
				.traceparent = TRACEPARENT };

	/* No asserts in the proxy's thread: a failure here shows as a
	 * refused flow in the test. */
	h->rec.routes++;
	if (h->open) {
		out->open = malloc(h->open_len);
		if (!out->open)
			return -ENOMEM;
		memcpy(out->open, h->open, h->open_len);
		out->open_len = h->open_len;
	} else {
		orig_dst_sockaddr(dst, &o.dst);
		if (frame_open_encode(&o, &out->open, &out->open_len))
			return -ENOMEM;
	}
	out->ssl = SSL_new(fx.client);
	if (!out->ssl) {
		free(out->open);
		return -ENOMEM;
	}
	out->peer = h->peer;
	out->flow_ctx = &out_flow;
	return 0;
}

/* The TLS peer's SPIFFE ID as c sees it, or "(rejected)". */
static void peer_id(struct pki_creds *c, SSL *ssl, char out[PKI_ID_MAX])
{
	struct pki_peer *p;

	if (pki_verify_peer(c, SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl), &p,
			    NULL))
		strcpy(out, "(rejected)");
	else
		strcpy(out, p->spiffe_id);
}

static int cb_tunnel_ready(void *ctx, void *flow_ctx, SSL *ssl)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	r->readies++;
	peer_id(fx.a, ssl, r->ready_peer);
	return s->h->ready_ret;
}

static void cb_verdict(void *ctx, void *flow_ctx, const struct frame_verdict *v)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	r->verdicts[s->idx]++;
	r->verdict[s->idx] = *v;
	r->verdict_ctx[s->idx] = flow_ctx;
}

static SSL *cb_tunnel_accept(void *ctx)
{
	struct side *s = ctx;

	SSL *ssl;

	s->h->rec.accepts++;
	if (s->h->accept_null)
		return NULL;
	ssl = SSL_new(fx.server);
	if (ssl && s->h->no_tickets)
		SSL_set_num_tickets(ssl, 0);
	return ssl;
}

/* The gate of a gated flow: DELETE is answered here, the rest passes. */
static void gate_decide(void *ctx, const struct http_gate_req *req, struct http_exchange *x)
{
	if (strcmp(req->method, "DELETE"))
		return;
	x->status = 403;
	x->reason = "policy-deny";
	snprintf(x->why, sizeof(x->why), "DELETE is denied");
}

static void gate_done(void *ctx, const struct http_exchange *x)
{
	struct record *r = &((struct side *)ctx)->h->rec;

	r->exchanges++;
	r->last_status = x->status;
}

static void gate_refused(void *ctx, const char *reason, const char *detail)
{
	((struct side *)ctx)->h->rec.gate_refusals++;
}

static const struct http_gate_ops test_gate_ops = {
	.decide = gate_decide,
	.done = gate_done,
	.refused = gate_refused,
};

static void cb_authorize(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			 const uint8_t *payload, size_t len, struct proxy_authz *out)
{
	struct side *s = ctx;
	struct harness *h = s->h;
	struct record *r = &h->rec;
	struct frame_open o;
	const char *detail;

	r->authorizes++;
	peer_id(fx.b, ssl, r->authz_peer);
	out->flow_ctx = &in_flow;
	if (h->gated) {
		struct http_gate_limits lim;

		http_gate_limits_default(&lim);
		out->gate = http_gate_new(&lim, &test_gate_ops, s);
		assert_non_null(out->gate);
	}
	out->verdict.generation = 7;
	if (frame_open_decode(payload, len, &o, &detail)) {
		strcpy(out->verdict.reason, FRAME_MALFORMED);
		return;
	}
	snprintf(r->src, sizeof(r->src), "%s", o.src);
	snprintf(r->traceparent, sizeof(r->traceparent), "%s", o.traceparent);
	snprintf(r->token, sizeof(r->token), "%s", o.token);
	r->token_len = strlen(o.token);
	r->dst = o.dst;
	frame_open_release(&o);
	if (h->deny) {
		strcpy(out->verdict.reason, "policy-deny");
		strcpy(out->verdict.rule, "no-jobs");
		return;
	}
	out->allow = true;
	out->dst = r->dst;
	out->verdict.allow = 1;
	strcpy(out->verdict.reason, "ok");
	strcpy(out->verdict.rule, "jobs-read");
}

static void cb_tunnel_refused(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			      const char *reason, const char *detail)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	r->refusals++;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	r->refused_ssl = ssl != NULL;
}

static void cb_setup_failed(void *ctx, void *flow_ctx, const char *why, const char *detail)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	r->setup_failures++;
	snprintf(r->reason, sizeof(r->reason), "%s", why);
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static void cb_handshake_done(void *ctx, void *flow_ctx, SSL *ssl,
			      const struct sockaddr_storage *peer, bool inbound,
			      enum proxy_hs_result result, uint64_t duration_ns)
{
	struct side *s = ctx;
	struct record *r = &s->h->rec;

	(void)peer;
	/* Told from the side that did it: its flag agrees. */
	if (inbound != (s->idx == IN))
		return;
	r->hs[s->idx][result]++;
	r->hs_resumed[s->idx] += result == PROXY_HS_OK && SSL_session_reused(ssl);
	r->hs_ns[s->idx] = duration_ns;
	r->hs_ctx[s->idx] = flow_ctx;
}

/* Side idx had handshakes ok (n_ok), failed, timed out and dropped. */
static void assert_handshakes(const struct record *r, int idx, int n_ok, int failed, int timeout,
			      int dropped)
{
	assert_int_equal(r->hs[idx][PROXY_HS_OK], n_ok);
	assert_int_equal(r->hs[idx][PROXY_HS_FAILED], failed);
	assert_int_equal(r->hs[idx][PROXY_HS_TIMEOUT], timeout);
	assert_int_equal(r->hs[idx][PROXY_HS_DROPPED], dropped);
	assert_int_equal(r->hs[idx][PROXY_HS_ABORTED], 0);
}

/* agent/mesh/tunnel.c's tunnel_accept, sending no session ticket: one written
 * after the peer left would fail the handshake, not what a test looks at. */
static SSL *cb_tun_accept(void *ctx)
{
	SSL *ssl = tun_ops.tunnel_accept(ctx);

	if (ssl)
		SSL_set_num_tickets(ssl, 0);
	return ssl;
}

static struct proxy *proxy_start(struct harness *h, int idx)
{
	struct proxy_ops ops = {
		.lookup = cb_lookup,
		.flow_closed = cb_flow_closed,
		.verdict = cb_verdict,
		.handshake_done = cb_handshake_done,
		.ctx = &h->side[idx],
		.tunnel_ctx = &h->side[idx],
	};
	struct sockaddr_storage listen;
	struct errmsg err = {};
	struct proxy *p = NULL;
	int ret;

	if (idx == OUT) {
		ops.route = cb_route;
		ops.tunnel_ready = cb_tunnel_ready;
	} else if (h->tun) {
		/* As sluiced wires them, but for tunnel_accept. */
		ops.verdict = tun_ops.verdict;
		ops.tunnel_accept = cb_tun_accept;
		ops.authorize = tun_ops.authorize;
		ops.tunnel_refused = tun_ops.tunnel_refused;
		ops.setup_failed = tun_ops.setup_failed;
		ops.handshake_done = tun_ops.handshake_done;
		ops.tunnel_ctx = h->tun;
	} else {
		ops.tunnel_accept = cb_tunnel_accept;
		ops.authorize = cb_authorize;
		ops.tunnel_refused = cb_tunnel_refused;
		ops.setup_failed = cb_setup_failed;
	}
	loopback(AF_INET, &listen);
	ret = proxy_new(&listen, NULL, 0, &ops, &p, &err);
	if (ret)
		fail_msg("proxy_new: %d %s", ret, err.msg);
	if (idx == IN) {
		ret = proxy_listen_tunnel(p, &listen, &err);
		if (ret)
			fail_msg("proxy_listen_tunnel: %d %s", ret, err.msg);
	}
	return p;
}

static void join(char *buf, const char *dir, const char *name)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* node-b as sluiced runs agent/mesh/tunnel.c: node-b's credentials, the audited
 * policy, and its audit log at audit_log (NULL: in its own directory). */
static void tunnel_start(struct harness *h, const char *audit_log)
{
	char path[PATH_MAX], text[4 * PATH_MAX];
	struct errmsg err = {};

	join(h->dir, fx.dir, "node-b-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	join(h->audit, h->dir, "audit.jsonl");
	join(path, h->dir, "policy.yaml");
	write_text(path, audited_policy);
	snprintf(text, sizeof(text),
		 "node: node-b\n"
		 "trust_domain: " TD "\n"
		 "cgroup_root: /sluice\n"
		 "policy: policy.yaml\n"
		 "run_dir: %s\n"
		 "audit_log: %s\n"
		 "identity:\n"
		 "  ca: %s/ca/node-b/" PKI_CA_CERT "\n"
		 "  cert: %s/ca/node-b/" PKI_NODE_CERT "\n"
		 "  key: %s/ca/node-b/" PKI_NODE_KEY "\n"
		 "peers:\n"
		 "  - node: node-a\n"
		 "    tunnel: 192.0.2.1:15008\n"
		 "    cidrs: [192.0.2.1/32]\n"
		 "    workloads: [\"spiffe://" TD "/job/*\", \"spiffe://" TD "/notebook/*\"]\n",
		 h->dir, audit_log ?: h->audit, fx.dir, fx.dir, fx.dir);
	join(path, h->dir, "sluice.yaml");
	write_text(path, text);
	if (config_load(path, &h->cfg, &err) || policy_load(h->cfg.policy_path, &h->pol, &err) ||
	    audit_open(h->cfg.audit_log, &h->audit_log, &err) ||
	    tunnel_new(&h->cfg, h->audit_log, NULL, &h->tun, &err))
		fail_msg("node-b's tunnel: %s", err.msg);
	tunnel_set_policy(h->tun, &h->cfg, &h->pol, &no_workloads, AUDITED_GENERATION);
	tunnel_proxy_ops(&tun_ops);
}

static int harness_start(void **state, int upstream_family, bool audited, const char *audit_log)
{
	struct harness *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	if (audited)
		tunnel_start(h, audit_log);
	proxy_loop_init(&h->loop);
	for (int i = 0; i < 2; i++) {
		h->side[i] = (struct side){ .h = h, .idx = i };
		h->loop.p[i] = proxy_start(h, i);
	}
	h->loop.nr = 2;
	assert_int_equal(proxy_listen_addr(h->loop.p[IN], 0, &h->tunnel), 0);
	h->peer = h->tunnel;
	h->upstream_lfd = listen_on(upstream_family, 16, &h->upstream);
	proxy_loop_run(&h->loop);
	*state = h;
	return 0;
}

static int setup(void **state)
{
	return harness_start(state, AF_INET, false, NULL);
}

static int setup_audited(void **state)
{
	return harness_start(state, AF_INET, true, NULL);
}

/* Every audit line node-b writes is lost. */
static int setup_audit_full(void **state)
{
	return harness_start(state, AF_INET, true, "/dev/full");
}

static int setup6(void **state)
{
	if (!ipv6_loopback_usable()) {
		*state = NULL;
		return 0;
	}
	return harness_start(state, AF_INET6, false, NULL);
}

static int teardown(void **state)
{
	struct harness *h = *state;

	if (!h)
		return 0;
	proxy_loop_stop(&h->loop);
	if (h->tun) {
		tunnel_free(h->tun);
		audit_close(h->audit_log);
		policy_free(&h->pol);
		config_free(&h->cfg);
	}
	close(h->upstream_lfd);
	free(h);
	return 0;
}

/* 1 MiB each way at once, both ends closing with a FIN. */
static void bulk_both_ways(struct harness *h)
{
	struct stream up_tx = { .len = BULK_LEN, .shutdown = true }, up_rx = {};
	struct stream down_tx = { .len = BULK_LEN, .shutdown = true }, down_rx = {};
	pthread_t t[3];
	int cfd, ufd;

	/* The client's first bytes leave before the tunnel is up. */
	cfd = client_connect(h);
	up_tx.fd = down_rx.fd = cfd;
	assert_int_equal(pthread_create(&t[0], NULL, pattern_send, &up_tx), 0);
	ufd = accept_upstream(h);
	up_rx.fd = down_tx.fd = ufd;
	assert_int_equal(pthread_create(&t[1], NULL, pattern_recv, &up_rx), 0);
	assert_int_equal(pthread_create(&t[2], NULL, pattern_send, &down_tx), 0);
	pattern_recv(&down_rx);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(up_tx.err, 0);
	assert_int_equal(down_tx.err, 0);
	assert_int_equal(up_rx.err, 0);
	assert_int_equal(down_rx.err, 0);
	assert_true(up_rx.eof);
	assert_true(down_rx.eof);
	assert_int_equal(up_rx.done, BULK_LEN);
	assert_int_equal(down_rx.done, BULK_LEN);
	close(cfd);
	close(ufd);
}

static void assert_clean_close(struct harness *h, int idx, uint64_t up, uint64_t down)
{
	struct record r;

	snap(h, &r);
	assert_int_equal(r.closed[idx], 1);
	assert_int_equal(r.status[idx], 0);
	assert_int_equal(r.up[idx], up);
	assert_int_equal(r.down[idx], down);
	assert_ptr_equal(r.closed_ctx[idx], idx == OUT ? &out_flow : &in_flow);
}

static void test_bulk_both_ways(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	char want[SOCKADDR_STR_LEN], got[SOCKADDR_STR_LEN];
	struct record r;

	bulk_both_ways(h);
	assert_int_equal(wait_count(h, &h->rec.closed[OUT], 1), 1);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	assert_clean_close(h, OUT, BULK_LEN, BULK_LEN);
	assert_clean_close(h, IN, BULK_LEN, BULK_LEN);

	/* Each agent proved itself to the other; the OPEN arrived whole. */
	snap(h, &r);
	assert_int_equal(r.routes, 1);
	assert_int_equal(r.readies, 1);
	assert_int_equal(r.accepts, 1);
	assert_int_equal(r.authorizes, 1);
	assert_int_equal(r.refusals, 0);
	assert_int_equal(r.exchanges, 0);
	assert_string_equal(r.ready_peer, "spiffe://" TD "/node/node-b");
	assert_string_equal(r.authz_peer, "spiffe://" TD "/node/node-a");
	assert_string_equal(r.src, SRC);
	assert_string_equal(r.token, TOKEN);
	assert_string_equal(r.traceparent, TRACEPARENT);
	assert_string_equal(format_sockaddr(&r.dst, got, sizeof(got)),
			    format_sockaddr(&h->upstream, want, sizeof(want)));
	/* The allow came back with its rule; node-b's verdict op is never
	 * called, nor setup_failed for a flow that went through. */
	assert_int_equal(r.verdicts[OUT], 1);
	assert_int_equal(r.verdict[OUT].allow, 1);
	assert_string_equal(r.verdict[OUT].reason, "ok");
	assert_string_equal(r.verdict[OUT].rule, "jobs-read");
	assert_int_equal(r.verdict[OUT].generation, 7);
	assert_ptr_equal(r.verdict_ctx[OUT], &out_flow);
	assert_int_equal(r.verdicts[IN], 0);
	assert_int_equal(r.setup_failures, 0);
	/* One handshake each way, told once, outbound with route's ctx. */
	assert_handshakes(&r, OUT, 1, 0, 0, 0);
	assert_handshakes(&r, IN, 1, 0, 0, 0);
	assert_ptr_equal(r.hs_ctx[OUT], &out_flow);
	assert_null(r.hs_ctx[IN]);
	for (int i = 0; i < 2; i++)
		assert_true(r.hs_ns[i] > 0 && r.hs_ns[i] < DEADLINE_MS * 1000000ull);

	stats(h, OUT, &st);
	assert_int_equal(st.tunnels_out, 1);
	assert_int_equal(st.tunnels_refused, 0);
	assert_int_equal(st.bytes_up, BULK_LEN);
	assert_int_equal(st.bytes_down, BULK_LEN);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.buffered, 0);
	stats(h, IN, &st);
	assert_int_equal(st.tunnels_in, 1);
	assert_int_equal(st.tunnels_refused, 0);
	assert_int_equal(st.bytes_up, BULK_LEN);
	assert_int_equal(st.bytes_down, BULK_LEN);
	assert_int_equal(st.active, 0);
}

/* Keepalive on every leg the two agents hold: the app's, both ends of the
 * tunnel, and node-b's connection to the destination. */
static void test_keepalive_every_leg(void **state)
{
	const struct keepalive_cfg ka = { .idle_s = 60, .interval_s = 10, .count = 6 };
	struct harness *h = *state;
	int mine[2];

	pthread_mutex_lock(&h->loop.lock);
	proxy_set_keepalive(h->loop.p[OUT], &ka);
	proxy_set_keepalive(h->loop.p[IN], &ka);
	pthread_mutex_unlock(&h->loop.lock);
	mine[0] = client_connect(h);
	mine[1] = accept_upstream(h);
	assert_keepalive(mine, 4, 60, 10, 6);
	close(mine[0]);
	close(mine[1]);
}

/* A TCP connection to node-b's tunnel listener from src that never says a
 * word. */
static int idle_connect(struct harness *h, const char *src)
{
	struct sockaddr_in from = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	set_timeouts(fd, IO_TIMEOUT_S);
	assert_int_equal(connect(fd, (struct sockaddr *)&h->tunnel, ss_len(&h->tunnel)), 0);
	return fd;
}

/* Waits up to IO_TIMEOUT_S for node-b to have accepted n tunnels. */
static void wait_tunnels_in(struct harness *h, uint64_t n)
{
	uint64_t end = mono_ms() + IO_TIMEOUT_S * 1000;
	struct proxy_stats st;

	do {
		stats(h, IN, &st);
		if (st.tunnels_in >= n)
			return;
		usleep(1000);
	} while (mono_ms() < end);
	fail_msg("node-b accepted %llu tunnels, not %llu", (unsigned long long)st.tunnels_in,
		 (unsigned long long)n);
}

/* Connections that never start TLS hold at most the caps, 4 per source
 * and 8 in all, the oldest going first; a real tunnel from a third address
 * still gets through, and the sources' oldest were reset. */
static void test_handshake_caps(void **state)
{
	enum { NR_IDLE = 20, MAX = 8, PER_ADDR = 4 };
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;
	int idle[NR_IDLE], cfd, ufd;
	char c;

	pthread_mutex_lock(&h->loop.lock);
	assert_int_equal(proxy_set_handshake_limit(h->loop.p[IN], MAX, PER_ADDR), 0);
	pthread_mutex_unlock(&h->loop.lock);
	for (int i = 0; i < NR_IDLE; i++)
		idle[i] = idle_connect(h, i % 2 ? "127.0.0.2" : "127.0.0.3");
	wait_tunnels_in(h, NR_IDLE);
	stats(h, IN, &st);
	assert_int_equal(st.handshakes_in, MAX);
	assert_int_equal(st.handshakes_refused_in, NR_IDLE - MAX);
	assert_int_equal(read_end(idle[0]), -ECONNRESET);
	snap(h, &r);
	assert_handshakes(&r, IN, 0, 0, 0, NR_IDLE - MAX);

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	write_full(cfd, "x", 1);
	assert_int_equal(read_full(ufd, &c, 1), 1);
	stats(h, IN, &st);
	assert_int_equal(st.handshakes_in, MAX - 1);
	assert_int_equal(st.handshakes_refused_in, NR_IDLE - MAX + 1);
	snap(h, &r);
	assert_handshakes(&r, IN, 1, 0, 0, NR_IDLE - MAX + 1);
	for (int i = 0; i < NR_IDLE; i++)
		close(idle[i]);
	close(cfd);
	close(ufd);
}

/* One FIN crosses the tunnel while the other direction keeps flowing. */
/* Many rings' worth of body. */
#define GATED_BODY (4 * BULK_LEN)

/* Through a gate: a pipelined DELETE never reaches the destination and its
 * 403 comes back in its turn; a body of many rings passes byte-exact, also
 * while the destination reads late and the ring fills. */
static void test_gated_flow(void **state)
{
	static const char get[] = "GET /a HTTP/1.1\r\nHost: api\r\n\r\n";
	static const char del[] = "DELETE /a HTTP/1.1\r\nHost: api\r\n\r\n";
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct harness *h = *state;
	char head[128], buf[512], *body = malloc(GATED_BODY);
	size_t hl;
	ssize_t n;
	struct record r;
	int cfd, ufd;

	assert_non_null(body);
	for (size_t i = 0; i < GATED_BODY; i++)
		body[i] = pattern[i % PATTERN_LEN];
	hl = snprintf(head, sizeof(head), "PUT /b HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n",
		      GATED_BODY);
	set_flag(h, &h->gated);
	cfd = client_connect(h);
	write_full(cfd, get, strlen(get));
	write_full(cfd, del, strlen(del));
	ufd = accept_upstream(h);
	assert_int_equal(read_full(ufd, buf, strlen(get)), (ssize_t)strlen(get));
	assert_memory_equal(buf, get, strlen(get));
	write_full(ufd, ok, strlen(ok));
	assert_int_equal(read_full(cfd, buf, strlen(ok)), (ssize_t)strlen(ok));
	assert_memory_equal(buf, ok, strlen(ok));
	n = read(cfd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\nDELETE is denied\n"));
	write_full(cfd, head, hl);
	write_full(cfd, body, GATED_BODY);
	usleep(300 * 1000);
	/* The destination got the PUT next, not the DELETE. */
	assert_int_equal(read_full(ufd, buf, hl), (ssize_t)hl);
	assert_memory_equal(buf, head, hl);
	for (size_t off = 0; off < GATED_BODY; off += n) {
		n = read(ufd, buf, sizeof(buf));
		assert_true(n > 0);
		if (memcmp(buf, body + off, n))
			fail_msg("the body differs at %zu", off);
	}
	write_full(ufd, ok, strlen(ok));
	assert_int_equal(read_full(cfd, buf, strlen(ok)), (ssize_t)strlen(ok));
	shutdown(cfd, SHUT_WR);
	shutdown(ufd, SHUT_WR);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	snap(h, &r);
	assert_int_equal(r.exchanges, 3);
	assert_int_equal(r.last_status, 200);
	assert_int_equal(r.gate_refusals, 0);
	close(cfd);
	close(ufd);
	free(body);
}

static void test_half_close(void **state)
{
	struct harness *h = *state;
	char buf[16] = {};
	struct record r;
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	write_full(cfd, "request", 7);
	assert_int_equal(shutdown(cfd, SHUT_WR), 0);
	assert_int_equal(read_full(ufd, buf, 7), 7);
	assert_string_equal(buf, "request");
	assert_int_equal(read_end(ufd), 0);

	write_full(ufd, "response!", 9);
	assert_int_equal(read_full(cfd, buf, 9), 9);
	assert_string_equal(buf, "response!");
	snap(h, &r);
	assert_int_equal(r.closed[OUT], 0);
	assert_int_equal(r.closed[IN], 0);

	assert_int_equal(shutdown(ufd, SHUT_WR), 0);
	assert_int_equal(read_end(cfd), 0);
	assert_int_equal(wait_count(h, &h->rec.closed[OUT], 1), 1);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	assert_clean_close(h, OUT, 7, 9);
	assert_clean_close(h, IN, 7, 9);
	close(cfd);
	close(ufd);
}

/* The destination is IPv6: the OPEN carries it, node-b connects to it. */
static void test_ipv6_destination(void **state)
{
	struct harness *h = *state;
	struct record r;

	if (!h)
		skip();
	bulk_both_ways(h);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	assert_clean_close(h, IN, BULK_LEN, BULK_LEN);
	snap(h, &r);
	assert_int_equal(r.dst.ss_family, AF_INET6);
	assert_int_equal(sockaddr_port(&r.dst), sockaddr_port(&h->upstream));
}

/* A refused flow: the client is reset with nothing delivered either way;
 * the outbound side's verdict op hears why. */
static void assert_refused(struct harness *h, const char *reason)
{
	struct record r;
	int cfd;

	cfd = client_connect_early(h, "early bytes", 11);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	close(cfd);
	assert_int_equal(wait_count(h, &h->rec.closed[OUT], 1), 1);
	snap(h, &r);
	assert_int_equal(r.verdicts[OUT], 1);
	assert_int_equal(r.verdict[OUT].allow, 0);
	assert_string_equal(r.verdict[OUT].reason, reason);
	assert_ptr_equal(r.verdict_ctx[OUT], &out_flow);
	assert_int_not_equal(r.status[OUT], 0);
	assert_int_equal(r.up[OUT], 0);
	assert_int_equal(r.down[OUT], 0);
	assert_no_upstream(h);
}

static void test_authorize_deny(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;

	set_flag(h, &h->deny);
	assert_refused(h, "policy-deny");
	snap(h, &r);
	assert_string_equal(r.verdict[OUT].rule, "no-jobs");
	assert_int_equal(r.verdict[OUT].generation, 7);
	assert_int_equal(r.status[OUT], -ECONNREFUSED);
	/* node-b decided, sent the deny and closed cleanly; no refusal
	 * before authorize, no local connection. */
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	assert_clean_close(h, IN, 0, 0);
	snap(h, &r);
	assert_int_equal(r.authorizes, 1);
	assert_int_equal(r.refusals, 0);
	assert_int_equal(r.verdicts[IN], 0);
	stats(h, OUT, &st);
	assert_int_equal(st.tunnels_refused, 1);
	stats(h, IN, &st);
	assert_int_equal(st.tunnels_refused, 1);
	assert_int_equal(st.upstream_failed, 0);
}

/* A flow to a destination that refuses, until both sides closed it; the
 * destination's fd is returned. */
static int upstream_refuses(struct harness *h)
{
	struct sockaddr_storage addr;
	int fd;

	/* Bound, never listening: connections to it are refused. */
	fd = bind_loopback(AF_INET, &addr);
	set_addr(h, &h->upstream, &addr);
	assert_refused(h, "upstream-refused");
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	return fd;
}

/* node-b allows, but its destination refuses: both sides hear it, node-b
 * once, as the allowed flow's failure. */
static void test_upstream_refused(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;
	int fd;

	fd = upstream_refuses(h);
	snap(h, &r);
	assert_int_equal(r.authorizes, 1);
	assert_int_equal(r.setup_failures, 1);
	assert_string_equal(r.reason, "upstream-refused");
	assert_int_equal(r.refusals, 0);
	assert_int_equal(r.verdicts[IN], 0);
	assert_ptr_equal(r.closed_ctx[IN], &in_flow);
	stats(h, IN, &st);
	assert_int_equal(st.upstream_failed, 1);
	assert_int_equal(st.tunnels_refused, 1);
	close(fd);
}

static void test_peer_unreachable(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;
	struct record r;
	int fd;

	/* Bound, never listening: connections to it are refused. */
	fd = bind_loopback(AF_INET, &addr);
	set_addr(h, &h->peer, &addr);
	assert_refused(h, "peer-unreachable");
	snap(h, &r);
	assert_int_equal(r.readies, 0);
	assert_int_equal(r.accepts, 0);
	/* No TCP connection, so no handshake began. */
	assert_handshakes(&r, OUT, 0, 0, 0, 0);
	close(fd);
}

/* tunnel_ready refuses the peer (not the node route meant): no OPEN is
 * sent, so node-b never gets to authorize. */
static void test_tunnel_ready_refuses(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;
	int cfd;

	pthread_mutex_lock(&h->loop.lock);
	h->ready_ret = -EPERM;
	pthread_mutex_unlock(&h->loop.lock);
	cfd = client_connect_early(h, "early bytes", 11);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	close(cfd);
	assert_int_equal(wait_count(h, &h->rec.closed[OUT], 1), 1);
	assert_int_equal(wait_count(h, &h->rec.refusals, 1), 1);
	snap(h, &r);
	assert_int_equal(r.readies, 1);
	assert_int_equal(r.status[OUT], -EPERM);
	assert_int_equal(r.verdicts[OUT], 0);
	/* node-b saw the connection go, before or after its handshake
	 * completed, and never an OPEN. */
	if (strcmp(r.reason, "tls-handshake-failed") && strcmp(r.reason, FRAME_TRUNCATED))
		fail_msg("node-b's reason: %s (%s)", r.reason, r.detail);
	assert_int_equal(r.authorizes, 0);
	assert_no_upstream(h);
	stats(h, OUT, &st);
	assert_int_equal(st.tunnels_refused, 1);
}

static void test_tunnel_accept_refuses(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;

	set_flag(h, &h->accept_null);
	assert_refused(h, "tls-handshake-failed");
	snap(h, &r);
	assert_int_equal(r.accepts, 1);
	assert_int_equal(r.readies, 0);
	assert_int_equal(r.closed[IN], 0);
	stats(h, IN, &st);
	assert_int_equal(st.tunnels_refused, 1);
	assert_int_equal(st.active, 0);
}

struct bad_frame {
	const char *bytes;
	size_t len;
	const char *why;
};

#define BAD(bytes, why) { bytes, sizeof(bytes) - 1, why }

/* The outbound proxy sends these in place of an OPEN; node-b refuses each
 * on its header alone and says why in a deny VERDICT. */
static void test_bad_frames(void **state)
{
	static const struct bad_frame frames[] = {
		BAD("GET / HTTP/1.1\r\nHost: db\r\n\r\n", FRAME_BAD_MAGIC),
		BAD("SLCE\x02\x01\0\0\0\0\0\x02{}", FRAME_BAD_VERSION),
		BAD("SLCE\x01\x02\0\0\0\0\0\x02{}", FRAME_BAD_TYPE),
		BAD("SLCE\x01\x01\0\x01\0\0\0\x02{}", FRAME_MALFORMED),
		BAD("SLCE\x01\x01\0\0\0\0\0\0", FRAME_MALFORMED),
		/* Announces 1 MiB and sends a little: the verdict comes
		 * without the rest. */
		BAD("SLCE\x01\x01\0\0\0\x10\0\0{\"dst\":\"", FRAME_TOO_LARGE),
	};
	struct harness *h = *state;
	struct proxy_stats st;
	struct record r;

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		const struct bad_frame *b = &frames[i];

		pthread_mutex_lock(&h->loop.lock);
		h->open = (const uint8_t *)b->bytes;
		h->open_len = b->len;
		pthread_mutex_unlock(&h->loop.lock);
		assert_refused(h, b->why);
		assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
		assert_int_equal(wait_count(h, &h->rec.refusals, 1), 1);
		snap(h, &r);
		assert_int_equal(r.status[OUT], -ECONNREFUSED);
		assert_string_equal(r.reason, b->why);
		assert_string_equal(r.detail, "bad OPEN frame header");
		assert_true(r.refused_ssl);
		assert_int_equal(r.authorizes, 0);
		assert_int_equal(r.closed[IN], 1);
		assert_int_equal(r.status[IN], 0);
		pthread_mutex_lock(&h->loop.lock);
		memset(&h->rec, 0, sizeof(h->rec));
		pthread_mutex_unlock(&h->loop.lock);
	}
	stats(h, IN, &st);
	assert_int_equal(st.tunnels_in, 6);
	assert_int_equal(st.tunnels_refused, 6);
	assert_int_equal(st.active, 0);
}

/* A blocking TLS client of node-b's tunnel port. Returns SSL_connect's
 * result; *ssl and *fd are the caller's to free. */
static int tls_connect(struct harness *h, SSL_CTX *ctx, SSL **ssl, int *fd)
{
	int ret;

	*fd = connect_to(&h->tunnel, IO_TIMEOUT_S);
	*ssl = SSL_new(ctx);
	assert_non_null(*ssl);
	assert_int_equal(SSL_set_fd(*ssl, *fd), 1);
	ret = SSL_connect(*ssl);
	ERR_clear_error();
	return ret;
}

/* The connection ends before any byte of application data came back. */
static void assert_tls_ends(SSL *ssl)
{
	char c;
	size_t n;

	assert_int_equal(SSL_read_ex(ssl, &c, 1, &n), 0);
	ERR_clear_error();
}

static void assert_handshake_refused(struct harness *h, SSL_CTX *ctx, const char *detail)
{
	struct proxy_stats st;
	struct record r;
	SSL *ssl;
	int fd;

	/* TLS 1.3: the client may finish before the server has looked at
	 * its certificate; it learns from the alert on its first read. */
	if (tls_connect(h, ctx, &ssl, &fd) == 1)
		assert_tls_ends(ssl);
	assert_int_equal(wait_count(h, &h->rec.refusals, 1), 1);
	snap(h, &r);
	assert_string_equal(r.reason, "tls-handshake-failed");
	if (strcmp(r.detail, detail))
		fail_msg("detail \"%s\", want \"%s\"", r.detail, detail);
	assert_int_equal(r.authorizes, 0);
	assert_handshakes(&r, IN, 0, 1, 0, 0);
	stats(h, IN, &st);
	assert_int_equal(st.tunnels_refused, 1);
	assert_int_equal(st.active, 0);
	SSL_free(ssl);
	close(fd);
}

static void test_client_without_certificate(void **state)
{
	struct harness *h = *state;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	/* Trusts the mesh CA, has nothing to show. */
	assert_non_null(ctx);
	SSL_CTX_set1_cert_store(ctx, fx.a->store);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
	assert_handshake_refused(h, ctx, "peer did not return a certificate");
	SSL_CTX_free(ctx);
}

static void test_client_of_another_ca(void **state)
{
	struct harness *h = *state;
	struct errmsg err = {};
	SSL_CTX *ctx = NULL;

	/* node-a of a CA named like ours, trusting ours so that it is the
	 * server that refuses. */
	if (pki_ssl_ctx(fx.stranger, false, &ctx, &err))
		fail_msg("pki_ssl_ctx: %s", err.msg);
	SSL_CTX_set1_cert_store(ctx, fx.a->store);
	assert_handshake_refused(h, ctx, "certificate: unable to get local issuer certificate");
	SSL_CTX_free(ctx);
}

/* Writes each piece as a TLS record of its own while the proxies wait, so
 * that node-b finds them all queued at once; 0 or the failing piece + 1. */
static int send_records(struct harness *h, SSL *ssl, const uint8_t *buf, const size_t *cuts,
			int nr, bool close_notify)
{
	size_t off = 0, n;
	int ret = 0;

	pthread_mutex_lock(&h->loop.lock);
	for (int i = 0; i < nr && !ret; i++) {
		if (SSL_write_ex(ssl, buf + off, cuts[i] - off, &n) != 1 || n != cuts[i] - off)
			ret = i + 1;
		off = cuts[i];
	}
	if (!ret && close_notify && SSL_shutdown(ssl) != 0)
		ret = nr + 1;
	pthread_mutex_unlock(&h->loop.lock);
	return ret;
}

static int ssl_read_full(SSL *ssl, void *buf, size_t len)
{
	size_t got = 0, n;

	while (got < len) {
		if (SSL_read_ex(ssl, (char *)buf + got, len - got, &n) != 1) {
			ERR_clear_error();
			return -1;
		}
		got += n;
	}
	return 0;
}

/* The connection closes inside the OPEN header. Without a session ticket
 * (and the ACK for it) nothing else wakes node-b's flow up. */
static void test_truncated_open(void **state)
{
	static const size_t cuts[] = { 5 };
	struct harness *h = *state;
	struct record r;
	SSL *ssl;
	int fd;

	set_flag(h, &h->no_tickets);
	assert_int_equal(tls_connect(h, fx.client, &ssl, &fd), 1);
	assert_int_equal(send_records(h, ssl, (const uint8_t *)"SLCE\x01", cuts, 1, true), 0);
	assert_int_equal(wait_count(h, &h->rec.refusals, 1), 1);
	snap(h, &r);
	assert_string_equal(r.reason, FRAME_TRUNCATED);
	assert_string_equal(r.detail, "closed after 5 of 12 header bytes");
	assert_int_equal(r.authorizes, 0);
	SSL_free(ssl);
	close(fd);
}

/* An OPEN in three records, cut inside the header and inside the payload,
 * all queued before node-b reads: it answers on the wire, then bytes flow.
 * No session ticket, as above. */
static void test_open_in_pieces(void **state)
{
	struct harness *h = *state;
	struct frame_open o = { .token = TOKEN, .src = SRC };
	struct frame_verdict v;
	uint8_t *open, hdr[FRAME_HDR_LEN], payload[FRAME_MAX_PAYLOAD];
	const char *why = NULL, *detail = NULL;
	char buf[8] = {};
	size_t len, n, cuts[3];
	int fd, ufd, plen;
	SSL *ssl;

	set_flag(h, &h->no_tickets);
	o.dst = h->upstream;
	assert_int_equal(frame_open_encode(&o, &open, &len), 0);
	cuts[0] = 5;
	cuts[1] = FRAME_HDR_LEN + 10;
	cuts[2] = len;
	assert_int_equal(tls_connect(h, fx.client, &ssl, &fd), 1);
	assert_int_equal(send_records(h, ssl, open, cuts, 3, false), 0);
	free(open);

	assert_int_equal(ssl_read_full(ssl, hdr, sizeof(hdr)), 0);
	plen = frame_hdr_parse(hdr, FRAME_VERDICT, &why);
	assert_true(plen > 0);
	assert_int_equal(ssl_read_full(ssl, payload, plen), 0);
	assert_int_equal(frame_verdict_decode(payload, plen, &v, &detail), 0);
	assert_int_equal(v.allow, 1);
	assert_string_equal(v.reason, "ok");
	assert_string_equal(v.rule, "jobs-read");
	assert_int_equal(v.generation, 7);

	ufd = accept_upstream(h);
	assert_int_equal(SSL_write_ex(ssl, "ping", 4, &n), 1);
	assert_int_equal(read_full(ufd, buf, 4), 4);
	assert_string_equal(buf, "ping");
	write_full(ufd, "pong", 4);
	assert_int_equal(ssl_read_full(ssl, buf, 4), 0);
	assert_string_equal(buf, "pong");
	SSL_free(ssl);
	close(fd);
	close(ufd);
}

/* The largest OPEN there is (16384 bytes of payload) is more than one TLS
 * record: node-a sends all of it, node-b reads all of it. No session ticket
 * arrives meanwhile to wake node-a's flow up: its own write has to. */
static void test_open_max_size(void **state)
{
	static char token[FRAME_MAX_PAYLOAD];
	struct harness *h = *state;
	struct frame_open o = { .token = "", .src = SRC, .traceparent = TRACEPARENT };
	struct record r;
	uint8_t *open;
	size_t len, base;
	char buf[4];
	int cfd, ufd;

	o.dst = h->upstream;
	assert_int_equal(frame_open_encode(&o, &open, &len), 0);
	free(open);
	base = len - FRAME_HDR_LEN;
	memset(token, 't', FRAME_MAX_PAYLOAD - base);
	o.token = token;
	assert_int_equal(frame_open_encode(&o, &open, &len), 0);
	assert_int_equal(len, FRAME_HDR_LEN + FRAME_MAX_PAYLOAD);
	pthread_mutex_lock(&h->loop.lock);
	h->open = open;
	h->open_len = len;
	h->no_tickets = true;
	pthread_mutex_unlock(&h->loop.lock);

	cfd = client_connect_early(h, "ping", 4);
	ufd = accept_upstream(h);
	assert_int_equal(read_full(ufd, buf, 4), 4);
	assert_memory_equal(buf, "ping", 4);
	snap(h, &r);
	assert_int_equal(r.authorizes, 1);
	assert_int_equal(r.token_len, FRAME_MAX_PAYLOAD - base);
	assert_string_equal(r.traceparent, TRACEPARENT);
	close(cfd);
	close(ufd);
	free(open);
}

/* Three peers that say nothing, all dropped at the 10 s deadline: one
 * that never starts TLS and one that stops after it (node-b: the deadline
 * runs from the TCP connection), and node-a's tunnel to a TCP listener
 * that never answers the ClientHello. */
static void test_handshake_timeout(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage silent_addr;
	struct proxy_stats st;
	struct record r;
	uint64_t start, waited;
	int tcp, tls_fd, silent, cfd;
	SSL *ssl;

	silent = listen_on(AF_INET, 16, &silent_addr);
	set_addr(h, &h->peer, &silent_addr);
	start = mono_ms();
	cfd = client_connect(h);
	tcp = connect_to(&h->tunnel, IO_TIMEOUT_S);
	assert_int_equal(tls_connect(h, fx.client, &ssl, &tls_fd), 1);
	set_timeouts(tcp, (DEADLINE_MS + DEADLINE_SLACK_MS) / 1000);
	set_timeouts(cfd, (DEADLINE_MS + DEADLINE_SLACK_MS) / 1000);

	assert_int_equal(read_end(tcp), -ECONNRESET);
	waited = mono_ms() - start;
	assert_true(waited >= DEADLINE_MS - 100);
	assert_true(waited < DEADLINE_MS + DEADLINE_SLACK_MS);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	assert_tls_ends(ssl);

	assert_int_equal(wait_count(h, &h->rec.refusals, 2), 2);
	assert_int_equal(wait_count(h, &h->rec.closed[OUT], 1), 1);
	snap(h, &r);
	assert_string_equal(r.reason, "handshake-timeout");
	assert_string_equal(r.detail, "tunnel not set up in time");
	assert_int_equal(r.authorizes, 0);
	assert_int_equal(r.verdicts[OUT], 1);
	assert_int_equal(r.verdict[OUT].allow, 0);
	assert_string_equal(r.verdict[OUT].reason, "no-verdict");
	assert_int_equal(r.status[OUT], -ETIMEDOUT);
	/* Inbound, the TLS client got through, the bare TCP one timed out;
	 * outbound, the silent peer never answered the ClientHello. */
	assert_handshakes(&r, IN, 1, 0, 1, 0);
	assert_handshakes(&r, OUT, 0, 0, 1, 0);
	stats(h, IN, &st);
	assert_int_equal(st.idle_timeouts, 2);
	assert_int_equal(st.tunnels_refused, 2);
	assert_int_equal(st.active, 0);
	stats(h, OUT, &st);
	assert_int_equal(st.idle_timeouts, 1);
	assert_int_equal(st.active, 0);
	SSL_free(ssl);
	close(tls_fd);
	close(tcp);
	close(cfd);
	close(silent);
}

/* node-b's audit log holds one line, from node-a, with this verdict, reason
 * and status (NULL: a deny, without the members of a close); returned. */
static json_t *one_audit_line(struct harness *h, const char *verdict, const char *reason,
			      const char *status)
{
	json_t *lines = read_lines(h->audit), *line;

	if (json_array_size(lines) != 1)
		fail_msg("%zu lines in node-b's audit log, want 1", json_array_size(lines));
	line = json_incref(json_array_get(lines, 0));
	json_decref(lines);
	assert_string_equal(json_string_value(json_object_get(line, "direction")), "inbound");
	assert_string_equal(json_string_value(json_object_get(line, "verdict")), verdict);
	assert_string_equal(json_string_value(json_object_get(line, "reason")), reason);
	assert_string_equal(json_string_value(json_object_get(line, "src_node")), "node-a");
	assert_int_equal(json_integer_value(json_object_get(line, "generation")),
			 AUDITED_GENERATION);
	if (status) {
		assert_string_equal(json_string_value(json_object_get(line, "status")), status);
		assert_int_equal(json_integer_value(json_object_get(line, "bytes_up")), 0);
		assert_int_equal(json_integer_value(json_object_get(line, "bytes_down")), 0);
	} else {
		assert_null(json_object_get(line, "status"));
	}
	return line;
}

static void assert_allowed_failed(struct harness *h, const char *status, const char *detail)
{
	json_t *line = one_audit_line(h, "allow", "ok", status);

	assert_string_equal(json_string_value(json_object_get(line, "rule")), "jobs-read");
	assert_string_equal(json_string_value(json_object_get(line, "src_workload")), SRC);
	assert_string_equal(json_string_value(json_object_get(line, "detail")), detail);
	json_decref(line);
}

/* A listener that answers nobody: its accept queue is full (one
 * connection, *filler, never accepted, in a backlog of 0), so SYNs to it
 * are dropped. */
static int silent_listener(struct sockaddr_storage *addr, int *filler)
{
	int lfd = listen_on(AF_INET, 0, addr);

	*filler = connect_to(addr, IO_TIMEOUT_S);
	return lfd;
}

/* node-b's handshakes from peer, inbound and completed. */
static uint64_t tunnel_handshakes_from(struct harness *h, const char *peer)
{
	struct tunnel_stats ts;
	uint64_t n = 0;

	pthread_mutex_lock(&h->loop.lock);
	tunnel_get_stats(h->tun, &ts);
	for (int i = 0; i < ts.nr_hs; i++) {
		if (strcmp(ts.hs[i].peer, peer))
			continue;
		for (int s = 0; s < 2; s++)
			for (int b = 0; b < SLUICE_LAT_BUCKETS; b++)
				n += ts.hs[i].buckets[IN][s][b];
	}
	pthread_mutex_unlock(&h->loop.lock);
	return n;
}

/* node-b's policy allows the flow, its destination refuses: one allow line
 * that says so, where the peer hears a deny. node-b counts the handshake
 * as node-a's: its certificate names a configured peer, though it came
 * from an address that is not node-a's tunnel address. */
static void test_audited_upstream_refused(void **state)
{
	struct harness *h = *state;
	int fd;

	fd = upstream_refuses(h);
	assert_allowed_failed(h, "upstream-refused", strerror(ECONNREFUSED));
	assert_int_equal(tunnel_handshakes_from(h, "node-a"), 1);
	assert_int_equal(tunnel_handshakes_from(h, TUNNEL_HS_UNKNOWN), 0);
	close(fd);
}

/* An allowed flow whose destination never answers: both sides give up at
 * the deadline, and node-b writes one line, an allow that timed out. */
static void test_audited_upstream_timeout(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;
	int lfd, filler, cfd;

	lfd = silent_listener(&addr, &filler);
	set_addr(h, &h->upstream, &addr);
	cfd = client_connect(h);
	set_timeouts(cfd, (DEADLINE_MS + DEADLINE_SLACK_MS) / 1000);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	assert_int_equal(wait_count_within(h, &h->rec.closed[IN], 1,
					   (DEADLINE_MS + DEADLINE_SLACK_MS) / 1000),
			 1);
	assert_allowed_failed(h, "upstream-connect-timeout",
			      "the destination did not answer in time");
	close(cfd);
	close(filler);
	close(lfd);
}

/* node-a sends src's OPEN and resets the connection before node-b could
 * answer it: node-b reads the OPEN (the bytes came before the reset),
 * decides, and cannot send its VERDICT. */
static void open_then_vanish(struct harness *h, const char *src, const char *token)
{
	struct frame_open o = { .token = (char *)token, .src = "", .dst = h->upstream };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint8_t *open;
	size_t len, n;
	SSL *ssl;
	int fd, ret;

	snprintf(o.src, sizeof(o.src), "%s", src);
	assert_int_equal(frame_open_encode(&o, &open, &len), 0);
	assert_int_equal(tls_connect(h, fx.client, &ssl, &fd), 1);
	/* Nagle would hold the OPEN back, and the reset discard it. */
	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int)), 0);
	/* node-b must not answer before the reset. */
	pthread_mutex_lock(&h->loop.lock);
	ret = SSL_write_ex(ssl, open, len, &n);
	if (ret == 1)
		ret = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) ? 0 : 1;
	close(fd);
	pthread_mutex_unlock(&h->loop.lock);
	free(open);
	SSL_free(ssl);
	assert_int_equal(ret, 1);
	assert_int_equal(n, len);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
}

/* An allowed flow whose peer left before the VERDICT: one allow line that
 * says the VERDICT was never sent. */
static void test_audited_peer_gone_before_verdict(void **state)
{
	struct harness *h = *state;
	int ufd;

	open_then_vanish(h, SRC, fx.job_token);
	/* node-b connected to the destination before it found the peer gone. */
	ufd = accept_upstream(h);
	assert_allowed_failed(h, "verdict-not-sent", strerror(EPIPE));
	close(ufd);
}

/* A deny whose VERDICT cannot be sent is still the one deny line. */
static void test_audited_deny_not_sent(void **state)
{
	struct harness *h = *state;
	json_t *line;

	open_then_vanish(h, NOTEBOOK, fx.notebook_token);
	line = one_audit_line(h, "deny", "default-deny", NULL);
	assert_string_equal(json_string_value(json_object_get(line, "src_workload")), NOTEBOOK);
	json_decref(line);
	assert_no_upstream(h);
}

/* node-b cannot write its audit log: the line is counted, and the count
 * published in credentials.json for sluicectl cred list. */
static void test_audited_lost_lines_published(void **state)
{
	struct harness *h = *state;
	char path[PATH_MAX];
	struct errmsg err = {};
	json_t *doc, *audit;
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	close(cfd);
	close(ufd);
	assert_int_equal(wait_count(h, &h->rec.closed[IN], 1), 1);
	pthread_mutex_lock(&h->loop.lock);
	tunnel_tick(h->tun);
	pthread_mutex_unlock(&h->loop.lock);
	join(path, h->dir, CREDFILE_NAME);
	assert_int_equal(credfile_read(path, &doc, &err), 0);
	audit = json_object_get(doc, "audit");
	assert_non_null(audit);
	assert_string_equal(json_string_value(json_object_get(audit, "log")), "/dev/full");
	assert_int_equal(json_integer_value(json_object_get(audit, "lines_lost")), 1);
	assert_string_equal(json_string_value(json_object_get(audit, "error")), strerror(ENOSPC));
	json_decref(doc);
}

/* Issues node's files from the CA in ca_dir and loads them. */
static struct pki_creds *node_creds(const char *ca_dir, const char *node)
{
	char out[PATH_MAX], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	struct pki_paths paths = { .ca = ca, .cert = cert, .key = key };
	struct pki_creds *c = NULL;
	struct errmsg err = {};
	time_t now = time(NULL);

	join(out, ca_dir, node);
	if (pki_issue(ca_dir, node, out, now - PKI_CLOCK_SKEW, now + DAY, &err))
		fail_msg("pki_issue: %s", err.msg);
	join(ca, out, PKI_CA_CERT);
	join(cert, out, PKI_NODE_CERT);
	join(key, out, PKI_NODE_KEY);
	if (pki_load(&paths, TD, node, &c, &err))
		fail_msg("pki_load: %s", err.msg);
	return c;
}

static void ca_init(char *dir, const char *name)
{
	struct errmsg err = {};

	join(dir, fx.dir, name);
	if (pki_ca_init(dir, TD, 365, false, &err))
		fail_msg("pki_ca_init: %s", err.msg);
}

/* A token for id, as node-a's agent mints it. */
static char *mint_token(const char *id)
{
	struct jwt_workload w = { .trust_domain = TD, .node = "node-a", .id = id,
				  .cnf_x5t = fx.a->thumbprint, .now = time(NULL), .lifetime = DAY };
	struct errmsg err = {};
	json_t *claims = NULL;
	char *jwt = NULL;
	int ret;

	ret = jwt_workload_claims(&w, &claims, &err);
	if (!ret)
		ret = jwt_mint_es256(fx.a->key, fx.a->thumbprint, claims, &jwt, &err);
	json_decref(claims);
	if (ret)
		fail_msg("token for %s: %s", id, err.msg);
	return jwt;
}

static int group_setup(void **state)
{
	char ca[PATH_MAX], other[PATH_MAX];
	struct errmsg err = {};

	pattern_init();
	strcpy(fx.dir, "/tmp/test_proxy_tunnel.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	ca_init(ca, "ca");
	ca_init(other, "other-ca");
	fx.a = node_creds(ca, "node-a");
	fx.b = node_creds(ca, "node-b");
	fx.stranger = node_creds(other, "node-a");
	if (pki_ssl_ctx(fx.a, false, &fx.client, &err) || pki_ssl_ctx(fx.b, true, &fx.server, &err))
		fail_msg("pki_ssl_ctx: %s", err.msg);
	fx.job_token = mint_token(SRC);
	fx.notebook_token = mint_token(NOTEBOOK);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_teardown(void **state)
{
	SSL_CTX_free(fx.client);
	SSL_CTX_free(fx.server);
	pki_creds_free(fx.a);
	pki_creds_free(fx.b);
	pki_creds_free(fx.stranger);
	free(fx.job_token);
	free(fx.notebook_token);
	return nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bulk_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gated_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_every_leg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_destination, setup6, teardown),
		cmocka_unit_test_setup_teardown(test_authorize_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunnel_ready_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunnel_accept_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_without_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_of_another_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_in_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_max_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audited_upstream_refused, setup_audited,
						teardown),
		cmocka_unit_test_setup_teardown(test_audited_upstream_timeout, setup_audited,
						teardown),
		cmocka_unit_test_setup_teardown(test_audited_peer_gone_before_verdict,
						setup_audited, teardown),
		cmocka_unit_test_setup_teardown(test_audited_deny_not_sent, setup_audited,
						teardown),
		cmocka_unit_test_setup_teardown(test_audited_lost_lines_published, setup_audit_full,
						teardown),
	};

	/* As in sluiced: OpenSSL writes tunnel records with write(), so a
	 * peer that reset would otherwise kill the process. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("proxy_tunnel", tests, group_setup, group_teardown);
}
