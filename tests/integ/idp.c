// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "env.h"
#include "harness.h"
#include "idp.h"
#include "idp_launch.h"

#define IDP_SETUP "tests/oidc/setup.sh"
#define IDP_MODULE "tests/oidc/node_modules/oidc-provider/package.json"
#define SETUP_MS 300000
#define CMD_MS 20000
#define STOP_MS 5000
#define TOKEN_MS 5000
#define TOKEN_BODY_MAX 16384

int idp_check(char *why, size_t len)
{
	char *argv[] = { "sh", "-c", "command -v node", NULL };
	char *out = NULL, *err = NULL;
	int ret;

	ret = run_argv(argv, &out, &err, CMD_MS);
	free(out);
	free(err);
	if (ret) {
		snprintf(why, len, "node is not installed (make deps installs nodejs and npm)");
		return -ENOENT;
	}
	if (!access(IDP_MODULE, R_OK))
		return 0;
	argv[0] = IDP_SETUP;
	argv[1] = NULL;
	ret = run_argv(argv, &out, &err, SETUP_MS);
	if (ret)
		snprintf(why, len, "%s: exit %d: %.200s", IDP_SETUP, ret, err ? err : "");
	free(out);
	free(err);
	return ret ? -EIO : 0;
}

static int write_clients(const char *path, const struct idp_client *clients, int nr)
{
	json_t *arr = json_array();
	int ret;

	for (int i = 0; i < nr; i++) {
		const struct idp_client *c = &clients[i];
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:b}", "client_id", c->client_id, "client_secret",
			      c->secret, "token_endpoint_auth_method", "client_secret_basic",
			      "tls_client_certificate_bound_access_tokens", c->bound);

		if (c->groups)
			json_object_set_new(o, "claims", json_pack("{s:[s]}", "groups", c->groups));
		if (c->token_ttl)
			json_object_set_new(o, "token_ttl", json_integer(c->token_ttl));
		json_array_append_new(arr, o);
	}
	/* The file holds the client secrets. */
	ret = json_dump_file(arr, path, JSON_INDENT(1)) ? -EIO : 0;
	json_decref(arr);
	if (!ret && chmod(path, 0600))
		ret = -errno;
	return ret;
}

/* A self-signed P-256 certificate for addr, the IdP's and its trust anchor. */
static int make_cert(const char *crt, const char *key, const char *addr)
{
	char san[80];
	char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec",
			 "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
			 "-subj", "/CN=sluice-test-idp", "-addext", san,
			 "-keyout", (char *)key, "-out", (char *)crt, NULL };
	char *out = NULL, *err = NULL;
	int ret;

	snprintf(san, sizeof(san), "subjectAltName=IP:%s", addr);
	ret = run_argv(argv, &out, &err, CMD_MS);
	if (ret)
		printf("openssl req: exit %d\n%s", ret, err ? err : "");
	free(out);
	free(err);
	return ret ? -EIO : 0;
}

/* In the IdP's child: the runner's signal handling undone, into the
 * node's namespace. */
static int idp_child_setup(void *arg)
{
	const struct idp *idp = arg;

	child_reset_signals();
	return netns_join(idp->ns);
}

int idp_start(struct sl_env *env, char node, const struct idp_client *clients, int nr,
	      struct idp *idp)
{
	const char *addr = node == 'b' ? env->ip4_b : env->ip4_a;
	char dir[PATH_MAX], conf[PATH_MAX], key[PATH_MAX];
	char *args[] = { "--clients", conf, "--host", (char *)addr, "--port", "0",
			 "--tls-cert", idp->ca, "--tls-key", key, NULL };
	int ret;

	memset(idp, 0, sizeof(*idp));
	idp->pid = -1;
	snprintf(idp->ns, sizeof(idp->ns), "%s", node == 'b' ? env->ns_b : env->ns_a);
	env_path(env, IDP_DIR, dir, sizeof(dir));
	env_path(env, IDP_DIR "/clients.json", conf, sizeof(conf));
	env_path(env, IDP_CA, idp->ca, sizeof(idp->ca));
	env_path(env, IDP_DIR "/idp.key", key, sizeof(key));
	env_path(env, IDP_DIR "/idp.log", idp->log, sizeof(idp->log));
	if ((mkdir(dir, 0700) && errno != EEXIST) || write_clients(conf, clients, nr) ||
	    (access(idp->ca, R_OK) && make_cert(idp->ca, key, addr)))
		return -EIO;
	ret = idp_launch(args, idp->log, idp_child_setup, idp, idp->url, &idp->pid);
	if (ret) {
		printf("the IdP did not get ready (its stderr is %s)\n", idp->log);
		return ret;
	}
	env_track_child(env, idp->pid);
	return 0;
}

