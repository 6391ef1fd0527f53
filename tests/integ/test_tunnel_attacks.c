// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tunnel_attacks: a hand-driven client in node A speaks to node B's tunnel
 * listener the way an attacker would: forged and bent workload tokens over
 * node A's real certificate, a token minted by another node, a token
 * replayed after it expired, a token for a workload that lives on another
 * node, dates past what can be computed with, algorithms off the list, key
 * URLs in the header (never fetched), certificates from another CA or
 * expired, and bytes that are no frame at all. Each one is refused with the
 * reason code
 * docs/tunnel.md gives it, in the VERDICT when there is one and always in B's
 * audit log, B's agent keeps running, no token is ever written down, and a
 * job on A still reaches B's echo server through both agents afterwards.
 * A token forged exactly as node A's agent mints it is allowed, so every
 * refusal is the bend's doing.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_proc.h"
#include "client.h"
#include "config.h"
#include "env.h"
#include "forge.h"
#include "frame.h"
#include "harness.h"
#include "mesh.h"
#include "pki.h"
#include "pki_ca.h"
#include "servers.h"
#include "tunnel_client.h"

/* identity.clock_skew on both agents, the grace past a token's exp. */
#define SKEW_S 1
#define SKEW "1s"
#define TOKEN_LIFETIME_S 300
/* The replayed token: valid when first shown, expired past the skew soon. */
#define REPLAY_LIFETIME_S 2
#define TC_TIMEOUT_MS 5000
#define ATTACK_DIR "attack"
#define NODE_C_DIR ATTACK_DIR "/" NODE_C
#define OTHER_CA_DIR ATTACK_DIR "/other-ca"
#define STRANGER_DIR ATTACK_DIR "/stranger"
#define EXPIRED_DIR ATTACK_DIR "/expired"
/* 32 hex digits of a traceparent, and a NUL. */
#define TRACE_ID_LEN 33
#define BIG_FRAME (1u << 20)
#define ECHO_BYTES 1000
/* Parts of every token sent: B must not write any of them down. */
#define MAX_SECRETS 64
/* A job on node C, which B lets C vouch for, not A. */
#define ID_ON_C "spiffe://" TRUST_DOMAIN "/job/on-c"
/* Where jku and x5u headers point: a listener in B's namespace that B's
 * agent must never connect to. */
#define PORT_KEY_URL 7500
#define KEY_URLS                                                                                   \
	"\"jku\":\"https://127.0.0.1:7500/jwks\",\"x5u\":\"https://127.0.0.1:7500/node.pem\""
/* Time a fetch that a verifier ran behind the verdict's back gets to show. */
#define FETCH_GRACE_MS 300

struct world {
	struct pki_creds *node_a, *node_c;
	char tunnel[64];
	char dst[64];
	char ca[PATH_MAX];
	char cert_a[PATH_MAX], key_a[PATH_MAX];
	char cert_c[PATH_MAX], key_c[PATH_MAX];
	char stranger_cert[PATH_MAX], stranger_key[PATH_MAX];
	char expired_cert[PATH_MAX], expired_key[PATH_MAX];
	char *secrets[MAX_SECRETS];
	int nr_secrets;
};

/* What B's audit line for one decision must say. */
struct expect {
	bool allow;
	const char *reason;
	const char *src_node;	  /* NULL: none, the peer is not one of ours */
	const char *src_workload; /* NULL: none, no frame was read */
	const char *dst;	  /* NULL: "-", no frame was read */
	const char *trace_id;	  /* NULL: not checked */
	const char *detail_has;	  /* NULL: not checked */
};

static int load_creds(const char *ca, const char *cert, const char *key, const char *node,
		      struct pki_creds **out)
{
	struct pki_paths p = {.ca = ca, .cert = cert, .key = key};
	struct errmsg err = {};
	int ret;

	ret = pki_load(&p, TRUST_DOMAIN, node, out, &err);
	if (ret)
		printf("%s\n", err.msg);
	return ret;
}

static int issue(const char *ca_dir, const char *node, const char *out, time_t nb, time_t na)
{
	struct errmsg err = {};
	int ret;

	ret = pki_issue(ca_dir, node, out, nb, na, &err);
	if (ret)
		printf("%s\n", err.msg);
	return ret;
}

