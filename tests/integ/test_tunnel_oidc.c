// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workload tokens from a real OpenID provider (tests/oidc/idp.mjs, idp.h)
 * running in node A: node A's agent gets the job an access token with the
 * client credentials grant, its secret read from a file, presenting its
 * node certificate, and node B's agent verifies it with the IdP's JWKS and
 * maps its groups claim to a role of B's policy. The token is bound to the
 * certificate that fetched it: presented over another node's certificate,
 * node B refuses it. With the IdP gone, the cached token carries flows until
 * it expires (8 s tokens); then node A refuses them itself, audited as
 * idp-unreachable-token-expired, and neither agent stops. No client secret
 * and no token is ever written to a log or an audit line.
 *
 * Only the IdP vouches for workloads here: a token node A mints itself,
 * claiming the etl role, is refused (idp-token-required). Node C may speak
 * for the job, not the notebook: the IdP's notebook token, bound to C, is
 * refused from C (workload-not-on-peer). With identity.oidc.bind_cert
 * false, node B warns at start, takes that token from node A (what the
 * unbound mode gives up), and still refuses it from C.
 *
 * idp_hangs and idp_garbage (host only: each waits out a token) put a
 * server that never answers, or one that sends garbage, in the IdP's place.
 *
 * Without node (the VM tests), the tests skip.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "agent_proc.h"
#include "client.h"
#include "config.h"
#include "env.h"
#include "forge.h"
#include "frame.h"
#include "harness.h"
#include "idp.h"
#include "mesh.h"
#include "pki.h"
#include "servers.h"
#include "tunnel_client.h"

#define JOB_TTL_S 8
#define SECRET_FILE "oidc-client.secret"
#define SECRET_BYTES 16
#define FLOW_BYTES 65536
#define TC_TIMEOUT_MS 5000
#define READY_MS 15000
#define IDP_HTTP_MS 5000
#define RESOURCE "spiffe://" TRUST_DOMAIN
#define MAX_TOKEN 8192
#define NODE_TOKEN_LIFETIME_S 300
#define UNBOUND_WARNING "warn  identity.oidc.bind_cert is false"
/* The agent's OIDC request timeout (agent/identity/oidc.c, 5 s for the
 * whole request), and a margin for a slow machine. */
#define OIDC_TIMEOUT_MS 5000
#define OIDC_TIMEOUT_MARGIN_MS 2000

/* Node B's policy: data only for the role etl (IdP group etl-jobs), the
 * secret only for the role analysts (group notebooks). */
static const char policy_b[] = "version: 1\n"
			       "default: deny\n"
			       "roles:\n"
			       "  - name: etl\n"
			       "    claims: {groups: etl-jobs}\n"
			       "  - name: analysts\n"
			       "    claims: {groups: notebooks}\n"
			       MESH_SERVICES_B
			       "rules:\n"
			       "  - name: etl-uses-data\n"
			       "    from: {role: etl}\n"
			       "    to: [" SVC_DATA "]\n"
			       "    action: allow\n"
			       "  - name: analysts-use-secret\n"
			       "    from: {role: analysts}\n"
			       "    to: [" SVC_SECRET "]\n"
			       "    action: allow\n";

struct world {
	struct idp idp;
	char secret[2 * SECRET_BYTES + 1];
	char kid[64]; /* the key the IdP signs with */
	/* Job and notebook tokens bound to node C's certificate, and their
	 * JOSE header, which every token of this IdP shares. Never printed. */
	char *token_c, *token_c_nb;
	char header[256];
	struct server *echo, *secret_srv;
	/* The mesh as set up, for restarting B with other settings. */
	struct mesh_cfg cfg;
	char identity[512];
	char peer_c[256];
};

static int write_secret(struct sl_env *env, struct world *w)
{
	unsigned char r[SECRET_BYTES];
	char path[PATH_MAX];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(w->secret + 2 * i, "%02x", r[i]);
	env_path(env, SECRET_FILE, path, sizeof(path));
	if (env_write_file(env, SECRET_FILE, "%s", w->secret))
		return -EIO;
	return chmod(path, 0600) ? -errno : 0;
}

/* Both agents with identity.oidc; each of A's workloads a client of its
 * own (client_id defaults to its SPIFFE ID) sharing one secret file. */
