// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's HTTP side: an httpd.h daemon per listen socket (edge.socket,
 * edge.listen), answering nginx's auth_request subrequests with
 * edge_decide() and serving the CA and the node's JWKS.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "edge_int.h"
#include "httpd.h"
#include "log.h"
#include "unixsock.h"

/* How long a request waits for the IdP's introspection answer. */
#define EDGE_PENDING_MAX_S 10

/* The answer's headers; false when one could not be added. */
static bool add_headers(struct MHD_Response *r, const struct edge_answer *ans)
{
	bool ok = true;

	if (ans->status == 200) {
		ok &= MHD_add_response_header(r, "X-Sluice-Assertion", ans->assertion) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Caller", ans->caller) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Roles", ans->roles) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Rule", ans->rule) == MHD_YES;
		return ok;
	}
	ok &= MHD_add_response_header(r, "X-Sluice-Reason", ans->reason) == MHD_YES;
	if (ans->rule[0])
		ok &= MHD_add_response_header(r, "X-Sluice-Rule", ans->rule) == MHD_YES;
	if (ans->status == 401)
		ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					      ans->www_authenticate) == MHD_YES;
	return ok;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, const struct edge_answer *ans)
{
	char body[EDGE_REASON_MAX + 1];
	struct MHD_Response *r;
	enum MHD_Result ret;
	int n = 0;

	/* nginx's error_page turns a 401/403 into the client's answer: the
	 * reason is its body. An allow has none. */
	if (ans->status != 200)
		n = snprintf(body, sizeof(body), "%s\n", ans->reason);
	if (httpd_response(n ? "text/plain; charset=utf-8" : NULL, body, n, &r) != MHD_YES)
		return MHD_NO;
	if (!add_headers(r, ans)) {
		MHD_destroy_response(r);
		pr_warn("edge: an answer header was refused; answering 500");
		return httpd_send(c, 500, "text/plain", "internal-error: answer not encodable\n");
	}
	ret = MHD_queue_response(c, ans->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_authz(struct edge *e, struct httpd_conn *hc)
{
	struct MHD_Connection *c = hc->c;
	struct edge_req req = {
		.authorization = httpd_header(c, MHD_HTTP_HEADER_AUTHORIZATION),
		.method = httpd_header(c, "X-Original-Method"),
		.uri = httpd_header(c, "X-Original-URI"),
		.host = httpd_header(c, "X-Original-Host"),
		.remote_addr = httpd_header(c, "X-Original-Remote-Addr"),
		.service = httpd_header(c, "X-Sluice-Service"),
		.generation = httpd_header(c, "X-Sluice-Generation"),
		.traceparent = httpd_header(c, "Traceparent"),
	};
	struct edge_answer ans;
	enum MHD_Result ret;

	edge_decide(e, &req, &ans);
	if (ans.status == EDGE_PENDING) {
		if (mono_ms() - hc->since_ms < EDGE_PENDING_MAX_S * 1000ull) {
			httpd_suspend(hc);
			return MHD_YES;
		}
		ans.status = 503;
		snprintf(ans.reason, sizeof(ans.reason),
			 "introspection-timeout: the IdP did not answer in %d s",
			 EDGE_PENDING_MAX_S);
	}
	ret = send_answer(c, &ans);
	edge_answer_release(&ans);
	return ret;
}

static enum MHD_Result on_request(void *ctx, struct httpd_conn *hc, const char *url)
{
	struct edge *e = ctx;
	const struct pki_creds *creds;

	if (!strcmp(url, "/v1/authz"))
		return serve_authz(e, hc);
	/* The credentials rotate: asked per request. */
	creds = e->deps.creds ? e->deps.creds(e->deps.ctx) : NULL;
	if (!strcmp(url, "/v1/ca.pem"))
		return httpd_serve_ca(hc->c, creds);
	if (!strcmp(url, "/v1/jwks.json"))
		return httpd_serve_jwks(hc->c, creds);
	return httpd_send(hc->c, 404, "text/plain",
			  "not-found: this agent serves /v1/authz, /v1/ca.pem and "
			  "/v1/jwks.json\n");
}

static int daemon_start(struct edge *e, int fd, const char *what, struct errmsg *err)
{
	int ret;

	if (fd < 0)
		return fd;
	ret = httpd_start(fd, what, on_request, e, &e->daemons[e->nr_daemons], err);
	if (!ret)
		e->nr_daemons++;
	return ret;
}

static int unix_socket(struct edge *e, const char *path, struct errmsg *err)
{
	int fd = unixsock_listen(path, "edge.socket", e->cfg->edge.socket_gid, false, err);

	if (fd >= 0)
		e->socket_path = strdup(path);
	return fd;
}

int edge_new(const struct config *cfg, const struct edge_deps *deps, struct edge **out,
	     struct errmsg *err)
{
	struct edge *e;
	int ret;

	ret = edge_core_new(cfg, deps, &e, err);
	if (ret)
		return ret;
	ret = daemon_start(e, unix_socket(e, cfg->edge.socket, err), cfg->edge.socket, err);
	if (!ret && cfg->edge.has_listen)
		ret = daemon_start(e,
				   httpd_tcp_socket(&cfg->edge.listen, "edge.listen",
						    "is another agent running?", err),
				   "edge.listen", err);
	if (ret) {
		edge_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

int edge_fds(const struct edge *e, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < e->nr_daemons && n < max; i++)
		if (httpd_fd(e->daemons[i]) >= 0)
			fds[n++] = httpd_fd(e->daemons[i]);
	return n;
}

void edge_run(void *ctx)
{
	struct edge *e = ctx;

	for (int i = 0; i < e->nr_daemons; i++)
		httpd_run(e->daemons[i]);
}

void edge_tick(struct edge *e)
{
	/* Waiting requests look again once a second, so a lost wake-up or
	 * an IdP that never answers costs at most EDGE_PENDING_MAX_S. */
	for (int i = 0; i < e->nr_daemons; i++)
		httpd_tick(e->daemons[i]);
}

void edge_oidc_event(struct edge *e)
{
	edge_tick(e);
}

void edge_free(struct edge *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nr_daemons; i++)
		httpd_free(e->daemons[i]);
	if (e->socket_path) {
		unlink(e->socket_path);
		free(e->socket_path);
	}
	edge_core_free(e);
}