static int other_ca(const char *dir)
{
	struct errmsg err = {};
	int ret;

	ret = pki_ca_init(dir, TRUST_DOMAIN, 1, false, &err);
	if (ret)
		printf("%s\n", err.msg);
	return ret;
}

/* Beside the mesh's own: node-c from the mesh CA; node-a from a CA of the
 * same trust domain that B does not trust; node-a from the mesh CA,
 * expired an hour ago. */
static bool world_make(struct sl_env *env, struct world *w)
{
	char ca_dir[PATH_MAX], ca2_dir[PATH_MAX], dir[PATH_MAX];
	time_t now = time(NULL);

	snprintf(w->tunnel, sizeof(w->tunnel), "%s:%d", env->ip4_b, TUNNEL_PORT);
	snprintf(w->dst, sizeof(w->dst), "%s:%d", env->ip4_b, PORT_ECHO);
	mesh_pki_path(env, "", ca_dir, sizeof(ca_dir));
	mesh_pki_path(env, PKI_CA_CERT, w->ca, sizeof(w->ca));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_CERT, w->cert_a, sizeof(w->cert_a));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_KEY, w->key_a, sizeof(w->key_a));
	if (!ASSERT_OK(load_creds(w->ca, w->cert_a, w->key_a, NODE_A, &w->node_a),
		       "node-a credentials"))
		return false;

	env_path(env, NODE_C_DIR, dir, sizeof(dir));
	env_path(env, NODE_C_DIR "/" PKI_NODE_CERT, w->cert_c, sizeof(w->cert_c));
	env_path(env, NODE_C_DIR "/" PKI_NODE_KEY, w->key_c, sizeof(w->key_c));
	if (!ASSERT_OK(issue(ca_dir, NODE_C, dir, now - 60, now + 3600), "issue node-c") ||
	    !ASSERT_OK(load_creds(w->ca, w->cert_c, w->key_c, NODE_C, &w->node_c),
		       "node-c credentials"))
		return false;

	env_path(env, OTHER_CA_DIR, ca2_dir, sizeof(ca2_dir));
	env_path(env, STRANGER_DIR, dir, sizeof(dir));
	env_path(env, STRANGER_DIR "/" PKI_NODE_CERT, w->stranger_cert, sizeof(w->stranger_cert));
	env_path(env, STRANGER_DIR "/" PKI_NODE_KEY, w->stranger_key, sizeof(w->stranger_key));
	if (!ASSERT_OK(other_ca(ca2_dir), "another CA") ||
	    !ASSERT_OK(issue(ca2_dir, NODE_A, dir, now - 60, now + 3600), "node-a from it"))
		return false;

	env_path(env, EXPIRED_DIR, dir, sizeof(dir));
	env_path(env, EXPIRED_DIR "/" PKI_NODE_CERT, w->expired_cert, sizeof(w->expired_cert));
	env_path(env, EXPIRED_DIR "/" PKI_NODE_KEY, w->expired_key, sizeof(w->expired_key));
	return ASSERT_OK(issue(ca_dir, NODE_A, dir, now - 7200, now - 3600), "expired node-a");
}

static void world_free(struct world *w)
{
	pki_creds_free(w->node_a);
	pki_creds_free(w->node_c);
	for (int i = 0; i < w->nr_secrets; i++)
		free(w->secrets[i]);
}

/* Keeps the claims and signature parts of a token sent, to look for. */
static void remember(struct world *w, const char *token)
{
	const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

	if (!dot2 || w->nr_secrets + 2 > MAX_SECRETS)
		return;
	w->secrets[w->nr_secrets] = strndup(dot1 + 1, dot2 - dot1 - 1);
	w->nr_secrets += !!w->secrets[w->nr_secrets];
	if (dot2[1]) {
		w->secrets[w->nr_secrets] = strdup(dot2 + 1);
		w->nr_secrets += !!w->secrets[w->nr_secrets];
	}
}

static void show(const char *what, const struct tc_result *res)
{
	printf("%s: %s", what, tc_end_name(res->end));
	if (res->end == TC_VERDICT)
		printf(" %s %s", res->verdict.allow ? "allow" : "deny", res->verdict.reason);
	if (res->end == TC_VERDICT && !res->verdict.allow)
		printf(", then %s", tc_end_name(res->after_deny));
	printf(" %s\n", res->detail);
}