static int start_mesh(struct sl_env *env, struct world *w)
{
	const struct idp_client clients[] = {
		{ .client_id = ID_JOB, .secret = w->secret, .groups = "etl-jobs",
		  .token_ttl = JOB_TTL_S, .bound = true },
		{ .client_id = ID_NOTEBOOK, .secret = w->secret, .groups = "notebooks",
		  .bound = true },
	};
	int ret;

	ret = write_secret(env, w);
	if (!ret)
		ret = idp_start(env, 'a', clients, 2, &w->idp);
	if (ret)
		return ret;
	snprintf(w->identity, sizeof(w->identity),
		 "  oidc:\n"
		 "    issuer: %s\n"
		 "    ca_file: " IDP_CA "\n",
		 w->idp.url);
	mesh_node_c_peer(env, ID_JOB, w->peer_c, sizeof(w->peer_c));
	w->cfg = (struct mesh_cfg){
	    .identity_extra = w->identity,
	    .workload_extra_a = "    oidc:\n"
				"      secret_file: " SECRET_FILE "\n",
	    .policy_b = policy_b,
	    .peers_extra_b = w->peer_c,
	};
	return mesh_setup(env, &w->cfg);
}

static bool cred_state(struct sl_env *env, char node, const char *kind, const char *name,
		       const char *state)
{
	struct mesh_cred c = {};

	return !mesh_cred(env, node, kind, name, &c) && !strcmp(c.state, state);
}

/* The job's first token on A (unless b_only) and the IdP's keys on B. */
static bool wait_creds(struct sl_env *env, bool b_only)
{
	long long deadline = now_ms() + READY_MS;

	while (now_ms() < deadline) {
		if ((b_only || cred_state(env, 'a', "token", ID_JOB, "valid")) &&
		    cred_state(env, 'b', "jwks", NULL, "valid"))
			return true;
		sleep_ms(100);
	}
	return false;
}

static json_t *idp_json(struct world *w, const char *path, const char *form,
			const struct http_opts *opts)
{
	struct http_response r = {};
	struct errmsg err = {};
	json_t *j = NULL;

	if (idp_request(&w->idp, path, form, opts, &r, &err)) {
		printf("IdP %s: %s\n", path, err.msg);
		return NULL;
	}
	if (r.status == 200)
		j = json_loads(r.body, 0, NULL);
	else
		printf("IdP %s: HTTP %ld\n", path, r.status);
	OPENSSL_cleanse(r.body, r.len);
	http_response_free(&r);
	return j;
}

/* A token for client_id, fetched over o (node C's certificate) as node C
 * would: NULL when there is none. */
static char *token_as_c(struct world *w, const char *client_id, struct http_opts *o)
{
	const char *tok;
	char *form = NULL, *out = NULL;
	json_t *j;

	o->username = http_escape(client_id);
	o->password = http_escape(w->secret);
	if (o->username && o->password &&
	    !http_form_add(&form, "grant_type", "client_credentials") &&
	    !http_form_add(&form, "resource", RESOURCE) && (j = idp_json(w, "/token", form, o))) {
		tok = json_string_value(json_object_get(j, "access_token"));
		out = tok && strchr(tok, '.') ? strdup(tok) : NULL;
		json_decref(j);
	}
	free((char *)o->username);
	free((char *)o->password);
	free(form);
	return out;
}

/* The IdP's signing kid, and job and notebook tokens fetched as node C
 * would. */
static int fetch_idp_facts(struct sl_env *env, struct world *w)
{
	char cert[PATH_MAX], key[PATH_MAX];
	struct http_opts o = { .connect_timeout_ms = IDP_HTTP_MS, .timeout_ms = IDP_HTTP_MS,
			       .max_body = MAX_TOKEN, .cert_file = cert, .key_file = key };
	json_t *j;

	mesh_pki_path(env, NODE_C "/" PKI_NODE_CERT, cert, sizeof(cert));
	mesh_pki_path(env, NODE_C "/" PKI_NODE_KEY, key, sizeof(key));
	if (mesh_issue(env, NODE_C, "1h"))
		return -EIO;
	j = idp_json(w, "/admin/stats", NULL, &o);
	snprintf(w->kid, sizeof(w->kid), "%s", json_string_value(json_object_get(j, "kid")) ?: "");
	json_decref(j);

	w->token_c = token_as_c(w, ID_JOB, &o);
	w->token_c_nb = token_as_c(w, ID_NOTEBOOK, &o);
	if (!w->token_c || !w->token_c_nb)
		return -EIO;
	snprintf(w->header, sizeof(w->header), "%.*s",
		 (int)(strchr(w->token_c, '.') - w->token_c), w->token_c);
	return 0;
}

