// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Every socket is registered once, edge-triggered, for IN|OUT|RDHUP: the
 * proxy never calls epoll_ctl as buffers fill and drain. Readiness is kept
 * in per-socket flags that only EAGAIN (or a short transfer) clears, and a
 * direction is pumped until it would block or its budget is spent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"

#define LISTEN_BACKLOG 4096
#define EVENT_BATCH 256
/* Accepts per listener per round, so a connect storm cannot starve flows. */
#define ACCEPT_BATCH 64
/* Bytes one direction may move per round before other flows get a turn. */
#define PUMP_BUDGET (4 * PROXY_BUF_SIZE)
/* Out of fds or memory: stop accepting this long instead of spinning on a
 * listener that stays readable (nginx does the same). */
#define ACCEPT_PAUSE_MS 100
/* Freed ring buffers kept for the next flows: one connection per request
 * would otherwise fault in and zero 512 KiB of fresh pages each time. */
#define RING_POOL_MAX 64
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

struct list_node {
	struct list_node *prev, *next;
};

enum ep_kind {
	EP_LISTEN,
	EP_TIMER,
	EP_CLIENT,
	EP_UPSTREAM,
	EP_WATCH,
};

struct flow;

/* What an epoll event points at. */
struct endpoint {
	int fd;
	enum ep_kind kind;
	bool readable;
	bool writable;
	/* FIN seen: a short read no longer proves the queue is drained, so
	 * keep reading until read() returns 0. */
	bool rdhup;
	bool connecting;
	struct flow *flow;
};

/* Bytes read from src wait here until written to dst. */
struct ring {
	char *data;			/* PROXY_BUF_SIZE, allocated on first read */
	size_t head;
	size_t len;
};

/* One direction of a flow. */
struct relay {
	struct ring ring;
	struct endpoint *src, *dst;
	uint64_t *stat_bytes;
	uint64_t bytes;			/* written to dst */
	bool eof;			/* src returned EOF */
	bool shut;			/* dst got our FIN */
};

struct flow {
	struct endpoint client, upstream;
	struct relay up, down;		/* client -> upstream, upstream -> client */
	struct sluice_orig_dst dst;
	uint64_t start_ns;
	uint64_t last_ns;		/* last byte moved either way */
	/* On p->idle (oldest first) while open, on p->dead once closed. */
	struct list_node idle_node;
	/* On p->busy while a direction has budget-limited work left. */
	struct list_node busy_node;
	bool dead;
};

/* A caller's fd served from the proxy's own epoll_wait. */
struct watch {
	struct endpoint ep;		/* first: events point here */
	void (*cb)(void *ctx);
	void *ctx;
	struct watch *next;
};

struct proxy {
	int epfd;
	struct watch *watches;
	struct endpoint listen[2];	/* AF_INET, AF_INET6; fd -1 when unused */
	struct endpoint timer;
	uint64_t timer_at;		/* armed deadline, 0 when disarmed */
	uint64_t idle_ns;
	uint64_t now;			/* CLOCK_MONOTONIC at the start of the round */
	bool accept_paused;
	bool accept_err_logged;
	uint64_t accept_resume_ns;
	struct proxy_ops ops;
	struct proxy_stats stats;
	struct list_node idle;
	struct list_node busy;
	struct list_node dead;
	char *ring_pool[RING_POOL_MAX];
	int ring_pool_len;
};

#define node_flow(node, member) \
	((struct flow *)((char *)(node) - __builtin_offsetof(struct flow, member)))

static void list_init(struct list_node *n)
{
	n->prev = n->next = n;
}

static bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

static void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

