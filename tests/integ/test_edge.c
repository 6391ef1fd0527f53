// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Nginx edge (issue 12), end to end: Debian's nginx in node A runs the
 * config node A's agent rendered from its policy's edge: section, inside
 * the enrolled workload cgroup "edge"; it asks the agent about every
 * request (auth_request over the agent's UNIX socket) and sends what the
 * agent allows through the mTLS tunnel to the internal API on node B,
 * which answers with the identity headers it got. Tokens come from the
 * real IdP of the identity tests (tests/oidc/idp.mjs) in node A:
 *
 *   - a reader's token (groups readers -> role readers) may GET under
 *     /api/: 200, and the API gets a caller assertion that verifies with
 *     the mesh CA, names the caller and matches a key of the agent's
 *     /v1/jwks.json, and no Authorization header;
 *   - DELETE /api/x and GET /admin/x, however /admin is spelled: 403
 *     naming the deciding rule; no token: 401 with WWW-Authenticate:
 *     Bearer and no error; every forged token (the tunnel's attack table
 *     and the IdP's token bent or expired, also when cached): 401 with
 *     error="invalid_token"; a host the edge does not serve: 404; a body
 *     over the limit: 413 before the agent is asked;
 *   - identity headers a client sends itself never reach the API;
 *   - node A audits each decision (direction edge), node B names the edge
 *     workload as the source of the flow, and for each request on it the
 *     caller and the jti of the assertion it carried (direction request);
 *   - an opaque token passes by introspection, and is refused once revoked
 *     at the IdP and past edge.cache.ttl;
 *   - a policy whose rendered config nginx refuses, or a render_dir others
 *     may write, rejects the generation whole and the live edge keeps
 *     answering; a new generation drops cached roles; a good change takes
 *     effect, SIGUSR2 rolls it back; the agent hung or down: 503; back:
 *     200; nginx's workers stay in the edge cgroup across reloads.
 *
 * Without node or nginx the test skips.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include "agent_proc.h"
#include "assertion.h"
#include "edge_env.h"
#include "env.h"
#include "forge.h"
#include "harness.h"
#include "idp.h"
#include "jwks.h"
#include "jwt.h"
#include "mesh.h"
#include "pki.h"
#include "workload_proc.h"

#define SECRET_FILE "oidc-client.secret"
#define INTROSPECT_FILE "edge-introspect.secret"
/* The IdP's built-in introspection client (tests/oidc/idp.mjs). */
#define INTROSPECT_ID "edge-introspect"
#define INTROSPECT_SECRET "edge-introspect-secret"
#define SECRET_BYTES 16
#define READER_ID "edge-reader"
#define SHORT_ID "edge-short"
#define READER_GROUP "readers"
/* The IdP's built-in client whose opaque tokens introspect with a sub
 * (a client credentials token has none of its own) and groups [ops,
 * readers]; only a token's own client may revoke it. */
#define USER_ID "edge-user"
#define USER_SECRET "edge-user-secret"
#define USER_SUB "alice@acme.example"
#define SHORT_TTL_S 4
#define SKEW_S 1
/* Longer than SHORT_TTL_S + SKEW_S, so that a cached token must still end
 * at its exp, with room for a slow machine's reload and curl starts. */
#define CACHE_TTL_S 12
#define READY_MS 15000
#define CHANGE_MS 10000
#define ASSERTION_SKEW_S 5
#define NODE_TOKEN_LIFETIME_S 300
#define SPOOF "spoofed-by-the-client"
#define MISSING_CERT "edge-missing.crt"
#define MISSING_KEY "edge-missing.key"
/* The rendered authz timeouts (1 s connect, 2 s read) and a margin for
 * curl's start on a slow machine (the VM tests). */
#define HUNG_MAX_MS 5000

struct world {
	struct idp idp;
	struct edge_nginx nginx;
	pid_t api;
	char secret[2 * SECRET_BYTES + 1];
	char *token; /* a reader's JWT; never printed */
	char identity[512];
	char config_a[2048];
	char workloads[256];
	char policy_a[4096];
	char policy_b[1024];
	struct mesh_cfg cfg;
	X509_STORE *ca;
};

enum policy_kind {
	POL_BASE,
	POL_DELETE_OK,  /* readers may DELETE too */
	POL_BAD_TLS,    /* edge.tls names files that do not exist */
	POL_NO_READERS, /* no group maps to the role readers */
};

static int write_secret(struct sl_env *env, struct world *w)
{
	unsigned char r[SECRET_BYTES];
	char path[PATH_MAX];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(w->secret + 2 * i, "%02x", r[i]);
	if (env_write_file(env, SECRET_FILE, "%s", w->secret) ||
	    env_write_file(env, INTROSPECT_FILE, "%s", INTROSPECT_SECRET))
		return -EIO;
	env_path(env, SECRET_FILE, path, sizeof(path));
	if (chmod(path, 0600))
		return -errno;
	env_path(env, INTROSPECT_FILE, path, sizeof(path));
	return chmod(path, 0600) ? -errno : 0;
}

/*
 * Node A's policy: readers may GET under /api/, DELETE is their own rule
 * (denied but for POL_DELETE_OK), nobody may touch /admin/, and the edge
 * workload may reach the API (a workload rule: more specific than the
 * any-source deny, so /admin's rule does not cut the edge's connection).
 */
static void policy_a_text(const struct sl_env *env, enum policy_kind kind, char *buf, size_t len)
{
	char tls[2 * PATH_MAX + 64] = "";

	if (kind == POL_BAD_TLS)
		snprintf(tls, sizeof(tls),
			 "  tls: {cert: %s/" MISSING_CERT ", key: %s/" MISSING_KEY "}\n",
			 env->tmp_dir, env->tmp_dir);
	snprintf(buf, len,
		 "version: 1\n"
		 "default: deny\n"
		 "roles:\n"
		 "  - name: readers\n"
		 "    claims: {groups: %s}\n"
		 "services:\n"
		 "  - name: " EDGE_SVC "\n"
		 "    addresses: [%s/32]\n"
		 "    ports: [%d]\n"
		 "    protocol: http\n"
		 "rules:\n"
		 "  - name: edge-reaches-api\n"
		 "    from: {workload: " ID_EDGE "}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    action: allow\n"
		 "  - name: readers-get-api\n"
		 "    from: {role: readers}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    methods: [GET, HEAD]\n"
		 "    paths: [/api/**]\n"
		 "    action: allow\n"
		 "  - name: readers-delete\n"
		 "    from: {role: readers}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    methods: [DELETE]\n"
		 "    paths: [/api/**]\n"
		 "    action: %s\n"
		 "  - name: admin-closed\n"
		 "    from: {any: true}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    paths: [/admin/**]\n"
		 "    action: deny\n"
		 "edge:\n"
		 "  hosts: [" EDGE_HOST "]\n"
		 "  port: %d\n"
		 "%s"
		 "  routes:\n"
		 "    - prefix: /api/\n"
		 "      service: " EDGE_SVC "\n"
		 "    - prefix: /admin/\n"
		 "      service: " EDGE_SVC "\n",
		 kind == POL_NO_READERS ? "nobody-" READER_GROUP : READER_GROUP, env->ip4_b,
		 EDGE_API_PORT, kind == POL_DELETE_OK ? "allow" : "deny", EDGE_PORT,
		 tls);
}

static int start_world(struct sl_env *env, struct world *w)
{
	const struct idp_client clients[] = {
		{ .client_id = ID_JOB, .secret = w->secret, .bound = true },
		{ .client_id = ID_NOTEBOOK, .secret = w->secret, .bound = true },
		{ .client_id = ID_EDGE, .secret = w->secret, .bound = true },
		{ .client_id = READER_ID, .secret = w->secret, .groups = READER_GROUP },
		{ .client_id = SHORT_ID, .secret = w->secret, .groups = READER_GROUP,
		  .token_ttl = SHORT_TTL_S },
	};
	char ca[PATH_MAX];
	int ret;

	ret = write_secret(env, w);
	if (!ret)
		ret = env_cgroup_add(env, EDGE_CGROUP);
	if (!ret)
		ret = edge_prepare(env, &w->nginx);
	if (!ret)
		ret = idp_start(env, 'a', clients, sizeof(clients) / sizeof(clients[0]), &w->idp);
	if (ret)
		return ret;
	snprintf(w->identity, sizeof(w->identity),
		 "  oidc:\n"
		 "    issuer: %s\n"
		 "    ca_file: " IDP_CA "\n",
		 w->idp.url);
	edge_config_yaml(env,
			 "  cache:\n"
			 "    ttl: 6s\n"
			 "  introspection:\n"
			 "    client_id: " INTROSPECT_ID "\n"
			 "    secret_file: " INTROSPECT_FILE "\n",
			 w->config_a, sizeof(w->config_a));
	snprintf(w->workloads, sizeof(w->workloads),
		 "  - cgroup: " EDGE_CGROUP "\n"
		 "    id: " ID_EDGE "\n"
		 "    oidc:\n"
		 "      secret_file: " SECRET_FILE "\n");
	policy_a_text(env, POL_BASE, w->policy_a, sizeof(w->policy_a));
	snprintf(w->policy_b, sizeof(w->policy_b),
		 "version: 1\n"
		 "default: deny\n"
		 "roles:\n"
		 "  - name: readers\n"
		 "services:\n"
		 "  - name: " EDGE_SVC "\n"
		 "    addresses: [0.0.0.0/0]\n"
		 "    ports: [%d]\n"
		 "    protocol: http\n"
		 "rules:\n"
		 "  - name: edge-reaches-api\n"
		 "    from: {workload: " ID_EDGE "}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    action: allow\n"
		 "  - name: readers-through-edge\n"
		 "    from: {role: readers}\n"
		 "    to: [" EDGE_SVC "]\n"
		 "    via: edge\n"
		 "    action: allow\n",
		 EDGE_API_PORT);
	w->cfg = (struct mesh_cfg){
	    .clock_skew = "1s",
	    .identity_extra = w->identity,
	    .workload_extra_a = "    oidc:\n"
				"      secret_file: " SECRET_FILE "\n",
	    .policy_b = w->policy_b,
	    .extra_a = w->config_a,
	    .extra_workloads_a = w->workloads,
	    .policy_a = w->policy_a,
	    .vouch_extra_b = ID_EDGE,
	    .extra_b = "http:\n"
		       "  edge_workloads: [" ID_EDGE "]\n",
	};
	ret = mesh_setup(env, &w->cfg);
	if (ret)
		return ret;
	w->api = edge_api_start(env);
	if (w->api <= 0)
		return -EIO;
	mesh_pki_path(env, PKI_CA_CERT, ca, sizeof(ca));
	w->ca = X509_STORE_new();
	if (!w->ca || X509_STORE_load_file(w->ca, ca) != 1)
		return -EIO;
	return edge_nginx_start(env, &w->nginx);
}

static bool cred_valid(struct sl_env *env, char node, const char *kind, const char *name)
{
	struct mesh_cred c = {};

	return !mesh_cred(env, node, kind, name, &c) && !strcmp(c.state, "valid");
}

/* The edge workload's token on A, the IdP's keys on both. */
static bool wait_creds(struct sl_env *env)
{
	long long deadline = now_ms() + READY_MS;

	while (now_ms() < deadline) {
		if (cred_valid(env, 'a', "token", ID_EDGE) && cred_valid(env, 'a', "jwks", NULL) &&
		    cred_valid(env, 'b', "jwks", NULL))
			return true;
		sleep_ms(100);
	}
	return false;
}

static int get_token_as(struct world *w, const char *client_id, const char *secret,
			const char *resource, char **out)
{
	struct errmsg err = {};
	int ret = idp_token(&w->idp, client_id, secret, resource, out, &err);

	if (ret)
		printf("token for %s: %s\n", client_id, err.msg);
	return ret;
}

/* method path with token (NULL: none) and more headers. */
static int ask(struct sl_env *env, const char *method, const char *path, const char *token,
	       const char *headers, struct edge_http_resp *r)
{
	struct edge_http_req req = {
	    .method = method, .path = path, .token = token, .headers = headers };

	return edge_http(env, &req, r);
}

/* The status of method path with token, -1 when curl failed. */
static long status_of(struct sl_env *env, const char *method, const char *path,
		      const char *token)
{
	struct edge_http_resp r;
	long status = -1;

	if (!ask(env, method, path, token, NULL, &r))
		status = r.status;
	edge_http_resp_free(&r);
	return status;
}

/* Asks until the answer is want, for up to ms; the last status seen. */
static long wait_status(struct sl_env *env, const char *method, const char *path,
			const char *token, long want, int ms)
{
	long long deadline = now_ms() + ms;
	long status;

	do {
		status = status_of(env, method, path, token);
		if (status == want)
			break;
		sleep_ms(200);
	} while (now_ms() < deadline);
	return status;
}

static void nginx_in_edge_cgroup(struct sl_env *env, struct world *w)
{
	ASSERT_EQ(edge_nginx_workers_in_cgroup(env, &w->nginx), EDGE_WORKERS,
		  "nginx's master and its workers in the edge cgroup");
}

/* The assertion the API got: verified with the mesh CA, naming the reader,
 * its kid a key of the agent's JWKS. */
static void check_assertion(struct sl_env *env, struct world *w, const char *assertion)
{
	struct edge_http_req req = { .url = "http://" EDGE_AGENT_LISTEN "/v1/jwks.json" };
	struct edge_http_resp r = {};
	struct jwt_result res = {};
	struct jwks *set = NULL;
	struct errmsg err = {};
	EVP_PKEY *key = NULL;
	json_t *roles;
	bool reader = false;
	size_t i;
	json_t *v;

	if (!ASSERT_EQ(assertion_verify(assertion, w->ca, TRUST_DOMAIN, EDGE_SVC_ID, 0,
					ASSERTION_SKEW_S, &res),
		       JWT_OK, "the assertion verifies with the mesh CA")) {
		printf("assertion: %s\n", res.err.msg);
		goto out;
	}
	ASSERT_STREQ(res.sub, READER_ID, "the assertion's sub: the caller");
	roles = json_object_get(res.claims, "roles");
	json_array_foreach(roles, i, v)
		reader |= !strcmp(json_string_value(v) ?: "", "readers");
	ASSERT_TRUE(reader, "the assertion's roles hold readers");
	ASSERT_TRUE(json_string_value(json_object_get(res.claims, "orig_jti")) != NULL,
		    "the assertion names the IdP token's jti");
	if (!ASSERT_OK(edge_http(env, &req, &r), "GET /v1/jwks.json on the agent's listener") ||
	    !ASSERT_EQ(r.status, 200, "/v1/jwks.json status"))
		goto out;
	if (!ASSERT_OK(jwks_parse(r.body, strlen(r.body), &set, &err), "the JWKS parses")) {
		printf("jwks: %s\n", err.msg);
		goto out;
	}
	ASSERT_OK(jwks_get_key(set, res.kid, &key), "the JWKS holds the assertion's kid");
out:
	EVP_PKEY_free(key);
	jwks_free(set);
	edge_http_resp_free(&r);
	jwt_result_free(&res);
}

/* In the edge workload: GET /v1/ca.pem from 127.0.0.1:*port; writes 0
 * when the CA came back, 100 + errno when connect() failed, 2 for another
 * answer. */
static void ca_child(const struct sl_env *env, const void *arg, int report)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(*(const int *)arg),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET /v1/ca.pem HTTP/1.0\r\n\r\n";
	int fd = socket(AF_INET, SOCK_STREAM, 0), ret = 2;
	char buf[8192];
	size_t got = 0;
	ssize_t n;

	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		ret = 100 + errno;
	} else if (write(fd, req, sizeof(req) - 1) == sizeof(req) - 1) {
		while (got < sizeof(buf) - 1 &&
		       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
			got += n;
		buf[got] = '\0';
		ret = strstr(buf, " 200 ") && strstr(buf, "BEGIN CERTIFICATE") ? 0 : 2;
	}
	if (write(report, &ret, sizeof(ret)) != sizeof(ret))
		_exit(1);
}

/* ca_child's report from the edge workload (managed, default deny) in
 * node A; -1 when there was none. */
static int ca_from_workload(struct sl_env *env, int port)
{
	int fd, ret = -1;
	pid_t pid;

	if (spawn_in(env, env->ns_a, EDGE_CGROUP, ca_child, &port, &pid, &fd))
		return -1;
	if (read(fd, &ret, sizeof(ret)) != sizeof(ret))
		ret = -1;
	child_reap(env, pid, fd);
	return ret;
}

/* A service verifies assertions with its agent's CA and JWKS: it reaches
 * listen.http under default deny, and no other listener of the agent. */
static void keys_reachable_from_workloads(struct sl_env *env)
{
	ASSERT_EQ(ca_from_workload(env, EDGE_AGENT_HTTP_PORT), 0,
		  "a workload GETs /v1/ca.pem from listen.http under default deny");
	ASSERT_EQ(ca_from_workload(env, EDGE_AGENT_LISTEN_PORT), 100 + EPERM,
		  "the agent's edge.listen stays refused to it (EPERM)");
}

/* The agent's /v1/ca.pem is the mesh CA's certificate. */
static void ca_published(struct sl_env *env)
{
	struct edge_http_req req = { .url = "http://" EDGE_AGENT_LISTEN "/v1/ca.pem" };
	struct edge_http_resp r;
	char path[PATH_MAX], *ca;

	if (!ASSERT_OK(edge_http(env, &req, &r), "GET /v1/ca.pem on the agent's listener"))
		return;
	mesh_pki_path(env, PKI_CA_CERT, path, sizeof(path));
	ca = read_file_from(path, 0);
	ASSERT_EQ(r.status, 200, "/v1/ca.pem status");
	ASSERT_TRUE(ca && strstr(r.body, ca), "/v1/ca.pem holds the mesh CA");
	free(ca);
	edge_http_resp_free(&r);
}

static void reader_allowed(struct sl_env *env, struct world *w)
{
	struct edge_http_resp r;
	char v[ASSERTION_MAX_LEN];

	if (!ASSERT_OK(ask(env, "GET", "/api/x", w->token, NULL, &r), "GET /api/x"))
		return;
	if (!ASSERT_EQ(r.status, 200, "GET /api/x with a reader's token")) {
		printf("%s\n", r.body);
		goto out;
	}
	ASSERT_TRUE(edge_api_field(r.body, "uri", v, sizeof(v)) && !strcmp(v, "/api/x"),
		    "the API got /api/x");
	ASSERT_TRUE(edge_api_field(r.body, "caller", v, sizeof(v)) && !strcmp(v, READER_ID),
		    "the API's X-Sluice-Caller: the reader");
	ASSERT_TRUE(edge_api_field(r.body, "roles", v, sizeof(v)) && strstr(v, "readers"),
		    "the API's X-Sluice-Roles hold readers");
	ASSERT_TRUE(edge_api_field(r.body, "authorization", v, sizeof(v)) && !v[0],
		    "the API got no Authorization header");
	if (ASSERT_TRUE(edge_api_field(r.body, "assertion", v, sizeof(v)) && v[0],
			"the API got an assertion"))
		check_assertion(env, w, v);
	ca_published(env);
out:
	edge_http_resp_free(&r);
}

/* method path with token: status, and body holding want (not NULL). */
static void refused(struct sl_env *env, const char *method, const char *path, const char *token,
		    long status, const char *want, const char *what)
{
	struct edge_http_resp r;
	char name[160];

	snprintf(name, sizeof(name), "%s: %s %s", what, method, path);
	if (!ASSERT_OK(ask(env, method, path, token, NULL, &r), name))
		return;
	snprintf(name, sizeof(name), "%s: status", what);
	ASSERT_EQ(r.status, status, name);
	snprintf(name, sizeof(name), "%s: the body names why", what);
	ASSERT_HAS_SUBSTR(r.body, want, name);
	snprintf(name, sizeof(name), "%s: the API's answer", what);
	ASSERT_NO_SUBSTR(r.body, "uri=", name);
	edge_http_resp_free(&r);
}

/* A host the edge does not serve: its default server answers 404, and
 * neither the agent nor the API is asked. */
static void other_host(struct sl_env *env, struct world *w)
{
	struct edge_http_req req = {
	    .path = "/api/x", .host = "other.example", .token = w->token };
	long from = mesh_audit_size(env, 'a');
	struct edge_http_resp r;

	if (!ASSERT_OK(edge_http(env, &req, &r), "GET /api/x for another host"))
		return;
	ASSERT_EQ(r.status, 404, "another host: status");
	ASSERT_NO_SUBSTR(r.body, "uri=", "another host: the API's answer");
	edge_http_resp_free(&r);
	sleep_ms(200);
	ASSERT_EQ(mesh_audit_size(env, 'a'), from, "another host: node A's audit grew");
}

/* Spellings of /admin that nginx and the agent must read alike: none of
 * them reaches the API (nginx may route them elsewhere or refuse them
 * itself; the agent's normalisation decides the rest). */
static void path_tricks(struct sl_env *env, struct world *w)
{
	static const char *const paths[] = {
		"/api/%2e%2e/admin/x", "/api/..%2fadmin/x", "/api/%2E%2E%2Fadmin/x",
		"//admin/x",	       "/api//../admin/x",  "/api/x/../../admin/x",
		"/api/./../admin/x",
	};
	struct edge_http_resp r;
	char name[160];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(name, sizeof(name), "GET %s", paths[i]);
		if (!ASSERT_OK(ask(env, "GET", paths[i], w->token, NULL, &r), name))
			continue;
		if (test__verbose())
			printf("GET %s: %ld\n", paths[i], r.status);
		snprintf(name, sizeof(name), "GET %s: status", paths[i]);
		ASSERT_NEQ(r.status, 200, name);
		snprintf(name, sizeof(name), "GET %s: the API's answer", paths[i]);
		ASSERT_NO_SUBSTR(r.body, "uri=", name);
		edge_http_resp_free(&r);
	}
	/* Encoded twice, it is the segment "%2e%2e" to the API (which decodes
	 * once): a path under /api/, allowed as one. */
	ASSERT_EQ(status_of(env, "GET", "/api/%252e%252e/admin/x", w->token), 200,
		  "GET /api/%252e%252e/admin/x");
}