static int open_frame(const char *dst, const char *src, const char *token,
		      char trace_id[TRACE_ID_LEN], uint8_t **buf, size_t *len)
{
	struct frame_open o = {.token = (char *)token};
	int ret;

	if (parse_sockaddr(dst, &o.dst))
		return -EINVAL;
	snprintf(o.src, sizeof(o.src), "%s", src);
	ret = frame_traceparent_new(o.traceparent);
	if (ret)
		return ret;
	snprintf(trace_id, TRACE_ID_LEN, "%.32s", o.traceparent + 3);
	return frame_open_encode(&o, buf, len);
}

/* An OPEN to dst for src with token, over TLS as cert and key, from node A. */
static bool send_open(struct sl_env *env, struct world *w, const char *dst, const char *cert,
		      const char *key, const char *src, const char *token,
		      char trace_id[TRACE_ID_LEN], struct tc_result *res)
{
	struct tc_req req = {.ns = env->ns_a,
			     .addr = w->tunnel,
			     .ca = w->ca,
			     .cert = cert,
			     .key = key,
			     .timeout_ms = TC_TIMEOUT_MS};
	uint8_t *buf;
	size_t len;
	int ret;

	remember(w, token);
	if (!ASSERT_OK(open_frame(dst, src, token, trace_id, &buf, &len), "OPEN frame"))
		return false;
	req.data = buf;
	req.len = len;
	ret = tunnel_client_run(&req, res);
	free(buf);
	show("OPEN", res);
	return ASSERT_OK(ret, "tunnel client");
}

/* Raw bytes from node A over TLS as node A. */
static bool send_raw(struct sl_env *env, struct world *w, const void *data, size_t len,
		     size_t filler, enum tc_then then, struct tc_result *res)
{
	struct tc_req req = {.ns = env->ns_a,
			     .addr = w->tunnel,
			     .ca = w->ca,
			     .cert = w->cert_a,
			     .key = w->key_a,
			     .data = data,
			     .len = len,
			     .filler = filler,
			     .then = then,
			     .timeout_ms = TC_TIMEOUT_MS};
	int ret;

	ret = tunnel_client_run(&req, res);
	show("raw", res);
	return ASSERT_OK(ret, "tunnel client");
}

static bool verdict_deny(const struct tc_result *res, const char *reason)
{
	if (!ASSERT_EQ(res->end, TC_VERDICT, "the connection ended with a VERDICT"))
		return false;
	ASSERT_FALSE(res->verdict.allow, "VERDICT allow");
	ASSERT_STREQ(res->verdict.reason, reason, "VERDICT reason");
	ASSERT_EQ(res->after_deny, TC_EOF, "B closed the tunnel after the deny");
	return true;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The first line of B's audit log after from with this reason, waited for. */
static json_t *audit_line(struct sl_env *env, long from, const char *reason)
{
	char needle[96], *log, *line, *save;
	json_t *found = NULL;
	long long deadline = now_ms() + LOG_WAIT_MS;

	snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", reason);
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'b', from, needle, LOG_WAIT_MS),
			 "a line with the reason in B's audit log"))
		return NULL;
	/* The needle may be in a line B is still writing: read again until
	 * it is whole. */
	do {
		log = mesh_audit(env, 'b', from);
		for (line = log ? strtok_r(log, "\n", &save) : NULL; line && !found;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *o = json_loads(line, 0, NULL);

			if (o && !strcmp(jstr(o, "reason") ?: "", reason))
				found = o;
			else
				json_decref(o);
		}
		free(log);
	} while (!found && now_ms() < deadline && (sleep_ms(50), true));
	ASSERT_OK_PTR(found, "the audit line is JSON");
	return found;
}