static void list_add_tail(struct list_node *n, struct list_node *head)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* Zero linger turns close() into an RST, so the peer sees
	 * ECONNRESET rather than a clean EOF. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* Forwarded requests and responses are written as they arrive; Nagle
	 * would hold a small tail back for the peer's delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

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
	}
	/* A deadline that fires early only costs a wakeup that re-arms. */
	if (!want || (p->timer_at && p->timer_at <= want))
		return;
	its.it_value.tv_sec = want / NSEC_PER_SEC;
	its.it_value.tv_nsec = want % NSEC_PER_SEC;
	if (!timerfd_settime(p->timer.fd, TFD_TIMER_ABSTIME, &its, NULL))
		p->timer_at = want;
}

static void flow_touch(struct proxy *p, struct flow *f)
{
	if (f->last_ns == p->now)
		return;
	f->last_ns = p->now;
	list_del(&f->idle_node);
	list_add_tail(&f->idle_node, &p->idle);
}

static void flow_close(struct proxy *p, struct flow *f, int status)
{
	uint64_t end = now_ns();

	if (status) {
		close_reset(f->client.fd);
		close_reset(f->upstream.fd);
	} else {
		close(f->client.fd);
		close(f->upstream.fd);
	}
	p->stats.active--;
	p->stats.buffered -= f->up.ring.len + f->down.ring.len;
	if (p->ops.flow_closed)
		p->ops.flow_closed(p->ops.ctx, &f->dst, f->up.bytes, f->down.bytes,
				   end - f->start_ns, status);
	list_del(&f->busy_node);
	list_del(&f->idle_node);
	/* Events already fetched in this round may still point at f. */
	f->dead = true;
	list_add_tail(&f->idle_node, &p->dead);
}

static void ring_release(struct proxy *p, struct ring *g)
{
	if (g->data && p->ring_pool_len < RING_POOL_MAX)
		p->ring_pool[p->ring_pool_len++] = g->data;
	else
		free(g->data);
	g->data = NULL;
}

static void flow_free(struct proxy *p, struct flow *f)
{
	list_del(&f->idle_node);
	ring_release(p, &f->up.ring);
	ring_release(p, &f->down.ring);
	free(f);
}

static ssize_t relay_read(struct proxy *p, struct relay *r)
{
	struct ring *g = &r->ring;
	size_t space = PROXY_BUF_SIZE - g->len;
	struct iovec iov[2];
	size_t tail;
	ssize_t n;

	if (!g->data) {
		g->data = p->ring_pool_len ? p->ring_pool[--p->ring_pool_len]
					   : malloc(PROXY_BUF_SIZE);
		if (!g->data)
			return -ENOMEM;
	}
	if (!g->len)
		g->head = 0;
	tail = (g->head + g->len) % PROXY_BUF_SIZE;
	iov[0].iov_base = g->data + tail;
	iov[0].iov_len = tail >= g->head ? PROXY_BUF_SIZE - tail : space;
	iov[1].iov_base = g->data;
	iov[1].iov_len = space - iov[0].iov_len;
	n = readv(r->src->fd, iov, iov[1].iov_len ? 2 : 1);
	if (n < 0)
		return -errno;
	if (n && (size_t)n < space && !r->src->rdhup)
		r->src->readable = false;
	return n;
}

static ssize_t relay_write(struct relay *r)
{
	struct ring *g = &r->ring;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };
	size_t first = g->len;
	ssize_t n;

	if (g->head + first > PROXY_BUF_SIZE)
		first = PROXY_BUF_SIZE - g->head;
	iov[0].iov_base = g->data + g->head;
	iov[0].iov_len = first;
	iov[1].iov_base = g->data;
	iov[1].iov_len = g->len - first;
	msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
	/* MSG_NOSIGNAL: a peer that went away is an EPIPE, not a SIGPIPE. */
	n = sendmsg(r->dst->fd, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	/* A short write set SOCK_NOSPACE in the kernel: an EPOLLOUT edge
	 * follows when room frees up. */
	if ((size_t)n < g->len)
		r->dst->writable = false;
	return n;
}

/* Returns 0 when the direction would block, 1 when its budget ran out with
 * work possibly left, or a negative errno that ends the flow. */