static void forbidden(struct sl_env *env, struct world *w)
{
	struct edge_http_resp r;
	char v[512];

	refused(env, "DELETE", "/api/x", w->token, 403, "readers-delete", "DELETE by a reader");
	refused(env, "GET", "/admin/x", w->token, 403, "admin-closed", "GET /admin by a reader");
	/* Normalised before it is decided: /api/../admin is /admin. */
	refused(env, "GET", "/api/../admin/x", w->token, 403, "admin-closed", "dot segments");
	refused(env, "GET", "/api/x", NULL, 401, "no-token", "no token");
	other_host(env, w);
	path_tricks(env, w);
	if (!ASSERT_OK(ask(env, "GET", "/api/x", NULL, NULL, &r), "GET /api/x without a token"))
		return;
	if (ASSERT_TRUE(edge_http_header(&r, "WWW-Authenticate", v, sizeof(v)),
			"WWW-Authenticate without a token")) {
		ASSERT_TRUE(!strncmp(v, "Bearer", 6), "WWW-Authenticate: Bearer");
		ASSERT_FALSE(strstr(v, "error="), "an error= without a token (RFC 6750 3.1)");
	}
	edge_http_resp_free(&r);
}

/* A token the edge must refuse as invalid_token: 401, WWW-Authenticate
 * with error="invalid_token", nothing of the token in the body. */