void idp_stop(struct sl_env *env, struct idp *idp)
{
	if (idp->pid <= 0)
		return;
	idp_kill(idp->pid, SIGTERM, STOP_MS);
	env_untrack_child(env, idp->pid);
	idp->pid = -1;
}

struct idp_req {
	const char *ns;
	const char *url;
	const char *form;
	const struct http_opts *opts;
	struct http_response *resp;
	struct errmsg *err;
	int ret;
};

/* setns() moves only the calling thread: the request gets one of its own. */
static void *idp_req_main(void *arg)
{
	struct idp_req *r = arg;

	r->ret = netns_join(r->ns);
	if (r->ret)
		errmsg_set(r->err, r->ret, "cannot join %s", r->ns);
	else if (r->form)
		r->ret = http_post_form(r->url, r->form, r->opts, r->resp, r->err);
	else
		r->ret = http_get(r->url, r->opts, r->resp, r->err);
	return NULL;
}

int idp_request(const struct idp *idp, const char *path, const char *form,
		const struct http_opts *opts, struct http_response *resp, struct errmsg *err)
{
	struct http_opts o = *opts;
	char url[256];
	struct idp_req r = {
	    .ns = idp->ns, .url = url, .form = form, .opts = &o, .resp = resp, .err = err };
	pthread_t th;
	int ret;

	if (!o.ca_file)
		o.ca_file = idp->ca;
	snprintf(url, sizeof(url), "%s%s", idp->url, path);
	ret = pthread_create(&th, NULL, idp_req_main, &r);
	if (ret)
		return errmsg_set(err, -ret, "pthread_create: %s", strerror(ret));
	pthread_join(th, NULL);
	return r.ret;
}

/* The body holds the token: wiped before it is freed. */
static int token_from(struct http_response *r, char **out, struct errmsg *err)
{
	const char *tok;
	json_t *j;

	if (r->status != 200)
		return errmsg_set(err, -EACCES, "the IdP's /token answered HTTP %ld", r->status);
	j = json_loads(r->body, 0, NULL);
	tok = json_string_value(json_object_get(j, "access_token"));
	*out = tok ? strdup(tok) : NULL;
	json_decref(j);
	if (!tok)
		return errmsg_set(err, -EPROTO, "the IdP's /token answer has no access_token");
	return *out ? 0 : -ENOMEM;
}

/* client_secret_basic credentials for o; false when out of memory. */
static bool basic_auth(struct http_opts *o, const char *client_id, const char *secret)
{
	o->username = http_escape(client_id);
	o->password = http_escape(secret);
	return o->username && o->password;
}

static void basic_auth_free(struct http_opts *o)
{
	if (o->password)
		OPENSSL_cleanse((char *)o->password, strlen(o->password));
	free((char *)o->username);
	free((char *)o->password);
}

static void response_wipe(struct http_response *r)
{
	if (r->body)
		OPENSSL_cleanse(r->body, r->len);
	http_response_free(r);
}

int idp_token(const struct idp *idp, const char *client_id, const char *secret,
	      const char *resource, char **out, struct errmsg *err)
{
	struct http_opts o = { .connect_timeout_ms = TOKEN_MS, .timeout_ms = TOKEN_MS,
			       .max_body = TOKEN_BODY_MAX };
	struct http_response r = {};
	char *form = NULL;
	int ret = -ENOMEM;

	*out = NULL;
	if (basic_auth(&o, client_id, secret) &&
	    !http_form_add(&form, "grant_type", "client_credentials") &&
	    (!resource || !http_form_add(&form, "resource", resource)))
		ret = idp_request(idp, "/token", form, &o, &r, err);
	if (!ret)
		ret = token_from(&r, out, err);
	response_wipe(&r);
	basic_auth_free(&o);
	free(form);
	return ret;
}

int idp_revoke(const struct idp *idp, const char *client_id, const char *secret, const char *token,
	       struct errmsg *err)
{
	struct http_opts o = { .connect_timeout_ms = TOKEN_MS, .timeout_ms = TOKEN_MS,
			       .max_body = TOKEN_BODY_MAX };
	struct http_response r = {};
	char *form = NULL;
	int ret = -ENOMEM;

	if (basic_auth(&o, client_id, secret) && !http_form_add(&form, "token", token))
		ret = idp_request(idp, "/token/revocation", form, &o, &r, err);
	if (!ret && r.status != 200)
		ret = errmsg_set(err, -EACCES, "the IdP's /token/revocation answered HTTP %ld",
				 r.status);
	response_wipe(&r);
	basic_auth_free(&o);
	if (form)
		OPENSSL_cleanse(form, strlen(form));
	free(form);
	return ret;
}