/* One decision, one line in B's audit log, saying what e says. */
static void audited(struct sl_env *env, long from, const struct expect *e)
{
	json_t *line = audit_line(env, from, e->reason);
	char *log;
	int n = 0;

	if (!line)
		return;
	ASSERT_STREQ(jstr(line, "direction"), "inbound", "audit direction");
	ASSERT_STREQ(jstr(line, "verdict"), e->allow ? "allow" : "deny", "audit verdict");
	ASSERT_STREQ(jstr(line, "src_node") ?: "(none)", e->src_node ?: "(none)", "audit src_node");
	ASSERT_STREQ(jstr(line, "src_workload") ?: "(none)", e->src_workload ?: "(none)",
		     "audit src_workload");
	ASSERT_STREQ(jstr(line, "dst"), e->dst ?: "-", "audit dst");
	if (e->trace_id)
		ASSERT_STREQ(jstr(line, "trace_id"), e->trace_id, "audit trace_id");
	if (e->detail_has)
		ASSERT_HAS_SUBSTR(jstr(line, "detail"), e->detail_has, "audit detail");
	json_decref(line);
	log = mesh_audit(env, 'b', from);
	for (char *p = log; p && *p; p++)
		n += *p == '\n';
	free(log);
	ASSERT_EQ(n, 1, "B's audit lines for the decision");
}

static bool b_running(struct sl_env *env)
{
	return ASSERT_TRUE(mesh_b_running(env), "node B's agent still running");
}

/* A job's token that B takes from node (its cert and key): allowed, and
 * audited when the tunnel closes. */
static bool allowed_from(struct sl_env *env, struct world *w, const char *node, const char *cert,
			 const char *key, const char *src, const char *token)
{
	long from = mesh_audit_size(env, 'b');
	struct tc_result res;
	char trace[TRACE_ID_LEN];

	if (!send_open(env, w, w->dst, cert, key, src, token, trace, &res) ||
	    !ASSERT_EQ(res.end, TC_VERDICT, "the connection ended with a VERDICT"))
		return false;
	ASSERT_TRUE(res.verdict.allow, "VERDICT allow");
	ASSERT_STREQ(res.verdict.reason, "ok", "VERDICT reason");
	ASSERT_STREQ(res.verdict.rule, "jobs-use-data", "VERDICT rule");
	audited(env, from,
		&(struct expect){.allow = true,
				 .reason = "ok",
				 .src_node = node,
				 .src_workload = src,
				 .dst = w->dst,
				 .trace_id = trace});
	return res.verdict.allow;
}

static bool token_allowed(struct sl_env *env, struct world *w, const char *token)
{
	return allowed_from(env, w, NODE_A, w->cert_a, w->key_a, ID_JOB, token);
}

static void forged_valid(struct sl_env *env, struct world *w)
{
	struct forge_req fr = {.sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S};
	char *tok;

	if (!ASSERT_OK(forge_token(w->node_a, FORGE_VALID, &fr, &tok), "forge"))
		return;
	token_allowed(env, w, tok);
	free(tok);
	b_running(env);
}

/* An OPEN over cert and key for e.src_workload with token: refused with
 * e.reason in the VERDICT, and audited by B as e says (its dst and
 * trace_id filled in here). */
static void refused_as(struct sl_env *env, struct world *w, const char *cert, const char *key,
		       const char *token, struct expect e)
{
	long from = mesh_audit_size(env, 'b');
	struct tc_result res;
	char trace[TRACE_ID_LEN];

	if (!send_open(env, w, w->dst, cert, key, e.src_workload, token, trace, &res) ||
	    !verdict_deny(&res, e.reason))
		return;
	e.dst = w->dst;
	e.trace_id = trace;
	audited(env, from, &e);
}

/* A token fr forged as kind by signer, for a job over node A's TLS. */
static void forged_refused(struct sl_env *env, struct world *w, const struct pki_creds *signer,
			   enum forge_kind kind, const struct forge_req *fr, const char *reason)
{
	char *tok;

	if (!ASSERT_OK(forge_token(signer, kind, fr, &tok), "forge"))
		return;
	refused_as(env, w, w->cert_a, w->key_a, tok,
		   (struct expect){.reason = reason, .src_node = NODE_A, .src_workload = ID_JOB});
	free(tok);
	b_running(env);
}

/* A token bent one way (kind), from signer, for a job over node A's TLS.
 * The tampered one is signed for the notebook, which B's policy would
 * refuse, and then claims to be the job, which it would allow. */
static void token_refused(struct sl_env *env, struct world *w, const struct pki_creds *signer,
			  enum forge_kind kind, const char *reason)
{
	struct forge_req fr = {.sub = kind == FORGE_TAMPERED ? ID_NOTEBOOK : ID_JOB,
			       .lifetime = TOKEN_LIFETIME_S,
			       .tamper_sub = ID_JOB};

	forged_refused(env, w, signer, kind, &fr, reason);
}