static void invalid_token(struct sl_env *env, const char *token, const char *what)
{
	struct edge_http_resp r;
	char v[512], name[160];
	size_t n = strcspn(token, ".");

	snprintf(name, sizeof(name), "%s: GET /api/x", what);
	if (!ASSERT_OK(ask(env, "GET", "/api/x", token, NULL, &r), name))
		return;
	snprintf(name, sizeof(name), "%s: status", what);
	ASSERT_EQ(r.status, 401, name);
	snprintf(name, sizeof(name), "%s: WWW-Authenticate error=\"invalid_token\"", what);
	ASSERT_TRUE(edge_http_header(&r, "WWW-Authenticate", v, sizeof(v)) &&
			strstr(v, "error=\"invalid_token\""),
		    name);
	snprintf(name, sizeof(name), "%s: the body echoes no token", what);
	ASSERT_FALSE(n >= 8 && memmem(r.body, strlen(r.body), token, n), name);
	edge_http_resp_free(&r);
}

/* The signature's middle character changed: same length, same alphabet. */
static char *flip_signature(const char *token)
{
	char *t = strdup(token), *sig = t ? strrchr(t, '.') : NULL;
	size_t n;

	if (!sig || (n = strlen(sig + 1)) < 4)
		return t;
	sig[1 + n / 2] = sig[1 + n / 2] == 'A' ? 'B' : 'A';
	return t;
}

