// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The proxy's event loop: its listeners and accepts, the timer that expires
 * idle flows and handshakes, the caller's watched fds, and the proxy's
 * lifetime.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "log.h"
#include "proxy_int.h"

#define LISTEN_BACKLOG 4096
#define EVENT_BATCH 256
/* Accepts per listener per round, so a connect storm cannot starve flows. */
#define ACCEPT_BATCH 64
/* Out of fds or memory: stop accepting this long instead of spinning on a
 * listener that stays readable (nginx does the same). */
#define ACCEPT_PAUSE_MS 100
/* A tunnel must be up, OPEN and VERDICT exchanged, within this unless
 * proxy_set_handshake_timeout() says otherwise: a peer that opens
 * connections and says nothing holds no flow for long. */
#define HANDSHAKE_TIMEOUT_MS 10000
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

static void timer_update(struct proxy *p)
{
	struct itimerspec its = {};
	uint64_t want = 0;

	if (!list_empty(&p->busy)) {
		/* Any absolute time already past fires at once. */
		want = 1;
	} else {
		if (p->accept_paused)
			want = p->accept_resume_ns;
		if (p->idle_ns && !list_empty(&p->idle)) {
			uint64_t due = node_flow(p->idle.next, idle_node)->last_ns + p->idle_ns;

			if (!want || due < want)
				want = due;
		}
		if (!list_empty(&p->handshakes)) {
			uint64_t due = node_flow(p->handshakes.next, idle_node)->start_ns +
				       p->hs_timeout_ns;

			if (!want || due < want)
				want = due;
		}
	}
	/* A deadline that fires early only costs a wakeup that re-arms. */
	if (!want || (p->timer_at && p->timer_at <= want))
		return;
	its.it_value.tv_sec = want / NSEC_PER_SEC;
	its.it_value.tv_nsec = want % NSEC_PER_SEC;
	if (!timerfd_settime(p->timer.fd, TFD_TIMER_ABSTIME, &its, NULL))
		p->timer_at = want;
}

static int listeners_ctl(struct proxy *p, int op)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i;

	for (i = 0; i < 3; i++) {
		if (p->listen[i].fd < 0)
			continue;
		ev.data.ptr = &p->listen[i];
		if (epoll_ctl(p->epfd, op, p->listen[i].fd, &ev))
			return -errno;
	}
	return 0;
}

static void accept_pause(struct proxy *p, int err)
{
	if (!p->accept_err_logged)
		pr_warn("proxy: accept: %s; pausing accepts for %d ms", strerror(-err),
			ACCEPT_PAUSE_MS);
	p->accept_err_logged = true;
	listeners_ctl(p, EPOLL_CTL_DEL);
	p->accept_paused = true;
	p->accept_resume_ns = p->now + ACCEPT_PAUSE_MS * NSEC_PER_MSEC;
}

static void accept_resume(struct proxy *p)
{
	int err;

	if (!p->accept_paused || p->now < p->accept_resume_ns)
		return;
	p->accept_paused = false;
	err = listeners_ctl(p, EPOLL_CTL_ADD);
	if (err) {
		listeners_ctl(p, EPOLL_CTL_DEL);
		accept_pause(p, err);
	}
}

static void listener_event(struct proxy *p, struct endpoint *l)
{
	struct sockaddr_storage peer;
	socklen_t len;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				/* This connection failed; the next may not. */
				continue;
			default:
				accept_pause(p, -errno);
				return;
			}
		}
		p->accept_err_logged = false;
		p->stats.accepted++;
		if (l->kind == EP_TUNNEL_LISTEN)
			tunnel_open(p, fd, &peer);
		else
			flow_open(p, fd, &peer);
	}
}

static void timer_event(struct proxy *p)
{
	uint64_t expirations;

	if (read(p->timer.fd, &expirations, sizeof(expirations)) > 0)
		p->timer_at = 0;
}

static void busy_run(struct proxy *p)
{
	struct list_node round;

	if (list_empty(&p->busy))
		return;
	/* Flows that run out of budget again go back on p->busy for the
	 * next round, after everything else had its turn. */
	round = p->busy;
	round.next->prev = &round;
	round.prev->next = &round;
	list_init(&p->busy);
	while (!list_empty(&round)) {
		struct flow *f = node_flow(round.next, busy_node);

		list_del(&f->busy_node);
		flow_pump(p, f);
	}
}