static bool job_flow(struct sl_env *env, uint16_t port, struct client_res *res)
{
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = port,
	    .bytes = FLOW_BYTES,
	};

	memset(res, 0, sizeof(*res));
	return !client_run(env, &req, res);
}

static bool flow_ok(struct sl_env *env)
{
	struct client_res res;

	if (!job_flow(env, PORT_ECHO, &res))
		return false;
	if (res.err || res.recvd.bytes != FLOW_BYTES || res.recvd.mismatch_at != -1) {
		printf("flow: %s: %s, %llu bytes back\n", res.call[0] ? res.call : "-",
		       strerror(res.err), (unsigned long long)res.recvd.bytes);
		return false;
	}
	return true;
}

static void idp_token_allowed(struct sl_env *env, struct world *w)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	json_t *line, *line_a;
	struct client_res res;
	char *audit;

	if (!ASSERT_TRUE(flow_ok(env), "the job's flow to data"))
		return;
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, "\"status\"", LOG_WAIT_MS),
			 "node B audited the flow"))
		return;
	audit = mesh_audit(env, 'b', audit_b);
	line = json_loads(audit, JSON_DISABLE_EOF_CHECK, NULL);
	ASSERT_STREQ(json_string_value(json_object_get(line, "verdict")), "allow", "verdict");
	ASSERT_STREQ(json_string_value(json_object_get(line, "src_workload")), ID_JOB, "source");
	ASSERT_STREQ(json_string_value(json_object_get(line, "rule")), "etl-uses-data",
		     "rule (role etl from the groups claim)");
	ASSERT_STREQ(json_string_value(json_object_get(line, "kid")), w->kid, "the IdP's kid");
	ASSERT_GE(strlen(json_string_value(json_object_get(line, "jti")) ?: ""), 16, "jti");
	free(audit);

	/* Node A's outbound line names the same token. */
	if (ASSERT_TRUE(mesh_audit_wait(env, 'a', audit_a, "\"status\"", LOG_WAIT_MS),
			"node A audited the flow")) {
		audit = mesh_audit(env, 'a', audit_a);
		line_a = json_loads(audit, JSON_DISABLE_EOF_CHECK, NULL);
		ASSERT_STREQ(json_string_value(json_object_get(line_a, "kid")), w->kid,
			     "node A's line: the IdP's kid");
		ASSERT_STREQ(json_string_value(json_object_get(line_a, "jti")),
			     json_string_value(json_object_get(line, "jti")) ?: "",
			     "node A's line: the same jti");
		json_decref(line_a);
		free(audit);
	}
	json_decref(line);

	/* The job's groups do not make it an analyst. */
	audit_b = mesh_audit_size(env, 'b');
	if (ASSERT_TRUE(job_flow(env, PORT_SECRET, &res), "the job's flow to secret")) {
		ASSERT_EQ(res.recvd.bytes, 0, "bytes from secret");
		ASSERT_TRUE(
		    mesh_audit_wait(env, 'b', audit_b, "\"reason\":\"default-deny\"", LOG_WAIT_MS),
		    "node B refused it: default-deny");
	}
	ASSERT_EQ(server_nr_conns(w->secret_srv), 0, "connections that reached secret");
}

/* An OPEN for src to port on B with token, over node's certificate. */
static int open_as(struct sl_env *env, const char *node, const char *src, const char *token,
		   uint16_t port, struct tc_result *res)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], tunnel[64], dst[64];
	struct frame_open o = { .token = (char *)token };
	struct tc_req req = { .ns = env->ns_a, .addr = tunnel, .ca = ca, .cert = cert,
			      .key = key, .timeout_ms = TC_TIMEOUT_MS };
	uint8_t *frame = NULL;
	size_t len;
	int ret;

	snprintf(tunnel, sizeof(tunnel), "%s:%d", env->ip4_b, TUNNEL_PORT);
	snprintf(dst, sizeof(dst), "%s:%d", env->ip4_b, port);
	snprintf(cert, sizeof(cert), "%s/" MESH_PKI_DIR "/%s/" PKI_NODE_CERT, env->tmp_dir, node);
	snprintf(key, sizeof(key), "%s/" MESH_PKI_DIR "/%s/" PKI_NODE_KEY, env->tmp_dir, node);
	mesh_pki_path(env, PKI_CA_CERT, ca, sizeof(ca));
	snprintf(o.src, sizeof(o.src), "%s", src);
	if (parse_sockaddr(dst, &o.dst) || frame_traceparent_new(o.traceparent) ||
	    frame_open_encode(&o, &frame, &len))
		return -EINVAL;
	req.data = frame;
	req.len = len;
	ret = tunnel_client_run(&req, res);
	OPENSSL_cleanse(frame, len);
	free(frame);
	return ret;
}

