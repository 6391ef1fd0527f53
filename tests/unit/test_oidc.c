// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The OIDC client against a real OpenID provider: tests/oidc/idp.mjs
 * (oidc-provider from npm, installed by tests/oidc/setup.sh) started on a
 * free loopback port. Without node the IdP tests skip; the checks that need
 * no IdP still run. tests/run_unit.sh runs setup.sh first and fails when it
 * cannot, so in `make test-unit` they never skip quietly.
 *
 * Everything the test process writes to stderr (the module's log lines) is
 * captured to a file, checked for the client secrets at the end, and
 * replayed to stderr by the group teardown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "clock.h"
#include "idp_launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "b64url.h"
#include "http.h"
#include "jwt.h"
#include "oidc.h"
#include "oidc_int.h"
#include "pki.h"

/* Installed by tests/oidc/setup.sh, which tests/run_unit.sh runs first. */
#define IDP_MODULE "tests/oidc/node_modules/oidc-provider/package.json"
#define RESOURCE "spiffe://acme.example"
#define TOKEN_MAX 8192
/* oidc_add_workload() calls racing a file swap: each is one secret read. */
#define SWAP_TRIES 3000

struct idp {
	pid_t pid;
	int port;
	char url[IDP_URL_MAX];
	char log[PATH_MAX];
};

static char dir[] = "/tmp/sluice-oidc-XXXXXX";
static char node_bin[PATH_MAX];
static char secret[40], wrong_secret[40];
static int saved_stderr = -1;
static char stderr_log[PATH_MAX];
static struct idp idp_a = { .pid = -1 };

/* A file in the test's directory; the string stays valid for the next 63
 * calls, enough for any one test. */
static const char *path(const char *name)
{
	static char buf[64][PATH_MAX];
	static int i;

	i = (i + 1) % 64;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *p, const char *data, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static char *read_file(const char *p)
{
	FILE *f = fopen(p, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];

	assert_true(bytes <= sizeof(r));
	assert_int_equal(RAND_bytes(r, bytes), 1);
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

static void write_key(const char *p, EVP_PKEY *k)
{
	FILE *f;

	unlink(p);
	f = fopen(p, "wx");
	assert_non_null(f);
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* A self-signed P-256 certificate with subjectAltName san, and its key. */
static void write_cert(const char *crt, const char *key, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	char tmp[PATH_MAX];
	FILE *f;

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)mono_ms());
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"sluice-test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);

	/* Written aside and renamed, as a rotated Secret appears. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", key);
	write_key(tmp, k);
	assert_int_equal(rename(tmp, key), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", crt);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	assert_int_equal(rename(tmp, crt), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* RFC 8705 x5t#S256 of the PEM certificate in crt. */
static void thumbprint(const char *crt, char out[PKI_THUMBPRINT_LEN])
{
	struct errmsg e = {};
	X509 *x = NULL;

	assert_int_equal(pki_read_cert(crt, &x, &e), 0);
	assert_int_equal(pki_thumbprint(x, out, PKI_THUMBPRINT_LEN), 0);
	X509_free(x);
}

static bool find_node(void)
{
	const char *env = getenv("PATH");
	char *paths, *dirp, *save = NULL;
	bool found = false;

	paths = strdup(env ? env : "/usr/bin:/bin");
	for (dirp = strtok_r(paths, ":", &save); dirp && !found;
	     dirp = strtok_r(NULL, ":", &save)) {
		snprintf(node_bin, sizeof(node_bin), "%s/node", dirp);
		found = !access(node_bin, X_OK);
	}
	free(paths);
	return found;
}

static void need_node(void)
{
	if (!node_bin[0]) {
		print_message("skipped: node is not installed (apt-get install nodejs npm)\n");
		skip();
	}
}

/* Starts idp.mjs and waits for its READY line. port 0: a free port. */
static int idp_start(struct idp *idp, const char *clients, const char *tls_cert,
		     const char *tls_key)
{
	char port[16];
	char *args[] = { "--clients", (char *)clients, "--port", port, NULL, NULL, NULL, NULL,
			 NULL };
	int ret;

	snprintf(port, sizeof(port), "%d", idp->port);
	if (tls_cert) {
		args[4] = "--tls-cert";
		args[5] = (char *)tls_cert;
		args[6] = "--tls-key";
		args[7] = (char *)tls_key;
	}
	ret = idp_launch(args, idp->log, NULL, NULL, idp->url, &idp->pid);
	if (ret || sscanf(strrchr(idp->url, ':') + 1, "%d", &idp->port) != 1) {
		char *log = read_file(idp->log);

		print_error("idp.mjs did not get ready; its stderr:\n%s\n", log);
		free(log);
		idp_kill(idp->pid, SIGKILL, 0);
		idp->pid = -1;
		return -EIO;
	}
	return 0;
}

static void idp_stop(struct idp *idp, int sig)
{
	/* SIGKILL is how a test takes the IdP away: wait for it, never
	 * escalate a SIGTERM before the IdP had its chance. */
	idp_kill(idp->pid, sig, 60000);
	idp->pid = -1;
}

/* A request to idp.mjs's admin endpoints; returns the parsed JSON. */
static json_t *idp_admin(const struct idp *idp, const char *what)
{
	struct http_opts h = { .connect_timeout_ms = 2000, .timeout_ms = 5000, .max_body = 4096 };
	struct http_response r;
	struct errmsg e = {};
	char url[256];
	json_t *j;
	int ret;

	snprintf(url, sizeof(url), "%s/admin/%s", idp->url, what);
	if (!strcmp(what, "rotate-keys"))
		ret = http_post_form(url, "", &h, &r, &e);
	else
		ret = http_get(url, &h, &r, &e);
	if (ret)
		print_error("%s\n", e.msg);
	assert_int_equal(ret, 0);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	http_response_free(&r);
	return j;
}

static long long idp_stat(const struct idp *idp, const char *key)
{
	json_t *j = idp_admin(idp, "stats");
	long long n = json_integer_value(json_object_get(j, key));

	json_decref(j);
	return n;
}

/* Part 0 (header) or 1 (payload) of a compact JWT, parsed. */
static json_t *jwt_part(const char *token, int part)
{
	const char *start = token, *end;
	char buf[TOKEN_MAX];
	size_t len;

	for (int i = 0; i < part; i++) {
		start = strchr(start, '.');
		assert_non_null(start);
		start++;
	}
	end = strchr(start, '.');
	assert_non_null(end);
	assert_true((size_t)(end - start) < sizeof(buf));
	assert_int_equal(b64url_decode(start, end - start, buf, &len), 0);
	return json_loadb(buf, len, 0, NULL);
}

static const char *jstr(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

static struct oidc *oidc_for(const char *issuer, const struct oidc_cfg *extra)
{
	struct oidc_cfg cfg = extra ? *extra : (struct oidc_cfg){};
	struct errmsg e = {};
	struct oidc *o = NULL;

	cfg.issuer = issuer;
	if (!cfg.resource)
		cfg.resource = RESOURCE;
	/* Fast retries: the tests wait for them. */
	if (!cfg.retry_min_ms)
		cfg.retry_min_ms = 200;
	if (!cfg.retry_max_ms)
		cfg.retry_max_ms = 800;
	if (oidc_new(&cfg, &o, &e))
		print_error("%s\n", e.msg);
	assert_non_null(o);
	return o;
}

static void add(struct oidc *o, const char *workload, const char *client_id, enum oidc_auth auth,
		const char *file)
{
	struct oidc_client_cfg c = {
		.workload = workload,
		.client_id = client_id,
		.auth = auth,
		.secret_file = auth == OIDC_AUTH_CLIENT_SECRET_BASIC ? file : NULL,
		.key_file = auth == OIDC_AUTH_PRIVATE_KEY_JWT ? file : NULL,
	};
	struct errmsg e = {};
	int ret = oidc_add_workload(o, &c, &e);

	if (ret)
		print_error("%s\n", e.msg);
	assert_int_equal(ret, 0);
}

/* Waits on oidc_fd until oidc_token_get stops saying -EAGAIN, or, with
 * unlike set, until it returns a token other than unlike. */
static int wait_token(struct oidc *o, const char *workload, const char *unlike, char *buf,
		      time_t *exp, const char **reason, struct errmsg *e, unsigned int timeout_ms)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	int ret;

	for (;;) {
		struct pollfd p = { .fd = oidc_fd(o), .events = POLLIN };
		uint64_t now;

		ret = oidc_token_get(o, workload, buf, TOKEN_MAX, exp, reason, e);
		if (unlike ? !ret && strcmp(buf, unlike) : ret != -EAGAIN)
			return ret;
		now = mono_ms();
		if (now >= deadline)
			return ret;
		poll(&p, 1, deadline - now);
		oidc_fd_clear(o);
	}
}

static char *get_token(struct oidc *o, const char *workload, time_t *exp)
{
	char *buf = malloc(TOKEN_MAX);
	struct errmsg e = {};
	int ret;

	assert_non_null(buf);
	ret = wait_token(o, workload, NULL, buf, exp, NULL, &e, 10000);
	if (ret)
		print_error("%s\n", e.msg);
	assert_int_equal(ret, 0);
	return buf;
}

static void wait_discovered(struct oidc *o, struct oidc_info *info)
{
	uint64_t deadline = mono_ms() + 10000;

	for (;;) {
		struct pollfd p = { .fd = oidc_fd(o), .events = POLLIN };

		oidc_get_info(o, info);
		if (info->discovered || info->error[0] || mono_ms() >= deadline)
			break;
		poll(&p, 1, 100);
		oidc_fd_clear(o);
	}
}

static void write_clients(void)
{
	json_t *clients = json_pack(
		"[{s:s, s:s, s:s, s:{s:[s]}},"
		" {s:s, s:s, s:s, s:{s:[s]}},"
		" {s:s, s:s, s:s, s:i},"
		" {s:s, s:s, s:s, s:i}]",
		"client_id", "job-etl", "client_secret", secret, "token_endpoint_auth_method",
		"client_secret_basic", "claims", "groups", "etl-jobs",
		"client_id", "nb-pkjwt", "key_file", path("client.key"),
		"token_endpoint_auth_method", "private_key_jwt", "claims", "groups", "notebooks",
		"client_id", "job-short", "client_secret", secret, "token_endpoint_auth_method",
		"client_secret_basic", "token_ttl", 6,
		"client_id", "job-brief", "client_secret", secret, "token_endpoint_auth_method",
		"client_secret_basic", "token_ttl", 3);
	json_t *intro = json_pack("{s:s, s:s, s:s}", "client_id", "edge-introspect",
				  "client_secret", secret, "token_endpoint_auth_method",
				  "client_secret_basic");
	json_t *bound = json_pack("[{s:s, s:s, s:s, s:b}]", "client_id", "job-bound",
				  "client_secret", secret, "token_endpoint_auth_method",
				  "client_secret_basic", "tls_client_certificate_bound_access_tokens",
				  1);

	/* Replaces idp.mjs's own edge-introspect: its secret is checked for
	 * in the output at the end. */
	assert_int_equal(json_array_append_new(clients, intro), 0);
	assert_int_equal(json_dump_file(clients, path("clients.json"), 0), 0);
	assert_int_equal(json_dump_file(bound, path("clients-tls.json"), 0), 0);
	json_decref(clients);
	json_decref(bound);
}

static int group_setup(void **state)
{
	EVP_PKEY *k;
	int fd;

	if (!mkdtemp(dir))
		return -1;
	random_hex(secret, 16);
	random_hex(wrong_secret, 16);
	write_file(path("job.secret"), secret, 0600);
	write_file(path("wrong.secret"), wrong_secret, 0600);
	write_file(path("open.secret"), secret, 0644);
	/* idp.mjs's built-in client whose tokens carry sub and groups. */
	write_file(path("edge-user.secret"), "edge-user-secret\n", 0600);
	k = EVP_EC_gen("P-256");
	write_key(path("client.key"), k);
	EVP_PKEY_free(k);
	k = EVP_RSA_gen(2048);
	write_key(path("rsa.key"), k);
	EVP_PKEY_free(k);
	write_cert(path("server.crt"), path("server.key"), "IP:127.0.0.1");
	write_cert(path("node.crt"), path("node.key"), "URI:spiffe://acme.example/node/a");
	write_clients();

	snprintf(stderr_log, sizeof(stderr_log), "%s", path("stderr.log"));
	print_message("stderr of this run goes to %s, replayed at the end\n", stderr_log);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	fd = open(stderr_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (saved_stderr < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		return -1;
	close(fd);

	if (!find_node()) {
		node_bin[0] = '\0';
		return 0;
	}
	if (access(IDP_MODULE, R_OK)) {
		print_error("%s: %s: run tests/oidc/setup.sh from the repository root\n",
			    IDP_MODULE, strerror(errno));
		return -1;
	}
	snprintf(idp_a.log, sizeof(idp_a.log), "%s", path("idp-a.log"));
	return idp_start(&idp_a, path("clients.json"), NULL, NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	char *log;

	idp_stop(&idp_a, SIGTERM);
	fflush(stderr);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		log = read_file(stderr_log);
		fputs(log, stderr);
		free(log);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) ? -1 : 0;
}

static void test_discovery(void **state)
{
	char want[256];
	struct oidc_info info;
	struct oidc *o;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	wait_discovered(o, &info);
	assert_string_equal(info.error, "");
	assert_true(info.discovered);
	snprintf(want, sizeof(want), "%s/token", idp_a.url);
	assert_string_equal(info.token_endpoint, want);
	snprintf(want, sizeof(want), "%s/jwks", idp_a.url);
	assert_string_equal(info.jwks_uri, want);
	snprintf(want, sizeof(want), "%s/token/introspection", idp_a.url);
	assert_string_equal(info.introspection_endpoint, want);
	oidc_free(o);
}

/* The IdP at 127.0.0.1 calls itself that; asked as localhost it is another
 * issuer, and nothing it says may be used. */
static void test_discovery_issuer_mismatch(void **state)
{
	char issuer[128], buf[TOKEN_MAX];
	const char *reason = NULL;
	struct errmsg e = {};
	long long before;
	struct oidc *o;

	need_node();
	before = idp_stat(&idp_a, "token");
	snprintf(issuer, sizeof(issuer), "http://localhost:%d", idp_a.port);
	o = oidc_for(issuer, NULL);
	add(o, "spiffe://acme.example/job/etl", "job-etl", OIDC_AUTH_CLIENT_SECRET_BASIC,
	    path("job.secret"));
	assert_int_equal(wait_token(o, "spiffe://acme.example/job/etl", NULL, buf, NULL, &reason,
				    &e, 10000),
			 -ENOKEY);
	assert_string_equal(reason, OIDC_REASON_BAD_RESPONSE);
	assert_non_null(strstr(e.msg, "is not the configured issuer"));
	assert_non_null(strstr(e.msg, issuer));
	assert_non_null(strstr(e.msg, idp_a.url));
	/* The token endpoint it named was never called. */
	assert_int_equal(idp_stat(&idp_a, "token"), before);
	oidc_free(o);
}

static uint64_t wait_jwks(struct oidc *o, uint64_t after)
{
	uint64_t deadline = mono_ms() + 10000;
	struct oidc_info info;

	for (;;) {
		struct pollfd p = { .fd = oidc_fd(o), .events = POLLIN };

		oidc_get_info(o, &info);
		if (info.jwks_generation > after || mono_ms() >= deadline)
			return info.jwks_generation;
		poll(&p, 1, 100);
		oidc_fd_clear(o);
	}
}

/* jwt_verify() of an IdP token against a JWKS document from oidc_jwks_get(). */
static enum jwt_reason verify(const char *token, const char *jwks_doc, const char *issuer,
			      const char *cnf_x5t)
{
	struct jwt_result res = {};
	struct errmsg e = {};
	struct jwt_verify_opts opts = {
		.issuer = issuer,
		.audience = RESOURCE,
		.algs = JWS_ES256,
		.get_key = jwks_get_key,
		.cnf_x5t = cnf_x5t,
	};
	struct jwks *set = NULL;
	enum jwt_reason r;

	assert_int_equal(jwks_parse(jwks_doc, strlen(jwks_doc), &set, &e), 0);
	opts.key_ctx = set;
	r = jwt_verify(token, &opts, &res);
	if (r != JWT_OK)
		print_message("jwt_verify: %s: %s\n", jwt_reason_name(r), res.err.msg);
	jwt_result_free(&res);
	jwks_free(set);
	return r;
}

static char *jwks_doc(struct oidc *o, uint64_t *gen)
{
	struct errmsg e = {};
	char *doc = NULL;

	if (oidc_jwks_get(o, &doc, gen, &e))
		print_error("%s\n", e.msg);
	assert_non_null(doc);
	return doc;
}

static void check_token(const char *token, time_t exp, const char *client_id, const char *group)
{
	json_t *h = jwt_part(token, 0), *p = jwt_part(token, 1);
	json_t *groups = json_object_get(p, "groups");
	time_t now = time(NULL);

	assert_non_null(h);
	assert_non_null(p);
	assert_string_equal(jstr(h, "typ"), "at+jwt");
	assert_string_equal(jstr(h, "alg"), "ES256");
	assert_string_equal(jstr(p, "aud"), RESOURCE);
	assert_string_equal(jstr(p, "iss"), idp_a.url);
	assert_string_equal(jstr(p, "client_id"), client_id);
	assert_true(strlen(jstr(p, "jti")) > 0);
	assert_int_equal(json_array_size(groups), 1);
	assert_string_equal(json_string_value(json_array_get(groups, 0)), group);
	/* Default lifetime 300 s; our expiry may lead the IdP's by the
	 * request's duration, never trail it. */
	assert_true(json_integer_value(json_object_get(p, "exp")) >= now + 295);
	assert_true(exp <= json_integer_value(json_object_get(p, "exp")));
	assert_true(exp >= json_integer_value(json_object_get(p, "exp")) - 2);
	json_decref(h);
	json_decref(p);
}

static void test_token_client_secret(void **state)
{
	const char *wl = "spiffe://acme.example/job/etl";
	struct oidc_token_info info;
	struct oidc *o;
	char *tok, *doc;
	time_t exp;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	add(o, wl, "job-etl", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	tok = get_token(o, wl, &exp);
	check_token(tok, exp, "job-etl", "etl-jobs");
	assert_int_equal(wait_jwks(o, 0), 1);
	doc = jwks_doc(o, NULL);
	assert_int_equal(verify(tok, doc, idp_a.url, NULL), JWT_OK);
	assert_int_equal(verify(tok, doc, "http://127.0.0.1:1", NULL), JWT_BAD_ISSUER);
	free(doc);
	assert_int_equal(oidc_token_info(o, wl, &info), 0);
	assert_true(info.valid);
	assert_int_equal(info.exp, exp);
	assert_int_equal(info.fetched, 1);
	assert_int_equal(info.failed, 0);
	free(tok);
	oidc_free(o);
}

static void test_token_private_key_jwt(void **state)
{
	const char *wl = "spiffe://acme.example/notebook/pk";
	struct oidc *o;
	char *tok;
	time_t exp;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	add(o, wl, "nb-pkjwt", OIDC_AUTH_PRIVATE_KEY_JWT, path("client.key"));
	tok = get_token(o, wl, &exp);
	check_token(tok, exp, "nb-pkjwt", "notebooks");
	free(tok);
	oidc_free(o);
}

static void test_wrong_secret(void **state)
{
	const char *wl = "spiffe://acme.example/job/etl";
	char buf[TOKEN_MAX], url[160];
	const char *reason = NULL;
	struct oidc_token_info info;
	struct errmsg e = {};
	struct oidc *o;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	add(o, wl, "job-etl", OIDC_AUTH_CLIENT_SECRET_BASIC, path("wrong.secret"));
	assert_int_equal(wait_token(o, wl, NULL, buf, NULL, &reason, &e, 10000), -ENOKEY);
	assert_string_equal(reason, OIDC_REASON_REFUSED);
	snprintf(url, sizeof(url), "%s/token", idp_a.url);
	assert_non_null(strstr(e.msg, url));
	assert_non_null(strstr(e.msg, "HTTP 401 invalid_client"));
	assert_null(strstr(e.msg, wrong_secret));
	assert_null(strstr(e.msg, secret));
	assert_int_equal(oidc_token_info(o, wl, &info), 0);
	assert_false(info.valid);
	assert_int_equal(info.fetched, 0);
	assert_true(info.failed >= 1);
	assert_non_null(strstr(info.error, "invalid_client"));
	oidc_free(o);
}

/* A 6 s token is replaced at 2/3 of its life, about 4 s, by a new one. */
static void test_refresh_before_expiry(void **state)
{
	const char *wl = "spiffe://acme.example/job/short";
	const char *reason = NULL;
	struct oidc_token_info info;
	struct errmsg e = {};
	char *first, buf[TOKEN_MAX];
	uint64_t start, elapsed;
	json_t *p1, *p2;
	time_t exp1, exp2;
	struct oidc *o;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	add(o, wl, "job-short", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	first = get_token(o, wl, &exp1);
	start = mono_ms();
	assert_int_equal(wait_token(o, wl, first, buf, &exp2, &reason, &e, 8000), 0);
	elapsed = mono_ms() - start;
	print_message("refreshed after %llu ms\n", (unsigned long long)elapsed);
	assert_true(elapsed >= 3500);
	assert_true(elapsed < 4500);
	p1 = jwt_part(first, 1);
	p2 = jwt_part(buf, 1);
	assert_string_not_equal(jstr(p1, "jti"), jstr(p2, "jti"));
	assert_true(exp2 > exp1);
	assert_true(json_integer_value(json_object_get(p2, "exp")) -
			    json_integer_value(json_object_get(p2, "iat")) ==
		    6);
	assert_int_equal(oidc_token_info(o, wl, &info), 0);
	assert_int_equal(info.fetched, 2);
	json_decref(p1);
	json_decref(p2);
	free(first);
	oidc_free(o);
}

/* With the IdP gone the cached token is served to its last second and
 * never after; then the workload fails closed until the IdP is back. */
static void test_idp_down_fail_closed(void **state)
{
	const char *wl = "spiffe://acme.example/job/brief";
	struct idp b = { .pid = -1 };
	const char *reason = NULL;
	char *tok, buf[TOKEN_MAX], url[160];
	struct errmsg e = {};
	long long last_served = 0, refused;
	struct oidc *o;
	time_t exp;
	int ret;

	need_node();
	snprintf(b.log, sizeof(b.log), "%s", path("idp-b.log"));
	assert_int_equal(idp_start(&b, path("clients.json"), NULL, NULL), 0);
	o = oidc_for(b.url, NULL);
	add(o, wl, "job-brief", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	tok = get_token(o, wl, &exp);
	idp_stop(&b, SIGKILL);

	/* Until exp the same token, from exp on nothing. */
	for (;;) {
		ret = oidc_token_get(o, wl, buf, sizeof(buf), NULL, &reason, &e);
		if (ret)
			break;
		last_served = wall_ms();
		assert_string_equal(buf, tok);
		usleep(20 * 1000);
	}
	refused = wall_ms();
	print_message("token served until %lld ms before exp, refused %lld ms after\n",
		      (long long)exp * 1000 - last_served, refused - (long long)exp * 1000);
	assert_true(last_served < (long long)exp * 1000);
	assert_true(last_served >= (long long)exp * 1000 - 100);
	/* The agent ends the token on its monotonic clock, rounded early:
	 * the refusal may come a few ms before exp on the wall clock. */
	assert_true(refused >= (long long)exp * 1000 - 20);
	assert_int_equal(ret, -EKEYEXPIRED);
	assert_string_equal(reason, OIDC_REASON_UNREACHABLE_EXPIRED);
	snprintf(url, sizeof(url), "%s/token", b.url);
	assert_non_null(strstr(e.msg, OIDC_REASON_UNREACHABLE_EXPIRED));
	assert_non_null(strstr(e.msg, url));
	print_message("%s\n", e.msg);
	assert_int_equal(oidc_token_get(o, wl, buf, sizeof(buf), NULL, &reason, &e),
			 -EKEYEXPIRED);

	/* Back on the same port: a new token within the retry backoff. */
	assert_int_equal(idp_start(&b, path("clients.json"), NULL, NULL), 0);
	assert_int_equal(wait_token(o, wl, tok, buf, NULL, NULL, &e, 5000), 0);
	idp_stop(&b, SIGTERM);
	free(tok);
	oidc_free(o);
}

/* An IdP that accepts the connection and never answers. */
static void test_timeout(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct oidc_cfg cfg = { .connect_timeout_ms = 300, .timeout_ms = 600 };
	socklen_t len = sizeof(sa);
	char issuer[64], buf[TOKEN_MAX];
	const char *reason = NULL;
	struct errmsg e = {};
	uint64_t start;
	struct oidc *o;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%d", ntohs(sa.sin_port));

	start = mono_ms();
	o = oidc_for(issuer, &cfg);
	add(o, "spiffe://acme.example/job/etl", "job-etl", OIDC_AUTH_CLIENT_SECRET_BASIC,
	    path("job.secret"));
	assert_int_equal(wait_token(o, "spiffe://acme.example/job/etl", NULL, buf, NULL, &reason,
				    &e, 5000),
			 -ENOKEY);
	assert_true(mono_ms() - start >= 550);
	assert_true(mono_ms() - start < 2000);
	assert_string_equal(reason, OIDC_REASON_UNREACHABLE);
	assert_non_null(strstr(e.msg, "timed out"));
	assert_non_null(strstr(e.msg, issuer));
	oidc_free(o);
	close(fd);
}

/*
 * The verifier's path through a key rotation: a token signed with the new
 * key names a kid the cached JWKS lacks; the refetch it asks for happens at
 * most once per jwks_refetch_min_s (2 s here), and the refetched JWKS
 * verifies both the new token and one signed before the rotation.
 */
static void test_jwks_refetch_rate_limited(void **state)
{
	const char *wl = "spiffe://acme.example/job/etl";
	struct oidc_cfg cfg = { .jwks_refetch_min_s = 2 };
	char *before_tok, *after_tok, *doc;
	struct oidc_info info;
	struct errmsg e = {};
	long long fetches;
	uint64_t gen, first;
	char new_kid[64];
	struct oidc *o;
	json_t *j;

	need_node();
	o = oidc_for(idp_a.url, &cfg);
	add(o, wl, "job-etl", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	assert_int_equal(wait_jwks(o, 0), 1);
	first = mono_ms();
	fetches = idp_stat(&idp_a, "jwks");
	before_tok = get_token(o, wl, NULL);
	doc = jwks_doc(o, &gen);
	assert_int_equal(gen, 1);
	assert_int_equal(verify(before_tok, doc, idp_a.url, NULL), JWT_OK);

	j = idp_admin(&idp_a, "rotate-keys");
	snprintf(new_kid, sizeof(new_kid), "%s", jstr(j, "kid"));
	json_decref(j);
	oidc_refresh_all(o);
	after_tok = malloc(TOKEN_MAX);
	assert_int_equal(wait_token(o, wl, before_tok, after_tok, NULL, NULL, &e, 5000), 0);
	j = jwt_part(after_tok, 0);
	assert_string_equal(jstr(j, "kid"), new_kid);
	json_decref(j);
	assert_int_equal(verify(after_tok, doc, idp_a.url, NULL), JWT_UNKNOWN_KID);
	free(doc);

	/* Too soon after the first fetch: refused, nothing requested. */
	assert_int_equal(oidc_jwks_refetch(o), -EBUSY);
	while (mono_ms() - first < 2100)
		usleep(50 * 1000);
	assert_int_equal(oidc_jwks_refetch(o), 0);
	assert_int_equal(wait_jwks(o, 1), 2);
	for (int i = 0; i < 5; i++)
		assert_int_equal(oidc_jwks_refetch(o), -EBUSY);
	doc = jwks_doc(o, &gen);
	assert_int_equal(gen, 2);
	assert_int_equal(verify(after_tok, doc, idp_a.url, NULL), JWT_OK);
	/* The previous key stays published for tokens signed before. */
	assert_int_equal(verify(before_tok, doc, idp_a.url, NULL), JWT_OK);
	free(doc);
	assert_int_equal(idp_stat(&idp_a, "jwks") - fetches, 1);
	oidc_get_info(o, &info);
	assert_int_equal(info.jwks_fetches, 2);
	free(before_tok);
	free(after_tok);
	oidc_free(o);
}

/* RFC 8705: over TLS the IdP binds the token to the certificate the agent
 * presents, and a new certificate gets newly bound tokens. */
static void test_cert_bound_token(void **state)
{
	const char *wl = "spiffe://acme.example/job/bound";
	struct oidc_cfg cfg = {
		.ca_file = path("server.crt"),
		.cert_file = path("node.crt"),
		.key_file = path("node.key"),
	};
	struct oidc_cfg no_cert = { .ca_file = path("server.crt") };
	struct idp c = { .pid = -1 };
	char want[PKI_THUMBPRINT_LEN], buf[TOKEN_MAX];
	const char *reason = NULL;
	struct errmsg e = {};
	struct oidc *o, *o2;
	char *tok, *doc;
	json_t *p;

	need_node();
	snprintf(c.log, sizeof(c.log), "%s", path("idp-c.log"));
	assert_int_equal(idp_start(&c, path("clients-tls.json"), path("server.crt"),
				   path("server.key")),
			 0);
	assert_int_equal(strncmp(c.url, "https://", 8), 0);

	o = oidc_for(c.url, &cfg);
	add(o, wl, "job-bound", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	tok = get_token(o, wl, NULL);
	p = jwt_part(tok, 1);
	thumbprint(path("node.crt"), want);
	assert_string_equal(jstr(json_object_get(p, "cnf"), "x5t#S256"), want);
	json_decref(p);
	/* What the receiving agent checks against the tunnel peer's cert. */
	assert_int_equal(wait_jwks(o, 0), 1);
	doc = jwks_doc(o, NULL);
	assert_int_equal(verify(tok, doc, c.url, want), JWT_OK);

	/* The node certificate rotates on disk. */
	write_cert(path("node.crt"), path("node.key"), "URI:spiffe://acme.example/node/a");
	oidc_refresh_all(o);
	assert_int_equal(wait_token(o, wl, tok, buf, NULL, NULL, &e, 5000), 0);
	p = jwt_part(buf, 1);
	thumbprint(path("node.crt"), want);
	assert_string_equal(jstr(json_object_get(p, "cnf"), "x5t#S256"), want);
	json_decref(p);
	assert_int_equal(verify(buf, doc, c.url, want), JWT_OK);
	/* The old token presented with the new certificate is refused. */
	assert_int_equal(verify(tok, doc, c.url, want), JWT_NOT_BOUND);
	free(doc);
	free(tok);
	oidc_free(o);

	/* This client's tokens must be bound: no certificate, no token. */
	o2 = oidc_for(c.url, &no_cert);
	add(o2, wl, "job-bound", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	assert_int_equal(wait_token(o2, wl, NULL, buf, NULL, &reason, &e, 10000), -ENOKEY);
	assert_string_equal(reason, OIDC_REASON_REFUSED);
	assert_non_null(strstr(e.msg, "invalid_grant"));
	oidc_free(o2);

	/* Without the IdP's CA the TLS handshake fails: nothing is sent. */
	o2 = oidc_for(c.url, NULL);
	add(o2, wl, "job-bound", OIDC_AUTH_CLIENT_SECRET_BASIC, path("job.secret"));
	assert_int_equal(wait_token(o2, wl, NULL, buf, NULL, &reason, &e, 10000), -ENOKEY);
	assert_string_equal(reason, OIDC_REASON_UNREACHABLE);
	assert_non_null(strstr(e.msg, "certificate"));
	oidc_free(o2);
	idp_stop(&c, SIGTERM);
}

/* Points swap.secret at the private secret and at an empty file anyone may
 * read, in turn, as fast as rename() goes. */
static void *flip_link(void *arg)
{
	atomic_bool *stop = arg;
	const char *targets[] = { path("job.secret"), path("empty-open.secret") };
	char tmp[PATH_MAX], link[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path("swap.tmp"));
	snprintf(link, sizeof(link), "%s", path("swap.secret"));
	for (unsigned long i = 0; !atomic_load(stop); i++) {
		unlink(tmp);
		if (symlink(targets[i % 2], tmp) || rename(tmp, link))
			break;
	}
	return NULL;
}

/* The secret file is checked on the descriptor it was read from: a file
 * swapped in after a check on the path is never read under that check. An
 * empty file open to others shows up as "empty" only if it was read as the
 * private one. */
static void test_secret_checked_where_read(void **state)
{
	atomic_bool stop = false;
	struct oidc_client_cfg c = {
		.client_id = "job-swap",
		.auth = OIDC_AUTH_CLIENT_SECRET_BASIC,
		.secret_file = path("swap.secret"),
	};
	int ok = 0, refused = 0, misread = 0;
	char wl[64];
	struct errmsg e = {};
	struct oidc *o;
	pthread_t t;
	int ret;

	write_file(path("empty-open.secret"), "", 0644);
	assert_int_equal(symlink(path("job.secret"), path("swap.secret")), 0);
	o = oidc_for("http://127.0.0.1:1", NULL);
	assert_int_equal(pthread_create(&t, NULL, flip_link, &stop), 0);
	for (int i = 0; i < SWAP_TRIES; i++) {
		snprintf(wl, sizeof(wl), "spiffe://acme.example/job/swap-%d", i);
		c.workload = wl;
		ret = oidc_add_workload(o, &c, &e);
		ok += !ret;
		refused += ret == -EPERM;
		misread += ret && ret != -EPERM;
		if (ret && ret != -EPERM)
			print_error("%s\n", e.msg);
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	oidc_free(o);
	assert_int_equal(misread, 0);
	/* Both files were met: the swap raced the reads. */
	assert_true(ok > 0);
	assert_true(refused > 0);
}

/* Configuration mistakes are refused up front, with the file named. */
static void test_config_errors(void **state)
{
	struct oidc_cfg half = { .cert_file = path("node.crt") };
	struct oidc_client_cfg c = {
		.workload = "spiffe://acme.example/job/x",
		.client_id = "job-x",
		.auth = OIDC_AUTH_CLIENT_SECRET_BASIC,
		.secret_file = path("open.secret"),
	};
	struct oidc_cfg plain = { .issuer = "http://idp.acme.example" };
	char buf[TOKEN_MAX];
	struct errmsg e = {};
	struct oidc *o = NULL;

	assert_int_equal(oidc_new(&plain, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "http only on loopback"));
	half.issuer = "https://idp.acme.example";
	assert_int_equal(oidc_new(&half, &o, &e), -EINVAL);

	/* Nothing listens on port 1: the thread fails quietly meanwhile. */
	o = oidc_for("http://127.0.0.1:1", NULL);
	assert_int_equal(oidc_add_workload(o, &c, &e), -EPERM);
	assert_non_null(strstr(e.msg, path("open.secret")));
	assert_non_null(strstr(e.msg, "chmod 600"));

	c.auth = OIDC_AUTH_PRIVATE_KEY_JWT;
	c.secret_file = NULL;
	c.key_file = path("rsa.key");
	assert_int_equal(oidc_add_workload(o, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not an EC P-256 key"));
	c.key_file = path("job.secret");
	assert_int_equal(oidc_add_workload(o, &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not an unencrypted PEM private key"));
	c.key_file = path("missing.key");
	assert_int_equal(oidc_add_workload(o, &c, &e), -ENOENT);

	c.key_file = path("client.key");
	assert_int_equal(oidc_add_workload(o, &c, &e), 0);
	assert_int_equal(oidc_add_workload(o, &c, &e), -EEXIST);
	assert_int_equal(oidc_token_get(o, "spiffe://acme.example/job/y", buf, sizeof(buf), NULL,
					NULL, &e),
			 -ENOENT);
	assert_int_equal(oidc_remove_workload(o, c.workload), 0);
	assert_int_equal(oidc_remove_workload(o, c.workload), -ENOENT);
	oidc_free(o);
}

#define OPAQUE_RESOURCE "urn:sluice:opaque"

/* Calls oidc_introspect until it stops saying -EINPROGRESS; counts the
 * eventfd wakeups in between into *fired (may be NULL). */
static int wait_intro(struct oidc *o, const char *token, json_t **claims, struct errmsg *e,
		      unsigned int timeout_ms, int *fired)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	int ret;

	for (;;) {
		struct pollfd p = { .fd = oidc_fd(o), .events = POLLIN };
		uint64_t now;

		ret = oidc_introspect(o, token, claims, e);
		if (ret != -EINPROGRESS)
			return ret;
		now = mono_ms();
		if (now >= deadline)
			return ret;
		if (poll(&p, 1, deadline - now) > 0 && fired)
			(*fired)++;
		oidc_fd_clear(o);
	}
}

static void set_intro_client(struct oidc *o, const char *client_id, const char *file)
{
	struct errmsg e = {};
	int ret = oidc_set_introspection_client(o, client_id, file, &e);

	if (ret)
		print_error("%s\n", e.msg);
	assert_int_equal(ret, 0);
}

/* An opaque access token of idp.mjs's edge-user, through the client
 * credentials grant for the opaque resource. */
static char *opaque_token(struct oidc **out)
{
	struct oidc_cfg cfg = { .resource = OPAQUE_RESOURCE };
	struct oidc *o = oidc_for(idp_a.url, &cfg);
	char *tok;

	add(o, "edge-user", "edge-user", OIDC_AUTH_CLIENT_SECRET_BASIC, path("edge-user.secret"));
	tok = get_token(o, "edge-user", NULL);
	/* Not a JWT: only introspection can read it. */
	assert_null(strchr(tok, '.'));
	*out = o;
	return tok;
}

static void idp_revoke(const char *token)
{
	struct http_opts h = {
		.connect_timeout_ms = 2000, .timeout_ms = 5000, .max_body = 4096,
		.username = "edge-user", .password = "edge-user-secret",
	};
	struct http_response r;
	struct errmsg e = {};
	char url[256], *form = NULL;

	snprintf(url, sizeof(url), "%s/token/revocation", idp_a.url);
	assert_int_equal(http_form_add(&form, "token", token), 0);
	assert_int_equal(http_post_form(url, form, &h, &r, &e), 0);
	assert_int_equal(r.status, 200);
	http_response_free(&r);
	free(form);
}

/* The edge's path: an opaque token is asked about once, the answer comes
 * by the eventfd, is handed over once, and after revocation the same
 * token is inactive. */
static void test_introspect_opaque(void **state)
{
	struct oidc *issuing, *o;
	struct errmsg e = {};
	json_t *claims = NULL;
	long long before;
	int fired = 0, ret;
	uint64_t start;
	char *tok;

	need_node();
	tok = opaque_token(&issuing);
	o = oidc_for(idp_a.url, NULL);
	set_intro_client(o, "edge-introspect", path("job.secret"));
	before = idp_stat(&idp_a, "introspection");

	start = mono_ms();
	assert_int_equal(oidc_introspect(o, tok, &claims, &e), -EINPROGRESS);
	assert_null(claims);
	/* Asked again before the answer: still one request. */
	assert_int_equal(oidc_introspect(o, tok, &claims, &e), -EINPROGRESS);
	ret = wait_intro(o, tok, &claims, &e, 10000, &fired);
	if (ret)
		print_error("%s\n", e.msg);
	assert_int_equal(ret, 0);
	print_message("introspection answered %llu ms after the first call, discovery "
		      "included\n", (unsigned long long)(mono_ms() - start));
	assert_true(fired >= 1);
	assert_true(json_is_true(json_object_get(claims, "active")));
	assert_string_equal(jstr(claims, "sub"), "alice@acme.example");
	assert_string_equal(jstr(claims, "client_id"), "edge-user");
	assert_string_equal(jstr(claims, "aud"), OPAQUE_RESOURCE);
	assert_string_equal(json_string_value(json_array_get(json_object_get(claims, "groups"), 0)),
			    "ops");
	assert_true(json_integer_value(json_object_get(claims, "exp")) > time(NULL));
	json_decref(claims);
	claims = NULL;
	assert_int_equal(idp_stat(&idp_a, "introspection"), before + 1);

	/* Picked up once: the next call asks again. */
	start = mono_ms();
	assert_int_equal(oidc_introspect(o, tok, &claims, &e), -EINPROGRESS);
	assert_int_equal(wait_intro(o, tok, &claims, &e, 10000, NULL), 0);
	print_message("introspection answered in %llu ms\n",
		      (unsigned long long)(mono_ms() - start));
	json_decref(claims);
	claims = NULL;

	idp_revoke(tok);
	assert_int_equal(wait_intro(o, tok, &claims, &e, 10000, NULL), -EACCES);
	assert_null(claims);
	assert_non_null(strstr(e.msg, "not active"));
	assert_null(strstr(e.msg, tok));
	free(tok);
	oidc_free(o);
	oidc_free(issuing);
}

static void test_introspect_garbage_and_no_client(void **state)
{
	struct errmsg e = {};
	json_t *claims = NULL;
	struct oidc *o;

	need_node();
	o = oidc_for(idp_a.url, NULL);
	/* No client yet: nothing to ask with, answered at once. */
	assert_int_equal(oidc_introspect(o, "anything", &claims, &e), -ENOKEY);
	assert_non_null(strstr(e.msg, "no client"));

	set_intro_client(o, "edge-introspect", path("job.secret"));
	assert_int_equal(wait_intro(o, "no-such-token-0123456789", &claims, &e, 10000, NULL),
			 -EACCES);
	assert_null(claims);
	/* A JWT is no opaque token: oidc-provider refuses to introspect it. */
	assert_int_equal(wait_intro(o, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", &claims, &e, 10000, NULL),
			 -ENOKEY);
	assert_int_equal(oidc_introspect(o, "", &claims, &e), -EACCES);

	/* The wrong secret: the IdP refuses the client, the message says so. */
	set_intro_client(o, "edge-introspect", path("wrong.secret"));
	assert_int_equal(wait_intro(o, "no-such-token-0123456789", &claims, &e, 10000, NULL),
			 -ENOKEY);
	assert_non_null(strstr(e.msg, "invalid_client"));
	assert_null(strstr(e.msg, wrong_secret));

	assert_int_equal(oidc_set_introspection_client(o, "edge-introspect", path("open.secret"),
						       &e),
			 -EPERM);
	assert_int_equal(oidc_set_introspection_client(o, "", path("job.secret"), &e), -EINVAL);
	oidc_free(o);
}

/* The IdP gone: -ENOKEY as soon as the connection is refused, then at
 * once while the IdP backs off, and answers again once it is back. */
static void test_introspect_idp_down(void **state)
{
	struct idp b = { .pid = -1 };
	struct errmsg e = {};
	json_t *claims = NULL;
	struct oidc_info info;
	struct oidc *o;
	uint64_t start;

	need_node();
	snprintf(b.log, sizeof(b.log), "%s", path("idp-b.log"));
	assert_int_equal(idp_start(&b, path("clients.json"), NULL, NULL), 0);
	o = oidc_for(b.url, NULL);
	set_intro_client(o, "edge-introspect", path("job.secret"));
	wait_discovered(o, &info);
	assert_true(info.discovered);
	idp_stop(&b, SIGKILL);

	start = mono_ms();
	assert_int_equal(wait_intro(o, "tok-down-1", &claims, &e, 10000, NULL), -ENOKEY);
	assert_true(mono_ms() - start < 2000);
	assert_non_null(strstr(e.msg, b.url));
	/* Backing off: no request queued, the same answer now. */
	assert_int_equal(oidc_introspect(o, "tok-down-2", &claims, &e), -ENOKEY);

	assert_int_equal(idp_start(&b, path("clients.json"), NULL, NULL), 0);
	usleep(900 * 1000);
	assert_int_equal(wait_intro(o, "tok-down-3", &claims, &e, 10000, NULL), -EACCES);
	idp_stop(&b, SIGTERM);
	oidc_free(o);
}

/* An IdP that accepts connections and never answers: the request gives
 * up at the total timeout, and 256 requests in flight are the limit. */
static void test_introspect_timeout_and_limit(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct oidc_cfg cfg = { .connect_timeout_ms = 300, .timeout_ms = 600 };
	socklen_t len = sizeof(sa);
	struct errmsg e = {};
	json_t *claims = NULL;
	char issuer[64], tok[32];
	uint64_t start;
	struct oidc *o;
	int fd, i;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%d", ntohs(sa.sin_port));

	start = mono_ms();
	o = oidc_for(issuer, &cfg);
	set_intro_client(o, "edge-introspect", path("job.secret"));
	for (i = 0; i < 256; i++) {
		snprintf(tok, sizeof(tok), "tok-%d", i);
		assert_int_equal(oidc_introspect(o, tok, &claims, &e), -EINPROGRESS);
	}
	assert_int_equal(oidc_introspect(o, "tok-256", &claims, &e), -EBUSY);
	/* One already asked about is no new request. */
	assert_int_equal(oidc_introspect(o, "tok-7", &claims, &e), -EINPROGRESS);

	/* Discovery times out; every waiting request fails with it. */
	assert_int_equal(wait_intro(o, "tok-0", &claims, &e, 5000, NULL), -ENOKEY);
	assert_true(mono_ms() - start >= 550);
	assert_true(mono_ms() - start < 2000);
	assert_non_null(strstr(e.msg, "timed out"));
	assert_int_equal(oidc_introspect(o, "tok-255", &claims, &e), -ENOKEY);
	oidc_free(o);
	close(fd);
}

/* A scripted IdP on loopback for the answers oidc-provider never gives:
 * discovery, then each introspection request answered with body. */
struct fake_idp {
	int fd, port;
	bool no_endpoint;	/* discovery without introspection_endpoint */
	atomic_int asked;	/* introspection requests served */
	const char *body;
	char request[4096];	/* the last introspection request */
	pthread_t th;
};

static void fake_reply(int c, const char *body)
{
	char head[128];

	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
	assert_true(write(c, head, strlen(head)) > 0);
	assert_true(write(c, body, strlen(body)) >= 0);
}

static void *fake_main(void *arg)
{
	struct fake_idp *f = arg;
	char req[4096], disc[512], ep[128] = "";
	int c;

	if (!f->no_endpoint)
		snprintf(ep, sizeof(ep),
			 ",\"introspection_endpoint\":\"http://127.0.0.1:%d/introspect\"", f->port);
	snprintf(disc, sizeof(disc),
		 "{\"issuer\":\"http://127.0.0.1:%d\",\"token_endpoint\":\"http://127.0.0.1:%d/t\","
		 "\"jwks_uri\":\"http://127.0.0.1:%d/jwks\"%s}",
		 f->port, f->port, f->port, ep);
	while ((c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		ssize_t n = 0, r;

		/* A small request arrives whole soon enough. */
		usleep(20 * 1000);
		while ((r = recv(c, req + n, sizeof(req) - 1 - n, MSG_DONTWAIT)) > 0)
			n += r;
		req[n] = '\0';
		if (!strncmp(req, "GET /.well-known", 16)) {
			fake_reply(c, disc);
		} else if (!strncmp(req, "GET /jwks", 9)) {
			fake_reply(c, "{\"keys\":[]}");
		} else {
			snprintf(f->request, sizeof(f->request), "%s", req);
			fake_reply(c, f->body);
			atomic_fetch_add(&f->asked, 1);
		}
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake_idp *f, char *issuer, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	snprintf(issuer, len, "http://127.0.0.1:%d", f->port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake_idp *f)
{
	shutdown(f->fd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	close(f->fd);
}

static int fake_ask(struct oidc *o, struct fake_idp *f, const char *body, const char *tok,
		    json_t **claims, struct errmsg *e)
{
	f->body = body;
	return wait_intro(o, tok, claims, e, 5000, NULL);
}

static void test_introspect_answers(void **state)
{
	const char *tok = "opaque-Zk3+/x=";
	struct fake_idp f = {};
	char issuer[64], body[256], auth[256], basic[128];
	struct errmsg e = {};
	json_t *claims = NULL;
	struct oidc *o;

	fake_start(&f, issuer, sizeof(issuer));
	o = oidc_for(issuer, NULL);
	set_intro_client(o, "edge-introspect", path("job.secret"));

	snprintf(body, sizeof(body), "{\"active\":true,\"sub\":\"bob\",\"exp\":%lld}",
		 (long long)time(NULL) + 60);
	assert_int_equal(fake_ask(o, &f, body, tok, &claims, &e), 0);
	assert_string_equal(jstr(claims, "sub"), "bob");
	json_decref(claims);
	claims = NULL;
	/* RFC 7662 2.1 as a form, the token percent-encoded, and the client
	 * in HTTP Basic (RFC 6749 2.3.1). */
	assert_non_null(strstr(f.request, "POST /introspect "));
	assert_non_null(strstr(f.request, "application/x-www-form-urlencoded"));
	assert_non_null(strstr(f.request, "token=opaque-Zk3%2B%2Fx%3D&token_type_hint=access_token"));
	snprintf(auth, sizeof(auth), "edge-introspect:%s", secret);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)basic, (unsigned char *)auth,
					 strlen(auth)) > 0, 1);
	snprintf(auth, sizeof(auth), "Authorization: Basic %s", basic);
	assert_non_null(strstr(f.request, auth));

	/* Active, but its exp passed: inactive. */
	snprintf(body, sizeof(body), "{\"active\":true,\"sub\":\"bob\",\"exp\":%lld}",
		 (long long)time(NULL) - 5);
	assert_int_equal(fake_ask(o, &f, body, tok, &claims, &e), -EACCES);
	assert_non_null(strstr(e.msg, "expired"));
	/* No exp: RFC 7662 makes it optional. */
	assert_int_equal(fake_ask(o, &f, "{\"active\":true}", tok, &claims, &e), 0);
	json_decref(claims);
	claims = NULL;

	/* Not the protocol: no token material in what is said of it. */
	static const char *const bad[] = {
		"{\"active\":\"true\"}", "{\"sub\":\"bob\"}", "[true]", "not json",
		"{\"active\":true,\"exp\":\"soon\"}", "{\"active\":true,\"active\":false}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fake_ask(o, &f, bad[i], tok, &claims, &e), -ENOKEY);
		assert_null(claims);
		assert_non_null(strstr(e.msg, "/introspect"));
		assert_null(strstr(e.msg, "opaque-Zk3"));
	}
	/* A bad answer is no transport failure: the next request goes out. */
	assert_int_equal(fake_ask(o, &f, "{\"active\":false}", tok, &claims, &e), -EACCES);
	oidc_free(o);
	fake_stop(&f);
}

/* The queue's order, on its own: the request that came first goes out
 * first whatever slot it sits in, and answers nobody fetched go after
 * INTRO_KEEP_MS. */
static void test_introspect_queue_order(void **state)
{
	struct intro *slots[4];
	struct oidc o = { .intros = slots, .nr_intros = 4 };
	static const uint64_t seq[] = { 7, 3, 9, 5 };
	static const enum intro_state st[] = { INTRO_PENDING, INTRO_DONE, INTRO_PENDING,
					       INTRO_PENDING };

	for (int i = 0; i < 4; i++) {
		slots[i] = calloc(1, sizeof(*slots[i]));
		assert_non_null(slots[i]);
		slots[i]->seq = seq[i];
		slots[i]->state = st[i];
		slots[i]->done_ms = 1000;
	}
	/* 3 is answered: of the pending, 5 came first. */
	assert_ptr_equal(intro_next(&o), slots[3]);
	assert_int_equal(intro_expire(&o, 1000 + INTRO_KEEP_MS - 1), 1000 + INTRO_KEEP_MS);
	assert_int_equal(o.nr_intros, 4);
	assert_int_equal(intro_expire(&o, 1000 + INTRO_KEEP_MS), UINT64_MAX);
	assert_int_equal(o.nr_intros, 3);
	/* The last entry (seq 5) moved into the freed slot and stays first. */
	assert_int_equal(intro_next(&o)->seq, 5);
	intro_fail_pending(&o, "IdP down");
	assert_null(intro_next(&o));
	for (size_t i = 0; i < o.nr_intros; i++) {
		assert_int_equal(slots[i]->result, -ENOKEY);
		assert_string_equal(slots[i]->error, "IdP down");
		intro_free(slots[i]);
	}
}

/* An answer nobody picks up is dropped after 10 s: asking then is a new
 * request, not a stale answer. */
static void test_introspect_answer_expires(void **state)
{
	struct pollfd p = { .events = POLLIN };
	struct fake_idp f = { .body = "{\"active\":true,\"sub\":\"bob\"}" };
	char issuer[64];
	struct errmsg e = {};
	json_t *claims = NULL;
	uint64_t deadline;
	struct oidc *o;

	fake_start(&f, issuer, sizeof(issuer));
	o = oidc_for(issuer, NULL);
	set_intro_client(o, "edge-introspect", path("job.secret"));
	p.fd = oidc_fd(o);
	assert_int_equal(oidc_introspect(o, "tok-kept", &claims, &e), -EINPROGRESS);
	deadline = mono_ms() + 5000;
	while (atomic_load(&f.asked) < 1 && mono_ms() < deadline) {
		poll(&p, 1, 100);
		oidc_fd_clear(o);
	}
	assert_int_equal(atomic_load(&f.asked), 1);
	usleep(10200 * 1000);
	assert_int_equal(oidc_introspect(o, "tok-kept", &claims, &e), -EINPROGRESS);
	assert_int_equal(wait_intro(o, "tok-kept", &claims, &e, 5000, NULL), 0);
	assert_int_equal(atomic_load(&f.asked), 2);
	json_decref(claims);
	oidc_free(o);
	fake_stop(&f);
}

/* An IdP without introspection: refused at once, with the reason. */
static void test_introspect_no_endpoint(void **state)
{
	struct fake_idp f = { .no_endpoint = true };
	struct oidc_info info;
	char issuer[64];
	struct errmsg e = {};
	json_t *claims = NULL;
	struct oidc *o;

	fake_start(&f, issuer, sizeof(issuer));
	o = oidc_for(issuer, NULL);
	set_intro_client(o, "edge-introspect", path("job.secret"));
	/* Asked before discovery finished: answered once it has. */
	assert_int_equal(wait_intro(o, "tok-x", &claims, &e, 5000, NULL), -ENOKEY);
	assert_non_null(strstr(e.msg, "no introspection_endpoint"));
	wait_discovered(o, &info);
	assert_string_equal(info.introspection_endpoint, "");
	assert_int_equal(oidc_introspect(o, "tok-y", &claims, &e), -ENOKEY);
	assert_int_equal(atomic_load(&f.asked), 0);
	oidc_free(o);
	fake_stop(&f);
}

/* Last: nothing this run printed, nor what the IdPs logged, holds a
 * client secret, while the failures above were logged. */
static void test_no_secret_in_output(void **state)
{
	const char *logs[] = { stderr_log, path("idp-a.log"), path("idp-b.log"),
			       path("idp-c.log") };
	char *out;

	fflush(stderr);
	out = read_file(stderr_log);
	if (node_bin[0])
		assert_non_null(strstr(out, "invalid_client"));
	free(out);
	for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
		out = read_file(logs[i]);
		assert_null(strstr(out, secret));
		assert_null(strstr(out, wrong_secret));
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_secret_checked_where_read),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_discovery_issuer_mismatch),
		cmocka_unit_test(test_token_client_secret),
		cmocka_unit_test(test_token_private_key_jwt),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_refresh_before_expiry),
		cmocka_unit_test(test_idp_down_fail_closed),
		cmocka_unit_test(test_jwks_refetch_rate_limited),
		cmocka_unit_test(test_cert_bound_token),
		cmocka_unit_test(test_introspect_opaque),
		cmocka_unit_test(test_introspect_garbage_and_no_client),
		cmocka_unit_test(test_introspect_idp_down),
		cmocka_unit_test(test_introspect_timeout_and_limit),
		cmocka_unit_test(test_introspect_answers),
		cmocka_unit_test(test_introspect_queue_order),
		cmocka_unit_test(test_introspect_answer_expires),
		cmocka_unit_test(test_introspect_no_endpoint),
		cmocka_unit_test(test_no_secret_in_output),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