static void idle_expire(struct proxy *p)
{
	const char *reason, *detail;

	while (!list_empty(&p->handshakes)) {
		struct flow *f = node_flow(p->handshakes.next, idle_node);

		if (f->start_ns + p->hs_timeout_ns > p->now)
			break;
		p->stats.idle_timeouts++;
		hs_report(p, f, PROXY_HS_TIMEOUT);
		reason = deadline_reason(f, &detail);
		tunnel_fail(p, f, reason, detail, -ETIMEDOUT);
	}
	if (!p->idle_ns)
		return;
	while (!list_empty(&p->idle)) {
		struct flow *f = node_flow(p->idle.next, idle_node);

		if (f->last_ns + p->idle_ns > p->now)
			break;
		p->stats.idle_timeouts++;
		flow_close(p, f, -ETIMEDOUT);
	}
}

void proxy_set_handshake_timeout(struct proxy *p, unsigned int timeout_ms)
{
	p->hs_timeout_ns = timeout_ms * NSEC_PER_MSEC;
}

int proxy_watch(struct proxy *p, int fd, void (*cb)(void *ctx), void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct watch *w;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->ep = (struct endpoint){ .fd = fd, .kind = EP_WATCH };
	w->cb = cb;
	w->ctx = ctx;
	ev.data.ptr = &w->ep;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		free(w);
		return -errno;
	}
	w->next = p->watches;
	p->watches = w;
	return 0;
}

int proxy_run_once(struct proxy *p)
{
	return proxy_run(p, 0);
}

int proxy_run(struct proxy *p, int timeout_ms)
{
	struct epoll_event events[EVENT_BATCH];
	int i, n;

	n = epoll_wait(p->epfd, events, EVENT_BATCH, timeout_ms);
	if (n < 0 && errno != EINTR)
		return -errno;
	p->now = mono_ns();
	for (i = 0; i < n; i++) {
		struct endpoint *e = events[i].data.ptr;

		switch (e->kind) {
		case EP_LISTEN:
		case EP_TUNNEL_LISTEN:
			listener_event(p, e);
			break;
		case EP_TIMER:
			timer_event(p);
			break;
		case EP_CLIENT:
		case EP_UPSTREAM:
			flow_event(p, e, events[i].events);
			break;
		case EP_WATCH:
			((struct watch *)e)->cb(((struct watch *)e)->ctx);
			break;
		}
	}
	busy_run(p);
	idle_expire(p);
	accept_resume(p);
	while (!list_empty(&p->dead))
		flow_free(p, node_flow(p->dead.next, idle_node));
	timer_update(p);
	return 0;
}

static int listener_open(struct proxy *p, struct endpoint *l, const struct sockaddr_storage *addr,
			 const char *key, struct errmsg *err)
{
	socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in);
	char name[INET6_ADDRSTRLEN + 8];
	const char *hint;
	int one = 1;
	int ret;

	if (addr->ss_family != AF_INET && addr->ss_family != AF_INET6)
		return errmsg_set(err, -EAFNOSUPPORT, "cannot listen on address family %u",
				  addr->ss_family);
	format_sockaddr(addr, name, sizeof(name));
	l->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return errmsg_set(err, -errno, "cannot listen on %s: socket: %s", name,
				  strerror(errno));
	/* Without this a restarted agent cannot bind while its previous
	 * flows sit in TIME_WAIT. */
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The v4 listener takes IPv4; the v6 one must not claim v4-mapped
	 * addresses on the same port. */
	if (addr->ss_family == AF_INET6 &&
	    setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		return errmsg_set(err, -errno, "cannot listen on %s: IPV6_V6ONLY: %s", name,
				  strerror(errno));
	if (bind(l->fd, (const struct sockaddr *)addr, len) || listen(l->fd, LISTEN_BACKLOG)) {
		ret = -errno;
		switch (ret) {
		case -EADDRINUSE:
			hint = "is another sluiced running? change";
			break;
		case -EADDRNOTAVAIL:
			hint = "no interface has this address; change";
			break;
		case -EACCES:
			hint = "ports below 1024 need CAP_NET_BIND_SERVICE; or change";
			break;
		default:
			hint = "check";
		}
		return errmsg_set(err, ret, "cannot listen on %s: %s (%s %s)", name,
				  strerror(-ret), hint, key);
	}
	return 0;
}