static void token_bound_to_cert(struct sl_env *env, struct world *w)
{
	long audit_b;
	struct tc_result res = {};

	/* Over the certificate it was bound to, the token passes... */
	if (ASSERT_OK(open_as(env, NODE_C, ID_JOB, w->token_c, PORT_ECHO, &res),
		      "OPEN over node C's certificate")) {
		ASSERT_EQ(res.end, TC_VERDICT, "node C got a verdict");
		ASSERT_TRUE(res.verdict.allow, "node C's token allowed");
	}
	/* ...and node A may not present it. */
	audit_b = mesh_audit_size(env, 'b');
	if (!ASSERT_OK(open_as(env, NODE_A, ID_JOB, w->token_c, PORT_ECHO, &res),
		       "OPEN over node A's certificate"))
		return;
	ASSERT_EQ(res.end, TC_VERDICT, "node A got a verdict");
	ASSERT_FALSE(res.verdict.allow, "node C's token from node A allowed");
	ASSERT_STREQ(res.verdict.reason, "not-bound", "verdict reason");
	ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, "\"reason\":\"not-bound\"", LOG_WAIT_MS),
		    "node B audited not-bound");
}

/* node's OPEN for src to port with token: refused with reason, in the
 * VERDICT and in B's audit log. */
static void open_refused(struct sl_env *env, const char *node, const char *src,
			 const char *token, uint16_t port, const char *reason)
{
	long audit_b = mesh_audit_size(env, 'b');
	struct tc_result res = {};
	char want[96];

	if (!ASSERT_OK(open_as(env, node, src, token, port, &res), "OPEN") ||
	    !ASSERT_EQ(res.end, TC_VERDICT, "a verdict"))
		return;
	ASSERT_FALSE(res.verdict.allow, "VERDICT allow");
	ASSERT_STREQ(res.verdict.reason, reason, "verdict reason");
	snprintf(want, sizeof(want), "\"reason\":\"%s\"", reason);
	ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, want, LOG_WAIT_MS), "B audited the reason");
}

/* A token node A mints with its own key, as in a mesh without an IdP,
 * claiming the role etl that B's policy maps from the IdP's groups. */
static void node_token_refused(struct sl_env *env, struct world *w)
{
	char *const roles[] = { "etl" };
	struct forge_req fr = { .sub = ID_JOB, .roles = roles, .nr_roles = 1,
				.lifetime = NODE_TOKEN_LIFETIME_S };
	struct pki_paths paths;
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], *tok = NULL;
	struct pki_creds *creds = NULL;
	struct errmsg err = {};
	int conns = server_nr_conns(w->echo);

	mesh_pki_path(env, PKI_CA_CERT, ca, sizeof(ca));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_CERT, cert, sizeof(cert));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_KEY, key, sizeof(key));
	paths = (struct pki_paths){ .ca = ca, .cert = cert, .key = key };
	if (!ASSERT_OK(pki_load(&paths, TRUST_DOMAIN, NODE_A, &creds, &err), "node A's creds") ||
	    !ASSERT_OK(forge_token(creds, FORGE_VALID, &fr, &tok), "node A's own token"))
		goto out;
	open_refused(env, NODE_A, ID_JOB, tok, PORT_ECHO, "idp-token-required");
	ASSERT_EQ(server_nr_conns(w->echo), conns, "connections that reached data");
out:
	free(tok);
	pki_creds_free(creds);
}

/* Node C may vouch for the job only: the IdP's notebook token, bound to
 * C's certificate, is refused from C, though its groups would let the
 * notebook reach secret. */
static void idp_token_not_on_peer(struct sl_env *env, struct world *w)
{
	open_refused(env, NODE_C, ID_NOTEBOOK, w->token_c_nb, PORT_SECRET, "workload-not-on-peer");
	ASSERT_EQ(server_nr_conns(w->secret_srv), 0, "connections that reached secret");
}