static int relay_pump(struct proxy *p, struct flow *f, struct relay *r)
{
	size_t moved = 0;
	bool progress;
	ssize_t n;

	do {
		progress = false;
		if (!r->eof && r->src->readable && r->ring.len < PROXY_BUF_SIZE) {
			n = relay_read(p, r);
			if (n > 0) {
				r->ring.len += n;
				p->stats.buffered += n;
				flow_touch(p, f);
				progress = true;
			} else if (!n) {
				r->eof = true;
				progress = true;
			} else if (n == -EAGAIN) {
				r->src->readable = false;
			} else if (n == -EINTR) {
				progress = true;
			} else {
				return n;
			}
		}
		if (r->ring.len && r->dst->writable && !r->dst->connecting) {
			n = relay_write(r);
			if (n > 0) {
				r->ring.head = (r->ring.head + n) % PROXY_BUF_SIZE;
				r->ring.len -= n;
				p->stats.buffered -= n;
				r->bytes += n;
				*r->stat_bytes += n;
				moved += n;
				flow_touch(p, f);
				progress = true;
			} else if (n == -EAGAIN) {
				r->dst->writable = false;
			} else if (n == -EINTR) {
				progress = true;
			} else {
				return n;
			}
		}
		if (r->eof && !r->ring.len && !r->shut && !r->dst->connecting) {
			if (shutdown(r->dst->fd, SHUT_WR))
				return -errno;
			r->shut = true;
		}
		if (moved >= PUMP_BUDGET)
			return 1;
	} while (progress);
	return 0;
}

static void flow_pump(struct proxy *p, struct flow *f)
{
	int up, down;

	up = relay_pump(p, f, &f->up);
	if (up < 0) {
		flow_close(p, f, up);
		return;
	}
	down = relay_pump(p, f, &f->down);
	if (down < 0) {
		flow_close(p, f, down);
		return;
	}
	if (f->up.shut && f->down.shut) {
		flow_close(p, f, 0);
		return;
	}
	if ((up || down) && list_empty(&f->busy_node))
		list_add_tail(&f->busy_node, &p->busy);
}

static void flow_event(struct proxy *p, struct endpoint *e, uint32_t ev)
{
	struct flow *f = e->flow;
	int err;

	if (f->dead)
		return;
	if (ev & (EPOLLERR | (e->connecting ? EPOLLHUP : 0))) {
		err = sock_error(e->fd);
		if (err || e->connecting) {
			if (e->connecting)
				p->stats.upstream_failed++;
			flow_close(p, f, err ? err : -ECONNREFUSED);
			return;
		}
	}
	if (e->connecting) {
		if (!(ev & EPOLLOUT))
			return;
		e->connecting = false;
	}
	/* HUP/ERR: let the next read or write report what happened. */
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		e->readable = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		e->writable = true;
	if (ev & EPOLLRDHUP)
		e->rdhup = true;
	flow_pump(p, f);
}

static int dst_sockaddr(const struct sluice_orig_dst *dst, struct sockaddr_storage *ss,
			socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (dst->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = dst->port;
		s4->sin_addr.s_addr = dst->addr[0];
		*len = sizeof(*s4);
		return 0;
	}
	if (dst->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = dst->port;
		memcpy(&s6->sin6_addr, dst->addr, sizeof(s6->sin6_addr));
		*len = sizeof(*s6);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static int endpoint_add(struct proxy *p, struct endpoint *e)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = e,
	};

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, e->fd, &ev) ? -errno : 0;
}

