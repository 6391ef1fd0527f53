// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's local HTTP listener on 127.0.0.1, port 0, with credentials
 * that sluicectl's code wrote to disk and the agent's code read back,
 * asked with libcurl as a service on the host would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "jwks.h"
#include "local_http.h"
#include "pki.h"
#include "pki_ca.h"
#include "unit/curl_reply.h"

#define TD "acme.example"

static struct {
	char dir[64];
	char ca_pem[8192];
	struct pki_creds *creds;
	/* What the listener is handed; set here, read by the server thread. */
	const struct pki_creds *_Atomic current;
	struct config cfg;
	struct local_http *http;
	unsigned int port;
	pthread_t thread;
	atomic_bool stop;
} f;

static const struct pki_creds *current_creds(void *ctx)
{
	return atomic_load((const struct pki_creds *_Atomic *)ctx);
}

static void *serve(void *arg)
{
	struct pollfd pfd = { .fd = local_http_fd(f.http), .events = POLLIN };

	while (!atomic_load(&f.stop)) {
		poll(&pfd, 1, 20);
		local_http_run(f.http);
	}
	return NULL;
}

static int read_file(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return -1;
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return n ? 0 : -1;
}

static int setup(void **state)
{
	struct local_http_deps deps = { .creds = current_creds, .ctx = &f.current };
	struct sockaddr_in *sin = (struct sockaddr_in *)&f.cfg.http;
	char ca_dir[96], node_dir[96], ca[128], cert[128], key[128];
	struct pki_paths paths = { .ca = ca, .cert = cert, .key = key };
	struct errmsg err = {};
	time_t now = time(NULL);

	snprintf(f.dir, sizeof(f.dir), "/tmp/test_local_http.XXXXXX");
	if (!mkdtemp(f.dir))
		return -1;
	snprintf(ca_dir, sizeof(ca_dir), "%s/ca", f.dir);
	snprintf(node_dir, sizeof(node_dir), "%s/node", f.dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", node_dir);
	snprintf(cert, sizeof(cert), "%s/node.crt", node_dir);
	snprintf(key, sizeof(key), "%s/node.key", node_dir);
	if (pki_ca_init(ca_dir, TD, 1, false, &err) ||
	    pki_issue(ca_dir, "node-a", node_dir, now - 60, now + 3600, &err) ||
	    pki_load(&paths, TD, "node-a", &f.creds, &err) ||
	    read_file(ca, f.ca_pem, sizeof(f.ca_pem))) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	f.current = f.creds;
	f.cfg.identity.enabled = true;
	f.cfg.has_http = true;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (local_http_new(&f.cfg, &deps, &f.http, &err)) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	f.port = local_http_port(f.http);
	if (!f.port || pthread_create(&f.thread, NULL, serve, NULL))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	atomic_store(&f.stop, true);
	pthread_join(f.thread, NULL);
	local_http_free(f.http);
	pki_creds_free(f.creds);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f.dir);
	return system(cmd) ? -1 : 0;
}

static void ask(const char *path, const char *method, struct reply *r)
{
	CURL *c = curl_easy_init();
	char url[128];

	assert_non_null(c);
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", f.port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
}

static bool has_header(const struct reply *r, const char *line)
{
	for (const char *p = r->headers; (p = strcasestr(p, line)); p++)
		if (p == r->headers || p[-1] == '\n')
			return true;
	return false;
}

static void test_ca_pem(void **state)
{
	struct reply r;

	ask("/v1/ca.pem", "GET", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, f.ca_pem);
	assert_true(has_header(&r, "Content-Type: application/x-pem-file"));
	/* The CA rotates too: nobody between us and the client keeps it. */
	assert_true(has_header(&r, "Cache-Control: no-store"));
}

static void test_jwks_is_node_key(void **state)
{
	EVP_PKEY *pkey = NULL;
	struct errmsg err = {};
	struct jwks *set;
	struct reply r;
	json_t *doc;

	ask("/v1/jwks.json", "GET", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: application/jwk-set+json"));
	assert_true(has_header(&r, "Cache-Control: no-store"));
	doc = json_loads(r.body, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_array_size(json_object_get(doc, "keys")), 1);
	assert_int_equal(jwks_parse(r.body, r.blen, &set, &err), 0);
	assert_int_equal(jwks_get_key(set, json_string_value(json_object_get(
						   json_array_get(json_object_get(doc, "keys"), 0),
						   "kid")),
				      &pkey),
			 0);
	assert_int_equal(EVP_PKEY_eq(pkey, X509_get0_pubkey(f.creds->cert)), 1);
	EVP_PKEY_free(pkey);
	jwks_free(set);
	json_decref(doc);
}

static void test_head(void **state)
{
	struct reply r;

	ask("/v1/ca.pem", "HEAD", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.blen, 0);
}

/* The edge's decision endpoint is not reachable here, whatever the method. */
static void test_no_authz_404_405(void **state)
{
	struct reply r;

	ask("/v1/authz", "GET", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body,
			    "not-found: this listener serves /metrics /v1/ca.pem /v1/jwks.json\n");
	ask("/metricz", "GET", &r);
	assert_int_equal(r.status, 404);
	/* No datapath behind this listener: nothing to render. */
	ask("/metrics", "GET", &r);
	assert_int_equal(r.status, 404);
	ask("/v1/ca.pem", "POST", &r);
	assert_int_equal(r.status, 405);
	ask("/v1/jwks.json", "DELETE", &r);
	assert_int_equal(r.status, 405);
}

/* The credentials are asked per request: without them (mid-rotation, or
 * none loaded) the answer is 503, and the next request sees them again. */
static void test_creds_per_request(void **state)
{
	struct reply r;

	f.current = NULL;
	ask("/v1/jwks.json", "GET", &r);
	assert_int_equal(r.status, 503);
	ask("/v1/ca.pem", "GET", &r);
	assert_int_equal(r.status, 503);
	f.current = f.creds;
	ask("/v1/ca.pem", "GET", &r);
	assert_int_equal(r.status, 200);
}

/* A second agent on the same port fails at start, saying what to do. */
static void test_port_in_use(void **state)
{
	struct local_http_deps deps = { .creds = current_creds, .ctx = &f.current };
	struct sockaddr_in *sin = (struct sockaddr_in *)&f.cfg.http;
	struct local_http *second = NULL;
	struct errmsg err = {};
	char want[256];

	sin->sin_port = htons(f.port);
	assert_int_equal(local_http_new(&f.cfg, &deps, &second, &err), -EADDRINUSE);
	sin->sin_port = 0;
	assert_null(second);
	snprintf(want, sizeof(want),
		 "listen.http 127.0.0.1:%u: Address already in use (is another agent running? "
		 "set listen.http to another port or off)",
		 f.port);
	assert_string_equal(err.msg, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_pem),
		cmocka_unit_test(test_jwks_is_node_key),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_no_authz_404_405),
		cmocka_unit_test(test_creds_per_request),
		cmocka_unit_test(test_port_in_use),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