/* Restarts B with identity_extra and waits for the IdP's keys there. */
static bool restart_b(struct sl_env *env, struct world *w, const char *identity_extra)
{
	struct mesh_cfg cfg = w->cfg;
	char creds[PATH_MAX];

	cfg.identity_extra = identity_extra;
	/* B's last credentials file would say its keys are valid already. */
	snprintf(creds, sizeof(creds), "%s/run-b/credentials.json", env->tmp_dir);
	unlink(creds);
	return ASSERT_EQ(mesh_stop_b(env), 0, "node B's exit status after SIGTERM") &&
	       ASSERT_OK(mesh_write_config_b(env, &cfg), "node B's config") &&
	       ASSERT_OK(mesh_start_b(env, NULL), "node B started again") &&
	       ASSERT_TRUE(wait_creds(env, true), "the IdP's keys on B");
}

/* bind_cert: false on B: a warning at start, a token bound to node C taken
 * from node A, which may vouch for the notebook, and still refused from
 * node C, which may not. */
static void unbound_tokens(struct sl_env *env, struct world *w)
{
	long log_b = mesh_b_log_size(env);
	char unbound[sizeof(w->identity) + 32];
	struct tc_result res = {};

	snprintf(unbound, sizeof(unbound), "%s    bind_cert: false\n", w->identity);
	if (!restart_b(env, w, unbound))
		return;
	ASSERT_TRUE(mesh_b_log_wait(env, log_b, UNBOUND_WARNING, LOG_WAIT_MS),
		    "node B warned that tokens are unbound");
	if (ASSERT_OK(open_as(env, NODE_A, ID_NOTEBOOK, w->token_c_nb, PORT_SECRET, &res),
		      "OPEN over node A's certificate") &&
	    ASSERT_EQ(res.end, TC_VERDICT, "a verdict"))
		ASSERT_TRUE(res.verdict.allow, "node C's token replayed from node A allowed");
	open_refused(env, NODE_C, ID_NOTEBOOK, w->token_c_nb, PORT_SECRET, "workload-not-on-peer");
	log_b = mesh_b_log_size(env);
	if (restart_b(env, w, w->identity))
		ASSERT_FALSE(mesh_b_log_wait(env, log_b, UNBOUND_WARNING, 0),
			     "node B warned with bind_cert: true");
}

/* The cached token carries flows to its last second, then node A refuses
 * them itself, audited with reason, and neither agent stops. */
static void cached_then_refused(struct sl_env *env, struct world *w, const char *reason)
{
	struct mesh_cred tok = {};
	int flows = 0, ok = 0;
	long long deadline;

	if (!ASSERT_OK(mesh_cred(env, 'a', "token", ID_JOB, &tok), "the job's token") ||
	    !ASSERT_STREQ(tok.state, "valid", "its state when the IdP failed"))
		return;
	while (time(NULL) < tok.not_after - 1) {
		flows++;
		ok += flow_ok(env);
		sleep_ms(500);
	}
	ASSERT_GE(flows, 1, "flows while the token lasted");
	ASSERT_EQ(ok, flows, "flows that worked on the cached token");

	deadline = now_ms() + (JOB_TTL_S + 5) * 1000;
	while ((time(NULL) < tok.not_after || cred_state(env, 'a', "token", ID_JOB, "valid")) &&
	       now_ms() < deadline)
		sleep_ms(100);
	ASSERT_FALSE(cred_state(env, 'a', "token", ID_JOB, "valid"),
		     "node A published the token invalid");
	mesh_refused_on_a(env, w->echo, PORT_ECHO, reason);
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");
	ASSERT_TRUE(mesh_b_running(env), "node B's agent still runs");
}

static void idp_down(struct sl_env *env, struct world *w)
{
	idp_stop(env, &w->idp);
	cached_then_refused(env, w, "idp-unreachable-token-expired");
}

