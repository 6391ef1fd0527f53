// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the OIDC client makes of an IdP's answers: the discovery document
 * (discover()), the token response (fetch_token(), client_secret_basic),
 * the JWKS response (fetch_jwks()) and the introspection response
 * (fetch_introspect(), RFC 7662), each served by a loopback IdP whose
 * issuer is http://127.0.0.1:14317.
 *
 * The first byte picks the request (byte % 4: discovery, token, JWKS,
 * introspection) and the HTTP status ((byte / 4) % 8 indexes statuses[]);
 * the rest is the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "oidc_int.h"

#define IDP_PORT 14317

static const int statuses[] = { 200, 200, 200, 400, 401, 429, 500, 302 };

static struct oidc idp;
static struct workload client = { .name = "spiffe://acme.example/job/1234",
				  .client_id = "job-1234",
				  .auth = OIDC_AUTH_CLIENT_SECRET_BASIC };
static char issuer[64], secret_path[] = "/tmp/sluice-fuzz-secret.XXXXXX";

static void remove_secret(void)
{
	unlink(secret_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd, port = fuzz_http_start(IDP_PORT);

	snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%d", port);
	idp.issuer = issuer;
	idp.connect_timeout_ms = 2000;
	idp.timeout_ms = 2000;
	snprintf(idp.token_endpoint, sizeof(idp.token_endpoint), "%s/token", issuer);
	snprintf(idp.jwks_uri, sizeof(idp.jwks_uri), "%s/jwks", issuer);
	snprintf(idp.intro_endpoint, sizeof(idp.intro_endpoint), "%s/introspect", issuer);
	/* mkstemp makes it 0600, as read_secret wants. */
	fd = mkstemp(secret_path);
	if (fd < 0 || write(fd, "s3cret\n", 7) != 7)
		abort();
	close(fd);
	atexit(remove_secret);
	client.cred_file = secret_path;
	return 0;
}

static void respond(int status, const uint8_t *body, size_t len)
{
	char hdr[160];
	uint8_t *buf;
	int n;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     status, len);
	buf = malloc(n + len);
	if (!buf)
		abort();
	memcpy(buf, hdr, n);
	memcpy(buf + n, body, len);
	fuzz_http_respond(buf, n + len);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char token_ep[OIDC_URL_MAX], jwks_uri[OIDC_URL_MAX], intro_ep[OIDC_URL_MAX];
	struct token_result tok = {};
	json_t *claims = NULL;
	char *jwks = NULL;
	struct errmsg err;
	int active;

	if (!size)
		return 0;
	respond(statuses[(data[0] / 4) % 8], data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		discover(&idp, token_ep, jwks_uri, intro_ep, &err);
		break;
	case 1:
		if (fetch_token(&idp, &client, &tok, &err) == FAIL_NONE &&
		    (!tok.token || strlen(tok.token) != tok.len || tok.expires_in <= 0))
			abort();
		free(tok.token);
		break;
	case 2:
		if (fetch_jwks(&idp, &jwks, &err) == FAIL_NONE && !jwks)
			abort();
		free(jwks);
		break;
	default:
		/* An active answer is an object; anything else leaves none. */
		if (fetch_introspect(&idp, "sluice-edge", secret_path, "opaque-token", &active,
				     &claims, &err) == FAIL_NONE &&
		    !active != !!claims)
			abort();
		json_decref(claims);
		break;
	}
	return 0;
}