int proxy_new(const struct sockaddr_storage *listen4, const struct sockaddr_storage *listen6,
	      unsigned int idle_timeout_ms, const struct proxy_ops *ops, struct proxy **out,
	      struct errmsg *err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct proxy *p;
	int ret;

	if (!listen4 && !listen6)
		return errmsg_set(err, -EINVAL, "proxy: no listen address");
	if (!ops || !ops->lookup)
		return errmsg_set(err, -EINVAL, "proxy: no original destination lookup");
	p = calloc(1, sizeof(*p));
	if (!p)
		return errmsg_set(err, -ENOMEM, "proxy: out of memory");
	p->ops = *ops;
	p->idle_ns = idle_timeout_ms * NSEC_PER_MSEC;
	p->hs_timeout_ns = HANDSHAKE_TIMEOUT_MS * NSEC_PER_MSEC;
	for (int i = 0; i < 3; i++)
		p->listen[i] = (struct endpoint){ .fd = -1,
						  .kind = i < 2 ? EP_LISTEN : EP_TUNNEL_LISTEN };
	list_init(&p->idle);
	list_init(&p->handshakes);
	list_init(&p->busy);
	list_init(&p->dead);
	p->timer.kind = EP_TIMER;
	p->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->timer.fd < 0 || p->epfd < 0) {
		ret = errmsg_set(err, -errno, "proxy: %s: %s",
				 p->epfd < 0 ? "epoll_create1" : "timerfd_create", strerror(errno));
		goto fail;
	}
	ev.data.ptr = &p->timer;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timer.fd, &ev)) {
		ret = errmsg_set(err, -errno, "proxy: epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	if (listen4) {
		ret = listener_open(p, &p->listen[0], listen4, "listen.outbound", err);
		if (ret)
			goto fail;
	}
	if (listen6) {
		ret = listener_open(p, &p->listen[1], listen6, "listen.outbound6", err);
		if (ret)
			goto fail;
	}
	ret = listeners_ctl(p, EPOLL_CTL_ADD);
	if (ret) {
		errmsg_set(err, ret, "proxy: epoll_ctl: %s", strerror(-ret));
		goto fail;
	}
	*out = p;
	return 0;
fail:
	proxy_free(p);
	return ret;
}

int proxy_fd(const struct proxy *p)
{
	return p->epfd;
}

int proxy_listen_tunnel(struct proxy *p, const struct sockaddr_storage *addr, struct errmsg *err)
{
	struct endpoint *l = &p->listen[2];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
	int ret;

	if (!p->ops.tunnel_accept || !p->ops.authorize)
		return errmsg_set(err, -EINVAL, "proxy: a tunnel listener needs tunnel callbacks");
	ret = listener_open(p, l, addr, "listen.tunnel", err);
	if (ret)
		return ret;
	if (!p->accept_paused && epoll_ctl(p->epfd, EPOLL_CTL_ADD, l->fd, &ev))
		return errmsg_set(err, -errno, "proxy: epoll_ctl: %s", strerror(errno));
	return 0;
}

int proxy_listen_addr(const struct proxy *p, int family, struct sockaddr_storage *out)
{
	const struct endpoint *l = &p->listen[family ? family == AF_INET6 : 2];
	socklen_t len = sizeof(*out);

	if ((family && family != AF_INET && family != AF_INET6) || l->fd < 0)
		return -ENOENT;
	if (getsockname(l->fd, (struct sockaddr *)out, &len))
		return -errno;
	return 0;
}

void proxy_set_keepalive(struct proxy *p, const struct keepalive_cfg *ka)
{
	p->keepalive = *ka;
}

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out)
{
	*out = p->stats;
	out->handshakes_out = p->in_flight[0].nr;
	out->handshakes_in = p->in_flight[1].nr;
}

void proxy_free(struct proxy *p)
{
	int i;

	if (!p)
		return;
	while (!list_empty(&p->idle))
		flow_close(p, node_flow(p->idle.next, idle_node), -ECONNABORTED);
	while (!list_empty(&p->handshakes))
		flow_close(p, node_flow(p->handshakes.next, idle_node), -ECONNABORTED);
	while (!list_empty(&p->dead))
		flow_free(p, node_flow(p->dead.next, idle_node));
	while (p->ring_pool_len)
		free(p->ring_pool[--p->ring_pool_len]);
	addr_count_free(p->in_flight[0].by_addr);
	addr_count_free(p->in_flight[1].by_addr);
	while (p->watches) {
		struct watch *w = p->watches;

		p->watches = w->next;
		free(w);
	}
	for (i = 0; i < 3; i++)
		if (p->listen[i].fd >= 0)
			close(p->listen[i].fd);
	if (p->timer.fd >= 0)
		close(p->timer.fd);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p);
}