/* A job's token bent as set says (FORGE_CLAIMS or FORGE_HEADER), signed
 * by node A, over node A's TLS. */
static void bent_refused(struct sl_env *env, struct world *w, enum forge_kind kind,
			 const char *set, const char *reason)
{
	struct forge_req fr = {.sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S, .set = set};

	forged_refused(env, w, w->node_a, kind, &fr, reason);
}

/* An exp past what date arithmetic can take: malformed, and B's log says
 * why. */
static void exp_out_of_range(struct sl_env *env, struct world *w, const char *set)
{
	long from = mesh_b_log_size(env);

	bent_refused(env, w, FORGE_CLAIMS, set, "malformed");
	ASSERT_TRUE(mesh_b_log_wait(env, from, "claim exp is out of range", LOG_WAIT_MS),
		    "B's log: claim exp is out of range");
}

/* A token that B took is refused once its exp is more than the skew ago. */
static void replay(struct sl_env *env, struct world *w)
{
	struct forge_req fr = {.sub = ID_JOB, .now = time(NULL), .lifetime = REPLAY_LIFETIME_S};
	char *tok;

	if (!ASSERT_OK(forge_token(w->node_a, FORGE_VALID, &fr, &tok), "forge"))
		return;
	if (!token_allowed(env, w, tok))
		goto out;
	while (time(NULL) < fr.now + REPLAY_LIFETIME_S + SKEW_S)
		sleep_ms(100);
	refused_as(env, w, w->cert_a, w->key_a, tok,
		   (struct expect){
		       .reason = "expired", .src_node = NODE_A, .src_workload = ID_JOB});
out:
	free(tok);
	b_running(env);
}

/* A valid token does not help a client whose certificate B refuses: the
 * handshake fails (TLS 1.3 clients hear it as an alert after their
 * Finished), and no frame is read. */
static void tls_refused(struct sl_env *env, struct world *w, const char *cert, const char *key,
			const char *alert, const char *detail_has)
{
	struct forge_req fr = {.sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S};
	long from = mesh_audit_size(env, 'b');
	struct tc_result res;
	char trace[TRACE_ID_LEN], *tok;
	bool sent;

	if (!ASSERT_OK(forge_token(w->node_a, FORGE_VALID, &fr, &tok), "forge"))
		return;
	sent = send_open(env, w, w->dst, cert, key, ID_JOB, tok, trace, &res);
	free(tok);
	if (sent) {
		if (ASSERT_EQ(res.end, TC_ALERT, "the connection ended with a TLS alert"))
			ASSERT_STREQ(res.alert, alert, "TLS alert");
		audited(
		    env, from,
		    &(struct expect){.reason = "tls-handshake-failed", .detail_has = detail_has});
	}
	b_running(env);
}

/* Bytes that are no OPEN frame, refused on their header. */
static void frame_refused(struct sl_env *env, struct world *w, const void *data, size_t len,
			  size_t filler, const char *reason)
{
	long from = mesh_audit_size(env, 'b');
	struct tc_result res;

	if (send_raw(env, w, data, len, filler, TC_THEN_READ, &res) && verdict_deny(&res, reason))
		audited(env, from,
			&(struct expect){.reason = reason,
					 .src_node = NODE_A,
					 .detail_has = "bad OPEN frame header"});
	b_running(env);
}

static void garbage(struct sl_env *env, struct world *w)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: node-b\r\n\r\n";

	frame_refused(env, w, http, strlen(http), 0, FRAME_BAD_MAGIC);
}

/* The header says 1 MiB and the bytes follow: B answers on the header. */
static void big_frame(struct sl_env *env, struct world *w)
{
	uint8_t hdr[FRAME_HDR_LEN];

	tc_frame_hdr(hdr, FRAME_OPEN, BIG_FRAME);
	frame_refused(env, w, hdr, sizeof(hdr), BIG_FRAME, FRAME_TOO_LARGE);
}

/* Half a header, then the client goes: nobody to answer, audited only.
 * Whether it leaves with close_notify and a FIN or with an RST, the frame
 * was cut short; an RST may take the half header with it. */