static bool file_has(const char *path, const char *needle)
{
	char *text = read_file_from(path, 0);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

/* Checked without printing: the assertions' messages would show them. */
static void nothing_secret_written(struct sl_env *env, struct world *w)
{
	const char *names[] = { "node A's log", "node B's log", "node A's audit",
				"node B's audit" };
	char files[4][PATH_MAX], what[96];

	snprintf(files[0], PATH_MAX, "%s", env->agent_log);
	snprintf(files[1], PATH_MAX, "%s", env->agent_b_log);
	snprintf(files[2], PATH_MAX, "%s/run/audit.jsonl", env->tmp_dir);
	snprintf(files[3], PATH_MAX, "%s/run-b/audit.jsonl", env->tmp_dir);
	ASSERT_TRUE(file_has(files[0], "oidc:") && file_has(files[3], "\"kid\":\""),
		    "the logs and audit lines checked were written");
	for (int i = 0; i < 4; i++) {
		snprintf(what, sizeof(what), "client secret in %s", names[i]);
		ASSERT_FALSE(file_has(files[i], w->secret), what);
		snprintf(what, sizeof(what), "token in %s", names[i]);
		ASSERT_FALSE(file_has(files[i], w->header), what);
	}
}

static void token_free(char *tok)
{
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
}

void test_tunnel_oidc(struct sl_env *env)
{
	struct world w = {};
	char why[256] = "the IdP is installed";
	int ret;

	ret = idp_check(why, sizeof(why));
	if (ret == -ENOENT) {
		test__skip("%s", why);
		return;
	}
	if (!ASSERT_OK(ret, why) || !ASSERT_OK(start_mesh(env, &w), "IdP and two agents") ||
	    !ASSERT_TRUE(wait_creds(env, false), "job token on A, IdP keys on B") ||
	    !ASSERT_OK(fetch_idp_facts(env, &w), "the IdP's kid and a token for node C"))
		goto out;
	w.echo = server_start(env, SRV_ECHO, PORT_ECHO);
	w.secret_srv = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(w.echo, "echo server") || !ASSERT_OK_PTR(w.secret_srv, "secret server"))
		goto out;
	if (test__start_subtest("idp_token_allowed"))
		idp_token_allowed(env, &w);
	if (test__start_subtest("token_bound_to_cert"))
		token_bound_to_cert(env, &w);
	if (test__start_subtest("node_token_refused"))
		node_token_refused(env, &w);
	if (test__start_subtest("idp_token_not_on_peer"))
		idp_token_not_on_peer(env, &w);
	if (test__start_subtest("unbound_tokens"))
		unbound_tokens(env, &w);
	if (test__start_subtest("idp_down"))
		idp_down(env, &w);
	if (test__start_subtest("nothing_secret_written"))
		nothing_secret_written(env, &w);
out:
	idp_stop(env, &w.idp);
	token_free(w.token_c);
	token_free(w.token_c_nb);
}

/* The IdP, its mesh and the job's first token; false when it cannot be
 * had (skipped when node is missing). */
static bool oidc_world(struct sl_env *env, struct world *w)
{
	char why[256] = "the IdP is installed";
	int ret;

	ret = idp_check(why, sizeof(why));
	if (ret == -ENOENT) {
		test__skip("%s", why);
		return false;
	}
	if (!ASSERT_OK(ret, why) || !ASSERT_OK(start_mesh(env, w), "IdP and two agents") ||
	    !ASSERT_TRUE(wait_creds(env, false), "job token on A, IdP keys on B"))
		return false;
	w->echo = server_start(env, SRV_ECHO, PORT_ECHO);
	return ASSERT_OK_PTR(w->echo, "echo server");
}

/*
 * The IdP's address and port answered by a server of kind instead: one
 * that accepts and never answers (SRV_SINK), or one that sends garbage.
 * The agents' requests end within their timeout, node A logs why (what
 * names the failure: logged), the cached token serves until it expires,
 * and then node A fails closed with the reason of an unreachable IdP.
 */
static void idp_fails(struct sl_env *env, enum server_kind kind, const char *logged)
{
	struct world w = {};
	struct server *fake;
	const char *port;
	long from;
	int conns;

	if (!oidc_world(env, &w))
		goto out;
	port = strrchr(w.idp.url, ':');
	if (!ASSERT_OK_PTR(port, "the IdP's port"))
		goto out;
	from = agent_log_size(env);
	idp_stop(env, &w.idp);
	fake = server_start_at(env, env->ns_a, env->ip4_a, kind, atoi(port + 1));
	if (!ASSERT_OK_PTR(fake, "a server in the IdP's place"))
		goto out;
	cached_then_refused(env, &w, "idp-unreachable-token-expired");
	conns = server_nr_conns(fake);
	printf("%d connections to the server in the IdP's place\n", conns);
	ASSERT_GE(conns, 1, "connections to the server in the IdP's place");
	/* A request without a timeout would hold its connection forever. */
	ASSERT_OK(server_wait_done(fake, conns, OIDC_TIMEOUT_MS + OIDC_TIMEOUT_MARGIN_MS),
		  "the agents closed every connection to it within their timeout");
	ASSERT_TRUE(agent_log_wait(env, from, logged, LOG_WAIT_MS), "node A logged the failure");
out:
	idp_stop(env, &w.idp);
}

void test_idp_hangs(struct sl_env *env)
{
	idp_fails(env, SRV_SINK, "Timeout was reached");
}

void test_idp_garbage(struct sl_env *env)
{
	idp_fails(env, SRV_GARBAGE, "warn  oidc: ");
}