/* {"alg":"none"} over the IdP token's claims, no signature. */
static char *alg_none(const char *token)
{
	const char *claims = strchr(token, '.'), *end;
	char *t;

	if (!claims || !(end = strchr(claims + 1, '.')))
		return NULL;
	/* base64url of {"alg":"none","typ":"at+jwt"} */
	if (asprintf(&t, "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0%.*s.", (int)(end - claims),
		     claims) < 0)
		return NULL;
	return t;
}

static const char *str_of(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key)) ?: "";
}

/* The first edge line of node A's audit after from; *count: how many. */
static json_t *edge_line(struct sl_env *env, long from, int *count)
{
	char *audit = mesh_audit(env, 'a', from), *line, *save = NULL;
	json_t *first = NULL, *j;

	*count = 0;
	for (line = audit ? strtok_r(audit, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		j = json_loads(line, 0, NULL);
		if (j && !strcmp(str_of(j, "direction"), "edge")) {
			(*count)++;
			if (!first) {
				first = j;
				continue;
			}
		}
		json_decref(j);
	}
	free(audit);
	return first;
}

/* The line of text that holds needle, parsed; NULL when none does. */
static json_t *line_with(const char *text, const char *needle)
{
	const char *at = text ? strstr(text, needle) : NULL, *start;

	if (!at)
		return NULL;
	start = memrchr(text, '\n', at - text);
	return json_loads(start ? start + 1 : text, JSON_DISABLE_EOF_CHECK, NULL);
}

/* A refusal is a decision too: one deny line on A, with the reason. */
static void refusal_audited(struct sl_env *env, const char *token, const char *reason)
{
	long from = mesh_audit_size(env, 'a');
	json_t *line;
	int n;

	invalid_token(env, token, reason);
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'a', from, "\"direction\":\"edge\"", LOG_WAIT_MS),
			 "node A audited the refusal"))
		return;
	line = edge_line(env, from, &n);
	ASSERT_EQ(n, 1, "edge lines for one refusal");
	ASSERT_STREQ(str_of(line, "verdict"), "deny", "refusal: verdict");
	ASSERT_STREQ(str_of(line, "reason"), reason, "refusal: reason");
	ASSERT_TRUE(json_object_get(line, "caller") == NULL, "refusal: no caller");
	json_decref(line);
}

