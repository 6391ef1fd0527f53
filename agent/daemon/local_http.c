// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's local HTTP listener: a route table on one httpd.h daemon.
 * Issues 13 (/metrics) and 16 (health) add their routes here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "httpd.h"
#include "local_http.h"

/* Scrapes rendered at once; Prometheus scrapes a target one at a time, so
 * more means a stuck scraper or a flood, answered 503. */
#define SCRAPES_MAX 4

struct local_http {
	struct local_http_deps deps;
	struct httpd *h;
	/* What the loop watches: httpd's epoll fd and done_fd, which a
	 * render thread signals when its scrape is ready. */
	int epoll_fd, done_fd;
	struct scrape *scrapes[SCRAPES_MAX];	/* NULL: a free slot */
};

/* One /metrics request: the agent's part is rendered in the loop, the
 * maps' part (most of the bytes) in a thread of its own, so a scrape of
 * thousands of series never stalls the flows the loop relays. */
struct scrape {
	struct local_http *l;
	struct httpd_conn *hc;
	pthread_t thread;
	bool joined;
	struct strbuf text;
	int ret;
	atomic_bool done;
	int slot;		/* in local_http.scrapes */
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

static void *render_maps(void *arg)
{
	struct scrape *s = arg;
	uint64_t one = 1;

	s->ret = metrics_render_maps(s->l->deps.metrics.dp, &s->text);
	atomic_store(&s->done, true);
	if (write(s->l->done_fd, &one, sizeof(one)) < 0)
		s->ret = s->ret ? s->ret : -errno;
	return NULL;
}

static void scrape_join(struct scrape *s)
{
	if (!s->joined)
		pthread_join(s->thread, NULL);
	s->joined = true;
}

static void scrape_release(void *data)
{
	struct scrape *s = data;
	struct local_http *l = s->l;

	scrape_join(s);
	l->scrapes[s->slot] = NULL;
	strbuf_release(&s->text);
	free(s);
}

static enum MHD_Result scrape_start(struct local_http *l, struct httpd_conn *hc)
{
	char body[128];
	struct scrape *s;
	int slot, ret;

	for (slot = 0; slot < SCRAPES_MAX && l->scrapes[slot]; slot++)
		;
	if (slot == SCRAPES_MAX) {
		snprintf(body, sizeof(body), "busy: %d scrapes rendering; try again\n",
			 SCRAPES_MAX);
		return httpd_send(hc->c, 503, "text/plain", body);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return httpd_send(hc->c, 503, "text/plain", "out-of-memory: try again\n");
	s->l = l;
	s->hc = hc;
	s->slot = slot;
	strbuf_init(&s->text, NULL, 0);
	metrics_render_agent(&l->deps.metrics, &s->text);
	ret = pthread_create(&s->thread, NULL, render_maps, s);
	if (!ret)
		pthread_setname_np(s->thread, "sluiced-metrics");
	if (ret) {
		strbuf_release(&s->text);
		free(s);
		snprintf(body, sizeof(body), "no-thread: cannot start a render thread: %s\n",
			 strerror(ret));
		return httpd_send(hc->c, 503, "text/plain", body);
	}
	l->scrapes[slot] = s;
	hc->data = s;
	hc->release = scrape_release;
	httpd_suspend(hc);
	return MHD_YES;
}

static enum MHD_Result serve_metrics(struct local_http *l, struct httpd_conn *hc)
{
	struct scrape *s = hc->data;
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = 0;
	char *text;

	if (!l->deps.metrics.dp)
		return httpd_send(hc->c, 404, "text/plain", "not-found: no metrics here\n");
	if (!s)
		return scrape_start(l, hc);
	/* Asked again by httpd_tick() before the render is done. */
	if (!atomic_load(&s->done)) {
		httpd_suspend(hc);
		return MHD_YES;
	}
	/* Rendered: the scrape's slot is free again before the body is sent
	 * (a slow reader does not hold it), and the body is the response's. */
	hc->data = NULL;
	hc->release = NULL;
	scrape_join(s);
	text = s->ret ? NULL : strbuf_detach(&s->text, &len);
	scrape_release(s);
	if (!text)
		return httpd_send(hc->c, 503, "text/plain", "out-of-memory: try again\n");
	ret = httpd_response_take("text/plain; version=0.0.4; charset=utf-8", text, len, &r);
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

/* One fd for the loop to watch: httpd's and done_fd, both level-triggered. */
static int watch(struct local_http *l, struct errmsg *err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[] = { httpd_fd(l->h), -1 };

	l->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	fds[1] = l->done_fd;
	if (l->done_fd < 0 || l->epoll_fd < 0)
		return errmsg_set(err, -errno, "listen.http: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev))
			return errmsg_set(err, -errno, "listen.http: cannot watch fd %d: %s",
					  fds[i], strerror(errno));
	}
	return 0;
}

int local_http_new(const struct config *cfg, const struct local_http_deps *deps,
		   struct local_http **out, struct errmsg *err)
{
	struct local_http *l = calloc(1, sizeof(*l));
	int fd, ret;

	if (!l)
		return errmsg_set(err, -ENOMEM, "listen.http: out of memory");
	l->deps = *deps;
	l->epoll_fd = l->done_fd = -1;
	fd = httpd_tcp_socket(&cfg->http, "listen.http",
			      "is another agent running? set listen.http to another port or off",
			      err);
	ret = fd < 0 ? fd : httpd_start(fd, "listen.http", on_request, l, &l->h, err);
	if (!ret)
		ret = watch(l, err);
	if (ret) {
		local_http_free(l);
		return ret;
	}
	*out = l;
	return 0;
}

int local_http_fd(const struct local_http *l)
{
	return l->epoll_fd;
}

void local_http_run(void *ctx)
{
	struct local_http *l = ctx;
	uint64_t n;

	if (read(l->done_fd, &n, sizeof(n)) == sizeof(n)) {
		for (int i = 0; i < SCRAPES_MAX; i++)
			if (l->scrapes[i] && atomic_load(&l->scrapes[i]->done))
				httpd_resume(l->scrapes[i]->hc);
	}
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
	/* Each ends with its request, as httpd_free() ends them all. */
	for (int i = 0; i < SCRAPES_MAX; i++)
		if (l->scrapes[i])
			scrape_join(l->scrapes[i]);
	httpd_free(l->h);
	if (l->epoll_fd >= 0)
		close(l->epoll_fd);
	if (l->done_fd >= 0)
		close(l->done_fd);
	free(l);
}
