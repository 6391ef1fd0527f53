// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's local HTTP listener: a route table on one httpd.h daemon.
 * Issues 13 (/metrics) and 16 (health) add their routes here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "local_http.h"

struct local_http {
	struct local_http_deps deps;
	struct httpd *h;
};

static const struct pki_creds *creds(const struct local_http *l)
{
	return l->deps.creds ? l->deps.creds(l->deps.ctx) : NULL;
}

static enum MHD_Result serve_ca(struct local_http *l, struct httpd_conn *hc)
{
	return httpd_serve_ca(hc->c, creds(l));
}

static enum MHD_Result serve_jwks(struct local_http *l, struct httpd_conn *hc)
{
	return httpd_serve_jwks(hc->c, creds(l));
}

static enum MHD_Result serve_metrics(struct local_http *l, struct httpd_conn *hc)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;
	char *text;

	if (!l->deps.metrics.dp)
		return httpd_send(hc->c, 404, "text/plain", "not-found: no metrics here\n");
	if (metrics_render(&l->deps.metrics, &text, &len))
		return httpd_send(hc->c, 503, "text/plain", "out-of-memory: try again\n");
	ret = httpd_response("text/plain; version=0.0.4; charset=utf-8", text, len, &r);
	free(text);
	if (ret != MHD_YES)
		return ret;
	ret = MHD_queue_response(hc->c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static const struct route {
	const char *path;
	enum MHD_Result (*serve)(struct local_http *l, struct httpd_conn *hc);
} routes[] = {
	{ "/metrics", serve_metrics },
	{ "/v1/ca.pem", serve_ca },
	{ "/v1/jwks.json", serve_jwks },
};

#define NR_ROUTES (sizeof(routes) / sizeof(routes[0]))

static enum MHD_Result not_found(struct httpd_conn *hc)
{
	char body[256];
	size_t n;

	n = snprintf(body, sizeof(body), "not-found: this listener serves");
	for (size_t i = 0; i < NR_ROUTES && n < sizeof(body); i++)
		n += snprintf(body + n, sizeof(body) - n, " %s", routes[i].path);
	if (n < sizeof(body) - 1)
		strcat(body, "\n");
	return httpd_send(hc->c, 404, "text/plain", body);
}

static enum MHD_Result on_request(void *ctx, struct httpd_conn *hc, const char *url)
{
	for (size_t i = 0; i < NR_ROUTES; i++)
		if (!strcmp(url, routes[i].path))
			return routes[i].serve(ctx, hc);
	return not_found(hc);
}

int local_http_new(const struct config *cfg, const struct local_http_deps *deps,
		   struct local_http **out, struct errmsg *err)
{
	struct local_http *l = calloc(1, sizeof(*l));
	int fd, ret;

	if (!l)
		return errmsg_set(err, -ENOMEM, "listen.http: out of memory");
	l->deps = *deps;
	fd = httpd_tcp_socket(&cfg->http, "listen.http",
			      "is another agent running? set listen.http to another port or off",
			      err);
	ret = fd < 0 ? fd : httpd_start(fd, "listen.http", on_request, l, &l->h, err);
	if (ret) {
		free(l);
		return ret;
	}
	*out = l;
	return 0;
}

int local_http_fd(const struct local_http *l)
{
	return httpd_fd(l->h);
}

void local_http_run(void *ctx)
{
	struct local_http *l = ctx;

	httpd_run(l->h);
}

void local_http_tick(struct local_http *l)
{
	httpd_tick(l->h);
}

unsigned int local_http_port(const struct local_http *l)
{
	return httpd_port(l->h);
}

void local_http_free(struct local_http *l)
{
	if (!l)
		return;
	httpd_free(l->h);
	free(l);
}