static void idp_token_bent(struct sl_env *env, struct world *w)
{
	char *t = flip_signature(w->token);

	if (ASSERT_OK_PTR(t, "bent signature"))
		refusal_audited(env, t, "bad-signature");
	free(t);
	t = alg_none(w->token);
	if (ASSERT_OK_PTR(t, "alg none"))
		invalid_token(env, t, "alg none");
	free(t);
	t = strndup(w->token, strlen(w->token) / 2);
	if (ASSERT_OK_PTR(t, "truncated"))
		invalid_token(env, t, "truncated");
	free(t);
	invalid_token(env, "e30.e30.e30", "garbage JWS");
	invalid_token(env, "not-a-token-at-all", "garbage opaque");
}

/* The tunnel's attack table, tokens signed by node A's key: none of them
 * is the IdP's. */
static void forge_table(struct sl_env *env)
{
	static const struct {
		enum forge_kind kind;
		const char *what;
	} table[] = {
		{ FORGE_VALID, "node-signed (a key not in the IdP's JWKS)" },
		{ FORGE_ALG_NONE, "forge: alg none" },
		{ FORGE_HS256_PUBKEY, "forge: HS256 keyed with the public key" },
		{ FORGE_WRONG_ISS, "forge: wrong iss" },
		{ FORGE_WRONG_AUD, "forge: wrong aud" },
		{ FORGE_EXPIRED, "forge: expired" },
		{ FORGE_NOT_YET_VALID, "forge: not yet valid" },
		{ FORGE_UNKNOWN_KID, "forge: unknown kid" },
		{ FORGE_TAMPERED, "forge: tampered" },
	};
	char *const roles[] = { "readers" };
	struct forge_req fr = { .sub = READER_ID, .roles = roles, .nr_roles = 1,
				.lifetime = NODE_TOKEN_LIFETIME_S, .tamper_sub = "admin" };
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	struct pki_creds *creds = NULL;
	struct pki_paths paths = { .ca = ca, .cert = cert, .key = key };
	struct errmsg err = {};

	mesh_pki_path(env, PKI_CA_CERT, ca, sizeof(ca));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_CERT, cert, sizeof(cert));
	mesh_pki_path(env, NODE_A "/" PKI_NODE_KEY, key, sizeof(key));
	if (!ASSERT_OK(pki_load(&paths, TRUST_DOMAIN, NODE_A, &creds, &err), "node A's creds"))
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *tok = NULL;

		if (ASSERT_OK(forge_token(creds, table[i].kind, &fr, &tok), table[i].what))
			invalid_token(env, tok, table[i].what);
		free(tok);
	}
	pki_creds_free(creds);
}

/* An IdP token of a reader, expired past the skew. */
/* An IdP token of a reader, allowed (and cached), then refused once past
 * its exp and the skew, though its cache entry would last longer. */
static void expired_token(struct sl_env *env, struct world *w)
{
	long long fetched = now_ms(), wait;
	char *tok = NULL;

	if (!ASSERT_OK(get_token_as(w, SHORT_ID, w->secret, NULL, &tok), "a 4 s token"))
		return;
	ASSERT_EQ(status_of(env, "GET", "/api/x", tok), 200, "the 4 s token while it lasts");
	wait = fetched + (SHORT_TTL_S + SKEW_S + 1) * 1000 - now_ms();
	if (wait > 0)
		sleep_ms(wait);
	ASSERT_GE((CACHE_TTL_S * 1000) - (now_ms() - fetched), 1, "within the cache's ttl");
	invalid_token(env, tok, "expired IdP token");
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
}

static void forged_tokens(struct sl_env *env, struct world *w)
{
	idp_token_bent(env, w);
	forge_table(env);
	expired_token(env, w);
}

static void no_spoofing(struct sl_env *env, struct world *w)
{
	static const char headers[] = "X-Sluice-Assertion: " SPOOF "-assertion\n"
				      "X-Sluice-Caller: " SPOOF "-caller\n"
				      "X-Sluice-Roles: admins-" SPOOF "\n"
				      "X-Sluice-Identity: " SPOOF "-identity\n"
				      "X_Sluice_Assertion: " SPOOF "-underscore\n"
				      "X_Sluice_Caller: " SPOOF "-underscore-caller\n";
	struct edge_http_resp r;
	char v[ASSERTION_MAX_LEN];

	if (!ASSERT_OK(ask(env, "GET", "/api/x", w->token, headers, &r), "GET with spoofed headers"))
		return;
	if (ASSERT_EQ(r.status, 200, "status with spoofed headers")) {
		ASSERT_NO_SUBSTR(r.body, SPOOF, "a spoofed value reached the API");
		ASSERT_TRUE(edge_api_field(r.body, "caller", v, sizeof(v)) && !strcmp(v, READER_ID),
			    "the API's caller: the agent's");
		if (ASSERT_TRUE(edge_api_field(r.body, "assertion", v, sizeof(v)) && v[0],
				"the API got an assertion"))
			check_assertion(env, w, v);
	}
	edge_http_resp_free(&r);
}