static void flow_open(struct proxy *p, int cfd, const struct sockaddr_storage *peer)
{
	struct sluice_orig_dst dst;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct flow *f;
	int ufd, err;

	if (p->ops.lookup(p->ops.ctx, peer, &dst)) {
		p->stats.no_orig_dst++;
		close_reset(cfd);
		return;
	}
	ufd = -1;
	f = calloc(1, sizeof(*f));
	if (f && !dst_sockaddr(&dst, &ss, &sslen))
		ufd = socket(dst.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0) {
		/* No upstream socket, so no flow to report. */
		p->stats.upstream_failed++;
		close_reset(cfd);
		free(f);
		return;
	}
	f->dst = dst;
	f->start_ns = now_ns();
	f->last_ns = p->now;
	f->client = (struct endpoint){ .fd = cfd, .kind = EP_CLIENT, .flow = f };
	f->upstream = (struct endpoint){ .fd = ufd, .kind = EP_UPSTREAM, .flow = f };
	f->up = (struct relay){ .src = &f->client, .dst = &f->upstream,
				.stat_bytes = &p->stats.bytes_up };
	f->down = (struct relay){ .src = &f->upstream, .dst = &f->client,
				  .stat_bytes = &p->stats.bytes_down };
	list_init(&f->busy_node);
	list_add_tail(&f->idle_node, &p->idle);
	p->stats.active++;

	set_nodelay(cfd);
	set_nodelay(ufd);
	if (p->ops.upstream_created)
		p->ops.upstream_created(p->ops.ctx, ufd, &dst);
	if (connect(ufd, (struct sockaddr *)&ss, sslen)) {
		if (errno != EINPROGRESS) {
			p->stats.upstream_failed++;
			flow_close(p, f, -errno);
			return;
		}
		f->upstream.connecting = true;
	}
	err = endpoint_add(p, &f->client);
	if (!err)
		err = endpoint_add(p, &f->upstream);
	if (err)
		flow_close(p, f, err);
}

static int listeners_ctl(struct proxy *p, int op)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i;

	for (i = 0; i < 2; i++) {
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
	p->now = now_ns();
	for (i = 0; i < n; i++) {
		struct endpoint *e = events[i].data.ptr;

		switch (e->kind) {
		case EP_LISTEN:
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
			 struct errmsg *err)
{
	const char *key = addr->ss_family == AF_INET6 ? "listen.outbound6" : "listen.outbound";
	socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in);
	char name[INET6_ADDRSTRLEN + 8];
	const char *hint;
	int one = 1;
	int ret;

	if (addr->ss_family != AF_INET && addr->ss_family != AF_INET6)
		return errmsg_set(err, -EAFNOSUPPORT, "cannot listen on address family %u",
				  addr->ss_family);
	format_addr(addr, name, sizeof(name));
	l->kind = EP_LISTEN;
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
	p->listen[0].fd = p->listen[1].fd = -1;
	list_init(&p->idle);
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
		ret = listener_open(p, &p->listen[0], listen4, err);
		if (ret)
			goto fail;
	}
	if (listen6) {
		ret = listener_open(p, &p->listen[1], listen6, err);
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

int proxy_listen_addr(const struct proxy *p, int family, struct sockaddr_storage *out)
{
	const struct endpoint *l = &p->listen[family == AF_INET6];
	socklen_t len = sizeof(*out);

	if ((family != AF_INET && family != AF_INET6) || l->fd < 0)
		return -ENOENT;
	if (getsockname(l->fd, (struct sockaddr *)out, &len))
		return -errno;
	return 0;
}

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out)
{
	*out = p->stats;
}

void proxy_free(struct proxy *p)
{
	int i;

	if (!p)
		return;
	while (!list_empty(&p->idle))
		flow_close(p, node_flow(p->idle.next, idle_node), -ECONNABORTED);
	while (!list_empty(&p->dead))
		flow_free(p, node_flow(p->dead.next, idle_node));
	while (p->ring_pool_len)
		free(p->ring_pool[--p->ring_pool_len]);
	while (p->watches) {
		struct watch *w = p->watches;

		p->watches = w->next;
		free(w);
	}
	for (i = 0; i < 2; i++)
		if (p->listen[i].fd >= 0)
			close(p->listen[i].fd);
	if (p->timer.fd >= 0)
		close(p->timer.fd);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p);
}