static void truncated(struct sl_env *env, struct world *w, enum tc_then then)
{
	const char *detail =
	    then == TC_THEN_RESET ? "of 12 header bytes" : "closed after 6 of 12 header bytes";
	long from = mesh_audit_size(env, 'b');
	uint8_t hdr[FRAME_HDR_LEN];
	struct tc_result res;

	tc_frame_hdr(hdr, FRAME_OPEN, 100);
	if (send_raw(env, w, hdr, sizeof(hdr) / 2, 0, then, &res) &&
	    ASSERT_EQ(res.end, TC_CLOSED, "the client closed after half a header"))
		audited(env, from,
			&(struct expect){
			    .reason = FRAME_TRUNCATED, .src_node = NODE_A, .detail_has = detail});
	b_running(env);
}

/*
 * An OPEN whose destination is IPv4-mapped is about the IPv4 address: to
 * node A's (another node's) it is no local destination, whichever family
 * spells it; to B's echo port it is the allowed IPv4 service, audited
 * unmapped.
 */
static void mapped_dst(struct sl_env *env, struct world *w, const char *ip4, bool allow,
		       const char *reason)
{
	struct forge_req fr = {.sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S};
	long from = mesh_audit_size(env, 'b');
	char mapped[64], want[64], trace[TRACE_ID_LEN], *tok;
	struct tc_result res;
	bool sent;

	snprintf(mapped, sizeof(mapped), "[::ffff:%s]:%d", ip4, PORT_ECHO);
	snprintf(want, sizeof(want), "%s:%d", ip4, PORT_ECHO);
	if (!ASSERT_OK(forge_token(w->node_a, FORGE_VALID, &fr, &tok), "forge"))
		return;
	sent = send_open(env, w, mapped, w->cert_a, w->key_a, ID_JOB, tok, trace, &res);
	free(tok);
	if (sent && ASSERT_EQ(res.end, TC_VERDICT, "the connection ended with a VERDICT")) {
		ASSERT_EQ(res.verdict.allow, allow, "VERDICT allow");
		ASSERT_STREQ(res.verdict.reason, reason, "VERDICT reason");
		audited(env, from,
			&(struct expect){.allow = allow, .reason = reason, .src_node = NODE_A,
					 .src_workload = ID_JOB, .dst = want, .trace_id = trace});
	}
	b_running(env);
}

/* A job on node C, with a token as valid as node A can mint: C speaks for
 * it, A may not, since B lets only C vouch for it. */
static void other_nodes_workload(struct sl_env *env, struct world *w)
{
	struct forge_req fr = {.sub = ID_ON_C, .lifetime = TOKEN_LIFETIME_S};
	char *tok_c = NULL, *tok_a = NULL;

	if (!ASSERT_OK(forge_token(w->node_c, FORGE_VALID, &fr, &tok_c), "forge as node C") ||
	    !ASSERT_OK(forge_token(w->node_a, FORGE_VALID, &fr, &tok_a), "forge as node A"))
		goto out;
	allowed_from(env, w, NODE_C, w->cert_c, w->key_c, ID_ON_C, tok_c);
	refused_as(env, w, w->cert_a, w->key_a, tok_a,
		   (struct expect){.reason = "workload-not-on-peer",
				   .src_node = NODE_A,
				   .src_workload = ID_ON_C,
				   .detail_has = "not in peers[].workloads of " NODE_A});
out:
	free(tok_c);
	free(tok_a);
	b_running(env);
}

/* jku and x5u name where keys could be fetched: B never fetches them. A
 * valid token carrying them is allowed, one whose kid only they could
 * resolve is refused as unknown-kid, and the listener they point at in
 * B's namespace sees no connection. */
static void key_urls_ignored(struct sl_env *env, struct world *w)
{
	struct server *urls =
	    server_start_at(env, env->ns_b, "127.0.0.1", SRV_ECHO, PORT_KEY_URL);
	struct forge_req fr = {
	    .sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S, .set = "{" KEY_URLS "}"};
	char *tok;

	if (!ASSERT_OK_PTR(urls, "listener at the key URLs"))
		return;
	if (ASSERT_OK(forge_token(w->node_a, FORGE_HEADER, &fr, &tok), "forge")) {
		token_allowed(env, w, tok);
		free(tok);
	}
	bent_refused(env, w, FORGE_HEADER, "{\"kid\":\"in-the-jku-set\"," KEY_URLS "}",
		     "unknown-kid");
	sleep_ms(FETCH_GRACE_MS);
	ASSERT_EQ(server_nr_conns(urls), 0, "connections to the jku/x5u listener");
	server_stop(urls);
}