/* One request, one audit line on A with what it decided. */
static void audited_on_a(struct sl_env *env, struct world *w, const char *method, long status,
			 const char *verdict, const char *rule)
{
	long from = mesh_audit_size(env, 'a');
	json_t *line;
	int n;

	ASSERT_EQ(status_of(env, method, "/api/x", w->token), status, method);
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'a', from, "\"direction\":\"edge\"", LOG_WAIT_MS),
			 "node A audited the decision"))
		return;
	sleep_ms(200); /* a second line would be written by now */
	line = edge_line(env, from, &n);
	ASSERT_EQ(n, 1, "edge lines for one request");
	ASSERT_STREQ(str_of(line, "verdict"), verdict, "audit: verdict");
	ASSERT_STREQ(str_of(line, "caller"), READER_ID, "audit: caller");
	ASSERT_STREQ(str_of(line, "client"), "127.0.0.1", "audit: client");
	ASSERT_STREQ(str_of(line, "host"), EDGE_HOST, "audit: host");
	ASSERT_STREQ(str_of(line, "method"), method, "audit: method");
	ASSERT_STREQ(str_of(line, "path"), "/api/x", "audit: path");
	ASSERT_STREQ(str_of(line, "rule"), rule, "audit: rule");
	ASSERT_GE(json_integer_value(json_object_get(line, "generation")), 1, "audit: generation");
	ASSERT_TRUE(json_object_get(line, "token") == NULL, "audit: no token member");
	json_decref(line);
}

/* The jti of the assertion the API got for one GET /api/x; 0 or -1. */
static int assertion_jti(struct sl_env *env, struct world *w, char *jti, size_t len)
{
	struct jwt_result res = {};
	struct edge_http_resp r;
	char v[ASSERTION_MAX_LEN];
	int ret = -1;

	if (ask(env, "GET", "/api/x", w->token, NULL, &r))
		return -1;
	if (r.status == 200 && edge_api_field(r.body, "assertion", v, sizeof(v)) &&
	    assertion_verify(v, w->ca, TRUST_DOMAIN, EDGE_SVC_ID, 0, ASSERTION_SKEW_S, &res) ==
		    JWT_OK) {
		snprintf(jti, len, "%s", res.jti);
		ret = 0;
	}
	jwt_result_free(&res);
	edge_http_resp_free(&r);
	return ret;
}

/* Node B heard the request inside the tunnel: a request line naming the
 * edge workload, the caller and the assertion's jti. */
static void request_audited_on_b(struct sl_env *env, struct world *w)
{
	char jti[64], needle[96];
	json_t *line;
	char *audit;

	if (!ASSERT_OK(assertion_jti(env, w, jti, sizeof(jti)), "GET /api/x: the API's assertion"))
		return;
	snprintf(needle, sizeof(needle), "\"jti\":\"%s\"", jti);
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'b', 0, needle, LOG_WAIT_MS),
			 "node B audited the request with the assertion's jti"))
		return;
	audit = mesh_audit(env, 'b', 0);
	line = line_with(audit, needle);
	free(audit);
	ASSERT_STREQ(str_of(line, "direction"), "request", "node B request: direction");
	ASSERT_STREQ(str_of(line, "src_workload"), ID_EDGE, "node B request: the edge workload");
	ASSERT_STREQ(str_of(line, "caller"), READER_ID, "node B request: the caller");
	ASSERT_STREQ(str_of(line, "reason"), "ok", "node B request: the assertion verified");
	ASSERT_STREQ(str_of(line, "method"), "GET", "node B request: method");
	ASSERT_STREQ(str_of(line, "path"), "/api/x", "node B request: path");
	ASSERT_TRUE(str_of(line, "orig_jti")[0], "node B request: the IdP token's jti");
	ASSERT_TRUE(json_object_get(line, "token") == NULL, "node B request: no token member");
	json_decref(line);
}

/* B's flow line, not its request lines (members keep their order). */
#define FLOW_FROM_EDGE \
	"\"direction\":\"inbound\",\"src_node\":\"" NODE_A "\",\"src_workload\":\"" ID_EDGE "\""

static void audit(struct sl_env *env, struct world *w)
{
	json_t *line;
	char *audit;

	request_audited_on_b(env, w);
	audited_on_a(env, w, "GET", 200, "allow", "readers-get-api");
	audited_on_a(env, w, "DELETE", 403, "deny", "readers-delete");
	/* B writes an allow when its flow closes: a reload makes nginx's old
	 * workers close their idle upstream connections. */
	ASSERT_OK(kill(w->nginx.pid, SIGHUP), "SIGHUP to the edge's nginx");
	if (!ASSERT_TRUE(mesh_audit_wait(env, 'b', 0, FLOW_FROM_EDGE, LOG_WAIT_MS),
			 "node B audited a flow from the edge workload"))
		return;
	audit = mesh_audit(env, 'b', 0);
	line = line_with(audit, FLOW_FROM_EDGE);
	free(audit);
	ASSERT_STREQ(str_of(line, "src_workload"), ID_EDGE, "node B: the source workload");
	ASSERT_STREQ(str_of(line, "verdict"), "allow", "node B: verdict");
	ASSERT_STREQ(str_of(line, "rule"), "edge-reaches-api", "node B: the rule");
	ASSERT_STREQ(str_of(line, "src_node"), NODE_A, "node B: the source node");
	json_decref(line);
}

static void opaque_token(struct sl_env *env, struct world *w)
{
	struct edge_http_resp r;
	struct errmsg err = {};
	char *tok = NULL, v[512];
	long long revoked, refused_at;
	long status;

	if (!ASSERT_OK(get_token_as(w, USER_ID, USER_SECRET, IDP_OPAQUE_RESOURCE, &tok), "an opaque token"))
		return;
	if (!ASSERT_TRUE(strchr(tok, '.') == NULL, "the token is opaque"))
		goto out;
	if (!ASSERT_OK(ask(env, "GET", "/api/x", tok, NULL, &r), "opaque token: GET /api/x"))
		goto out;
	/* The body is the edge's reason, never token material. */
	if (!ASSERT_EQ(r.status, 200, "opaque token: GET /api/x status"))
		printf("edge: %s", r.body);
	ASSERT_TRUE(edge_api_field(r.body, "caller", v, sizeof(v)) && !strcmp(v, USER_SUB),
		    "opaque token: the API's caller, the introspected sub");
	edge_http_resp_free(&r);
	ASSERT_EQ(status_of(env, "DELETE", "/api/x", tok), 403, "opaque token: DELETE /api/x");
	if (!ASSERT_OK(idp_revoke(&w->idp, USER_ID, USER_SECRET, tok, &err), "revoked at the IdP")) {
		printf("revoke: %s\n", err.msg);
		goto out;
	}
	revoked = now_ms();
	status = wait_status(env, "GET", "/api/x", tok, 401, (CACHE_TTL_S + 3) * 1000);
	refused_at = now_ms();
	ASSERT_EQ(status, 401, "a revoked opaque token");
	printf("revoked token refused after %lld ms (edge.cache.ttl %d s)\n", refused_at - revoked,
	       CACHE_TTL_S);
	ASSERT_FALSE(refused_at - revoked > (CACHE_TTL_S + 1) * 1000LL,
		     "refused within the cache entry's bound");
out:
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
}