/* A kid built to break B's audit line: refused with reason in the VERDICT,
 * and one audit line for it whose kid is want_kid (NULL: none, the header
 * was refused before a kid was read). */
static void kid_refused(struct sl_env *env, struct world *w, enum forge_kind kind,
			const char *kid, const char *reason, const char *want_kid)
{
	struct forge_req fr = {.sub = ID_JOB, .lifetime = TOKEN_LIFETIME_S, .kid = kid};
	long from = mesh_audit_size(env, 'b');
	json_t *line;
	char *tok;

	if (!ASSERT_OK(forge_token(w->node_a, kind, &fr, &tok), "forge"))
		return;
	refused_as(env, w, w->cert_a, w->key_a, tok,
		   (struct expect){.reason = reason, .src_node = NODE_A, .src_workload = ID_JOB});
	free(tok);
	line = audit_line(env, from, reason);
	if (line)
		ASSERT_STREQ(jstr(line, "kid") ?: "(none)", want_kid ?: "(none)", "audit kid");
	json_decref(line);
	b_running(env);
}

/* 62 bytes, then "é" over bytes 63 and 64: a 64-byte copy that cuts
 * between bytes keeps half of it. B keeps what fits between characters. */
static void kid_cut_multibyte(struct sl_env *env, struct world *w)
{
	char kid[65], want[64];

	memset(kid, 'k', 62);
	strcpy(kid + 62, "\xc3\xa9");
	memset(want, 'k', 60);
	strcpy(want + 60, "...");
	kid_refused(env, w, FORGE_KID, kid, "unknown-kid", want);
}

/* No JSON parser takes the header: malformed, and still one line. */
static void kid_invalid_utf8(struct sl_env *env, struct world *w)
{
	kid_refused(env, w, FORGE_KID_RAW, "\xff\xfek\xc3(\xed\xa0\x80", "malformed", NULL);
}

static void kid_4kib(struct sl_env *env, struct world *w)
{
	char kid[4097], want[64];

	memset(kid, 'K', 4096);
	kid[4096] = '\0';
	memset(want, 'K', 60);
	strcpy(want + 60, "...");
	kid_refused(env, w, FORGE_KID, kid, "unknown-kid", want);
}

/* After all that, a job on A still reaches B's echo server through both
 * agents. */
static void legit_flow(struct sl_env *env, struct world *w)
{
	struct client_req req = {.op = CL_ECHO,
				 .cgroup = "job",
				 .family = AF_INET,
				 .port = PORT_ECHO,
				 .bytes = ECHO_BYTES};
	long from = mesh_audit_size(env, 'b');
	struct client_res res = {};

	if (!ASSERT_OK(client_run(env, &req, &res), "echo client report"))
		return;
	ASSERT_EQ(res.err, 0, "echo client errno");
	ASSERT_EQ(res.recvd.bytes, ECHO_BYTES, "bytes echoed");
	ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	ASSERT_TRUE(res.eof, "echo client saw EOF");
	audited(env, from,
		&(struct expect){.allow = true,
				 .reason = "ok",
				 .src_node = NODE_A,
				 .src_workload = ID_JOB,
				 .dst = w->dst});
}

/* Neither B's log nor its audit log holds any part of a token it was sent
 * (the header part is the same for many, so claims and signatures). */
static void no_token_written(struct sl_env *env, struct world *w)
{
	char *log = read_file_from(env->agent_b_log, 0), *audit = mesh_audit(env, 'b', 0);
	int in_log = 0, in_audit = 0;

	if (ASSERT_OK_PTR(log, "B's log") && ASSERT_OK_PTR(audit, "B's audit log") &&
	    ASSERT_GE(w->nr_secrets, 1, "token parts sent")) {
		for (int i = 0; i < w->nr_secrets; i++) {
			in_log += !!strstr(log, w->secrets[i]);
			in_audit += !!strstr(audit, w->secrets[i]);
		}
		ASSERT_EQ(in_log, 0, "token parts in B's log");
		ASSERT_EQ(in_audit, 0, "token parts in B's audit log");
	}
	free(log);
	free(audit);
}