static char *live_target(struct sl_env *env)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	env_path(env, EDGE_LIVE_CONF, path, sizeof(path));
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	return strdup(target);
}

static int set_policy(struct sl_env *env, struct world *w, enum policy_kind kind)
{
	policy_a_text(env, kind, w->policy_a, sizeof(w->policy_a));
	return env_write_file(env, POLICY_FILE, "%s", w->policy_a);
}

static void refused_policy(struct sl_env *env, struct world *w)
{
	long from = agent_log_size(env);
	char *before = live_target(env), *after = NULL, *log;

	if (!ASSERT_OK_PTR(before, "live.conf is a link") ||
	    !ASSERT_OK(set_policy(env, w, POL_BAD_TLS), "a policy with missing TLS files") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		goto out;
	if (ASSERT_TRUE(agent_log_wait(env, from, "reload rejected", LOG_WAIT_MS),
			"the agent rejected the generation")) {
		log = agent_log(env, from);
		ASSERT_HAS_SUBSTR(log, "nginx -t", "the rejection names nginx -t");
		ASSERT_HAS_SUBSTR(log, MISSING_CERT, "the rejection carries nginx's message");
		free(log);
	}
	after = live_target(env);
	ASSERT_TRUE(after && !strcmp(after, before), "live.conf unchanged");
	ASSERT_EQ(status_of(env, "GET", "/api/x", w->token), 200, "GET /api/x after the refusal");
	ASSERT_EQ(status_of(env, "DELETE", "/api/x", w->token), 403,
		  "DELETE /api/x after the refusal");
	ASSERT_TRUE(agent_running(env), "the agent still runs");
out:
	free(before);
	free(after);
}

/* The edge cgroup's workers once the old ones of a reload are gone: a new
 * worker outside the cgroup would reach the API around the mesh. */
static int workers_settled(struct sl_env *env, struct world *w)
{
	long long deadline = now_ms() + CHANGE_MS;
	int n;

	while ((n = edge_nginx_workers_in_cgroup(env, &w->nginx)) != EDGE_WORKERS &&
	       now_ms() < deadline)
		sleep_ms(100);
	return n;
}

/* SIGHUP, and a wait for the agent to say a generation went live. */
static bool reload_live(struct sl_env *env)
{
	long from = agent_log_size(env);

	return !agent_signal(env, SIGHUP) && agent_log_wait(env, from, " live (slot", LOG_WAIT_MS);
}

/* A new generation drops the token cache, whose roles came from the
 * previous policy: the reader's token, cached a moment ago, loses the role
 * at once, not when its entry expires. */
static void roles_follow_policy(struct sl_env *env, struct world *w)
{
	long long cached;

	ASSERT_EQ(status_of(env, "GET", "/api/x", w->token), 200, "GET /api/x (cached)");
	cached = now_ms();
	if (!ASSERT_OK(set_policy(env, w, POL_NO_READERS), "a policy without readers") ||
	    !ASSERT_TRUE(reload_live(env), "the generation without readers is live"))
		return;
	ASSERT_EQ(status_of(env, "GET", "/api/x", w->token), 403,
		  "GET /api/x once no group maps to readers");
	ASSERT_GE(CACHE_TTL_S * 1000 - (now_ms() - cached), 1, "before the cache entry expired");
	if (ASSERT_OK(set_policy(env, w, POL_BASE), "the first policy again") &&
	    ASSERT_TRUE(reload_live(env), "the first policy is live again"))
		ASSERT_EQ(status_of(env, "GET", "/api/x", w->token), 200,
			  "GET /api/x with readers again");
}

/* The rendered files are root's, 0640; a render_dir others may write is
 * refused, the generation with it, and the live edge stays. */
static void render_dir_safety(struct sl_env *env, struct world *w)
{
	char dir[PATH_MAX], *target = live_target(env), path[2 * PATH_MAX + 2];
	long from = agent_log_size(env);
	struct stat st;

	env_path(env, EDGE_RENDER_DIR, dir, sizeof(dir));
	if (!ASSERT_OK_PTR(target, "live.conf is a link"))
		return;
	if (target[0] == '/')
		snprintf(path, sizeof(path), "%s", target);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, target);
	free(target);
	if (ASSERT_OK(stat(path, &st), "the live generation's file")) {
		ASSERT_EQ(st.st_uid, 0, "its owner");
		ASSERT_EQ(st.st_mode & 07777, 0640, "its mode");
	}
	if (!ASSERT_OK(chmod(dir, 0777), "render_dir made writable by all") ||
	    !ASSERT_OK(set_policy(env, w, POL_DELETE_OK), "a policy letting readers DELETE") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		goto out;
	ASSERT_TRUE(agent_log_wait(env, from, "reload rejected", LOG_WAIT_MS),
		    "the agent refused to render there");
	ASSERT_EQ(status_of(env, "DELETE", "/api/x", w->token), 403, "DELETE /api/x still refused");
out:
	chmod(dir, 0750);
	set_policy(env, w, POL_BASE);
}

static void change_and_rollback(struct sl_env *env, struct world *w)
{
	long from = agent_log_size(env);

	if (!ASSERT_OK(set_policy(env, w, POL_DELETE_OK), "a policy letting readers DELETE") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return;
	ASSERT_EQ(wait_status(env, "DELETE", "/api/x", w->token, 200, CHANGE_MS), 200,
		  "DELETE /api/x once the change is live");
	ASSERT_TRUE(agent_log_wait(env, from, "live", LOG_WAIT_MS), "the new generation is live");
	from = agent_log_size(env);
	if (!ASSERT_OK(agent_signal(env, SIGUSR2), "SIGUSR2"))
		return;
	ASSERT_TRUE(agent_log_wait(env, from, "rolled back", LOG_WAIT_MS), "the agent rolled back");
	ASSERT_EQ(wait_status(env, "DELETE", "/api/x", w->token, 403, CHANGE_MS), 403,
		  "DELETE /api/x after the rollback");
	ASSERT_EQ(status_of(env, "GET", "/api/x", w->token), 200, "GET /api/x after the rollback");
	ASSERT_EQ(workers_settled(env, w), EDGE_WORKERS,
		  "nginx's workers after the reloads, in the edge cgroup");
}

/* A POST of n bytes of body under /api/: its status. */
static long post_status(struct sl_env *env, struct world *w, size_t n)
{
	struct edge_http_req req = { .method = "POST", .path = "/api/x", .token = w->token };
	char path[PATH_MAX];
	struct edge_http_resp r;
	long status = -1;
	FILE *f;

	env_path(env, "edge-body", path, sizeof(path));
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (size_t i = 0; i < n; i++)
		fputc('b', f);
	if (fclose(f))
		return -1;
	req.body_file = path;
	if (!edge_http(env, &req, &r))
		status = r.status;
	edge_http_resp_free(&r);
	unlink(path);
	return status;
}

/* The rendered client_max_body_size (policy edge.max_body, 1m by default):
 * a larger body is refused by nginx before anything is asked; a small one
 * is decided (readers may not POST). */
static void body_limit(struct sl_env *env, struct world *w)
{
	ASSERT_EQ(post_status(env, w, 2 << 20), 413, "POST of 2 MiB");
	ASSERT_EQ(post_status(env, w, 1024), 403, "POST of 1 KiB");
}

/* An agent that hangs (SIGSTOP) is unreachable too: 503 within the
 * rendered timeouts (2 s), and 200 once it runs again. */
static void agent_hung(struct sl_env *env, struct world *w)
{
	long long start, took;
	long status;

	if (!ASSERT_OK(agent_signal(env, SIGSTOP), "SIGSTOP to node A's agent"))
		return;
	start = now_ms();
	status = status_of(env, "GET", "/api/x", w->token);
	took = now_ms() - start;
	agent_signal(env, SIGCONT);
	printf("503 from a hung agent in %lld ms\n", took);
	ASSERT_EQ(status, 503, "GET with the agent stopped");
	ASSERT_GE(HUNG_MAX_MS - took, 0, "the answer came within the timeouts");
	ASSERT_EQ(wait_status(env, "GET", "/api/x", w->token, 200, READY_MS), 200,
		  "GET once the agent runs again");
}

static void agent_down(struct sl_env *env, struct world *w)
{
	struct edge_http_resp r;
	long long start;

	if (!ASSERT_EQ(agent_stop(env), 0, "node A's agent stopped"))
		return;
	start = now_ms();
	if (ASSERT_OK(ask(env, "GET", "/api/x", w->token, NULL, &r), "GET with the agent down")) {
		printf("503 with the agent down in %lld ms (curl's start included)\n",
		       now_ms() - start);
		ASSERT_EQ(r.status, 503, "the edge fails closed");
		ASSERT_NO_SUBSTR(r.body, "uri=", "the API's answer with the agent down");
		edge_http_resp_free(&r);
	}
	if (!ASSERT_OK(agent_start(env, NULL), "node A's agent started again"))
		return;
	ASSERT_EQ(wait_status(env, "GET", "/api/x", w->token, 200, READY_MS), 200,
		  "GET /api/x once the agent is back");
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
	const char *names[] = { "node A's log", "node A's audit", "node B's log",
				"the edge nginx's error log" };
	char files[4][PATH_MAX], what[96];
	const char *sig = strrchr(w->token, '.');

	snprintf(files[0], PATH_MAX, "%s", env->agent_log);
	snprintf(files[1], PATH_MAX, "%s/run/audit.jsonl", env->tmp_dir);
	snprintf(files[2], PATH_MAX, "%s", env->agent_b_log);
	snprintf(files[3], PATH_MAX, "%s", w->nginx.error_log);
	if (!ASSERT_OK_PTR(sig, "the token's signature"))
		return;
	for (int i = 0; i < 4; i++) {
		snprintf(what, sizeof(what), "the token's signature in %s", names[i]);
		ASSERT_FALSE(file_has(files[i], sig + 1), what);
		snprintf(what, sizeof(what), "the client secret in %s", names[i]);
		ASSERT_FALSE(file_has(files[i], w->secret), what);
	}
}

/* node and nginx, or why the test skips. */
static bool have_tools(char *why, size_t len, int *ret)
{
	char *argv[] = { "sh", "-c", "command -v nginx", NULL };
	char *out = NULL, *err = NULL;
	int r;

	*ret = idp_check(why, len);
	if (*ret)
		return false;
	r = run_argv(argv, &out, &err, 5000);
	free(out);
	free(err);
	if (r) {
		snprintf(why, len, "nginx is not installed (make deps installs nginx-light)");
		*ret = -ENOENT;
	}
	return !r;
}

void test_edge(struct sl_env *env)
{
	struct world w = { .api = -1 };
	char why[256] = "node and nginx are installed";
	int ret;

	if (!have_tools(why, sizeof(why), &ret)) {
		if (ret == -ENOENT)
			test__skip("%s", why);
		else
			ASSERT_OK(ret, why);
		return;
	}
	if (!ASSERT_OK(start_world(env, &w), "IdP, two agents, the API and the edge") ||
	    !ASSERT_TRUE(wait_creds(env), "the edge's token on A, the IdP's keys on A and B") ||
	    !ASSERT_OK(get_token_as(&w, READER_ID, w.secret, NULL, &w.token), "a reader's token"))
		goto out;
	if (test__start_subtest("nginx_in_edge_cgroup"))
		nginx_in_edge_cgroup(env, &w);
	if (test__start_subtest("reader_allowed"))
		reader_allowed(env, &w);
	if (test__start_subtest("forbidden"))
		forbidden(env, &w);
	if (test__start_subtest("forged_tokens"))
		forged_tokens(env, &w);
	if (test__start_subtest("no_spoofing"))
		no_spoofing(env, &w);
	if (test__start_subtest("audit"))
		audit(env, &w);
	if (test__start_subtest("keys_from_workloads"))
		keys_reachable_from_workloads(env);
	if (test__start_subtest("opaque_token"))
		opaque_token(env, &w);
	if (test__start_subtest("refused_policy"))
		refused_policy(env, &w);
	if (test__start_subtest("roles_follow_policy"))
		roles_follow_policy(env, &w);
	if (test__start_subtest("render_dir_safety"))
		render_dir_safety(env, &w);
	if (test__start_subtest("change_and_rollback"))
		change_and_rollback(env, &w);
	if (test__start_subtest("body_limit"))
		body_limit(env, &w);
	if (test__start_subtest("agent_hung"))
		agent_hung(env, &w);
	if (test__start_subtest("agent_down"))
		agent_down(env, &w);
	if (test__start_subtest("nothing_secret_written"))
		nothing_secret_written(env, &w);
out:
	edge_nginx_stop(env, &w.nginx);
	idp_stop(env, &w.idp);
	X509_STORE_free(w.ca);
	if (w.token) {
		OPENSSL_cleanse(w.token, strlen(w.token));
		free(w.token);
	}
}