void test_tunnel_attacks(struct sl_env *env)
{
	char peer_c[256];
	struct mesh_cfg cfg = {.clock_skew = SKEW, .peers_extra_b = peer_c};
	struct server *echo = server_start(env, SRV_ECHO, PORT_ECHO);
	struct world w = {};

	mesh_node_c_peer(env, ID_ON_C, peer_c, sizeof(peer_c));
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK(mesh_setup(env, &cfg), "mesh") ||
	    !world_make(env, &w))
		goto out;

	if (test__start_subtest("forged_valid"))
		forged_valid(env, &w);
	if (test__start_subtest("alg_none"))
		token_refused(env, &w, w.node_a, FORGE_ALG_NONE, "alg-not-allowed");
	if (test__start_subtest("hs256_public_key"))
		token_refused(env, &w, w.node_a, FORGE_HS256_PUBKEY, "alg-not-allowed");
	if (test__start_subtest("wrong_issuer"))
		token_refused(env, &w, w.node_a, FORGE_WRONG_ISS, "bad-issuer");
	if (test__start_subtest("wrong_audience"))
		token_refused(env, &w, w.node_a, FORGE_WRONG_AUD, "bad-audience");
	if (test__start_subtest("expired"))
		token_refused(env, &w, w.node_a, FORGE_EXPIRED, "expired");
	if (test__start_subtest("not_yet_valid"))
		token_refused(env, &w, w.node_a, FORGE_NOT_YET_VALID, "not-yet-valid");
	if (test__start_subtest("unknown_kid"))
		token_refused(env, &w, w.node_a, FORGE_UNKNOWN_KID, "unknown-kid");
	if (test__start_subtest("tampered_payload"))
		token_refused(env, &w, w.node_a, FORGE_TAMPERED, "bad-signature");
	if (test__start_subtest("other_node_token"))
		token_refused(env, &w, w.node_c, FORGE_VALID, "not-bound");
	if (test__start_subtest("replay_past_expiry"))
		replay(env, &w);
	if (test__start_subtest("cert_from_other_ca"))
		tls_refused(env, &w, w.stranger_cert, w.stranger_key, "unknown CA",
			    "certificate: unable to get local issuer certificate");
	if (test__start_subtest("expired_node_cert"))
		tls_refused(env, &w, w.expired_cert, w.expired_key, "certificate expired",
			    "certificate: certificate has expired");
	if (test__start_subtest("garbage"))
		garbage(env, &w);
	if (test__start_subtest("truncated_frame"))
		truncated(env, &w, TC_THEN_CLOSE);
	if (test__start_subtest("truncated_frame_reset"))
		truncated(env, &w, TC_THEN_RESET);
	if (test__start_subtest("frame_1mib"))
		big_frame(env, &w);
	if (test__start_subtest("mapped_dst_other_node"))
		mapped_dst(env, &w, env->ip4_a, false, "not-local-destination");
	if (test__start_subtest("mapped_dst_local"))
		mapped_dst(env, &w, env->ip4_b, true, "ok");
	if (test__start_subtest("other_nodes_workload"))
		other_nodes_workload(env, &w);
	if (test__start_subtest("exp_negative"))
		bent_refused(env, &w, FORGE_CLAIMS, "{\"exp\":-1}", "expired");
	if (test__start_subtest("exp_int64_max"))
		exp_out_of_range(env, &w, "{\"exp\":9223372036854775807}");
	if (test__start_subtest("exp_1e300"))
		exp_out_of_range(env, &w, "{\"exp\":1e300}");
	if (test__start_subtest("alg_ps256"))
		bent_refused(env, &w, FORGE_HEADER, "{\"alg\":\"PS256\"}", "alg-not-allowed");
	if (test__start_subtest("alg_es256_lowercase"))
		bent_refused(env, &w, FORGE_HEADER, "{\"alg\":\"es256\"}", "alg-not-allowed");
	if (test__start_subtest("jku_x5u_ignored"))
		key_urls_ignored(env, &w);
	if (test__start_subtest("kid_cut_multibyte"))
		kid_cut_multibyte(env, &w);
	if (test__start_subtest("kid_invalid_utf8"))
		kid_invalid_utf8(env, &w);
	if (test__start_subtest("kid_4kib"))
		kid_4kib(env, &w);
	if (test__start_subtest("legit_flow"))
		legit_flow(env, &w);
	if (test__start_subtest("no_token_written"))
		no_token_written(env, &w);
out:
	world_free(&w);
}
