// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flows and the byte pump: a flow's sockets, its two relays, and the events
 * that move bytes through them.
 *
 * Every socket is registered once, edge-triggered, for IN|OUT|RDHUP: the
 * proxy never calls epoll_ctl as buffers fill and drain. Readiness is kept
 * in per-socket flags that only EAGAIN (or a short transfer) clears, and a
 * direction is pumped until it would block or its budget is spent.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "addr.h"
#include "clock.h"
#include "proxy_int.h"

/* Bytes one direction may move per round before other flows get a turn. */
#define PUMP_BUDGET (4 * PROXY_BUF_SIZE)

void close_reset(int fd)
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

/* Every socket of a flow: app, upstream and tunnel legs alike. */
void sock_tune(const struct proxy *p, int fd)
{
	const struct keepalive_cfg *ka = &p->keepalive;
	int one = 1;

	/* Forwarded requests and responses are written as they arrive; Nagle
	 * would hold a small tail back for the peer's delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Idle flows are never cut by default: probes are what finds a peer
	 * that vanished without a FIN or an RST. */
	if (!ka->idle_s)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka->idle_s, sizeof(ka->idle_s));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka->interval_s, sizeof(ka->interval_s));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &ka->count, sizeof(ka->count));
}

static void flow_touch(struct proxy *p, struct flow *f)
{
	if (f->last_ns == p->now)
		return;
	f->last_ns = p->now;
	list_del(&f->idle_node);
	list_add_tail(&f->idle_node, &p->idle);
}

void endpoint_close(struct endpoint *e, int status)
{
	/* SSL_free sends nothing: a clean close already sent close_notify
	 * when the direction was shut. */
	SSL_free(e->ssl);
	e->ssl = NULL;
	if (e->fd < 0)
		return;
	if (status)
		close_reset(e->fd);
	else
		close(e->fd);
	e->fd = -1;
}

void flow_close(struct proxy *p, struct flow *f, int status)
{
	struct flow_end e = {
		.bytes_up = f->up.bytes,
		.bytes_down = f->down.bytes,
		.duration_ns = mono_ns() - f->start_ns,
		.status = status,
		.connect_us = f->connect_us,
	};
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (f->upstream.fd >= 0 && !getsockopt(f->upstream.fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		e.srtt_us = ti.tcpi_rtt;
	hs_report(p, f, PROXY_HS_ABORTED);
	/* Its exchanges end first: flow_closed frees what they report to. */
	http_gate_free(f->gate);
	f->gate = f->up.gate = f->down.gate = NULL;
	if (p->ops.flow_closed)
		p->ops.flow_closed(p->ops.ctx, f->ctx, &f->dst, &e);
	endpoint_close(&f->client, status);
	endpoint_close(&f->upstream, status);
	hs_release(f);
	in_flight_put(p, f);
	p->stats.active--;
	p->stats.buffered -= f->up.ring.len + f->down.ring.len;
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

void flow_free(struct proxy *p, struct flow *f)
{
	list_del(&f->idle_node);
	ring_release(p, &f->up.ring);
	ring_release(p, &f->down.ring);
	free(f);
}

/* What an SSL call that did not complete means for the endpoint: -EAGAIN
 * to wait for the edge it named (the caller clears the flag for its own
 * direction), -EINPROGRESS when it waits for the other one (no flag
 * changes: that edge pumps the flow again), or the error that ends it. */
int tls_error(struct endpoint *e, int ret, bool reading)
{
	int err = SSL_get_error(e->ssl, ret);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		if (reading)
			return -EAGAIN;
		e->readable = false;
		return -EINPROGRESS;
	case SSL_ERROR_WANT_WRITE:
		if (!reading)
			return -EAGAIN;
		e->writable = false;
		return -EINPROGRESS;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno ? -errno : -ECONNRESET;
	default:
		/* A bad record or an EOF without close_notify: a truncation
		 * must not pass for a clean end. */
		ERR_clear_error();
		return -ECONNRESET;
	}
}

/* Fills iov from the TLS endpoint until it would block: records already
 * decrypted inside SSL raise no epoll edge, so stopping early would strand
 * them. */
static ssize_t tls_read(struct endpoint *e, struct iovec *iov, int iovcnt)
{
	size_t total = 0, n;
	int ret;

	for (int i = 0; i < iovcnt; i++) {
		while (iov[i].iov_len) {
			ret = SSL_read_ex(e->ssl, iov[i].iov_base, iov[i].iov_len, &n);
			if (ret <= 0) {
				ret = tls_error(e, ret, true);
				if (total && ret != 0 && ret != -EINPROGRESS && ret != -EAGAIN)
					return ret;
				if (ret == -EAGAIN)
					e->readable = false;
				return total ? (ssize_t)total : ret;
			}
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= n;
			total += n;
		}
	}
	return total;
}

static ssize_t tls_write(struct endpoint *e, const void *buf, size_t len)
{
	size_t n;
	int ret;

	ret = SSL_write_ex(e->ssl, buf, len, &n);
	if (ret <= 0) {
		ret = tls_error(e, ret, false);
		return ret ? ret : -EPIPE;
	}
	return n;
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
	if (r->src->ssl)
		return tls_read(r->src, iov, iov[1].iov_len ? 2 : 1);
	n = readv(r->src->fd, iov, iov[1].iov_len ? 2 : 1);
	if (n < 0)
		return -errno;
	if (n && (size_t)n < space && !r->src->rdhup)
		r->src->readable = false;
	return n;
}

/* Writes at most max bytes from the ring's head. */
static ssize_t relay_write(struct relay *r, size_t max)
{
	struct ring *g = &r->ring;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };
	size_t len = g->len < max ? g->len : max;
	size_t first = len;
	ssize_t n;

	if (g->head + first > PROXY_BUF_SIZE)
		first = PROXY_BUF_SIZE - g->head;
	iov[0].iov_base = g->data + g->head;
	iov[0].iov_len = first;
	iov[1].iov_base = g->data;
	iov[1].iov_len = len - first;
	msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
	if (r->dst->ssl)
		return tls_write(r->dst, iov[0].iov_base, iov[0].iov_len);
	/* MSG_NOSIGNAL: a peer that went away is an EPIPE, not a SIGPIPE. */
	n = sendmsg(r->dst->fd, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	/* A short write set SOCK_NOSPACE in the kernel: an EPOLLOUT edge
	 * follows when room frees up. */
	if ((size_t)n < len)
		r->dst->writable = false;
	return n;
}

/* Bytes the gate made (a header, an answer), to dst. */
static ssize_t endpoint_write(struct endpoint *e, const char *buf, size_t len)
{
	ssize_t n;

	if (e->ssl)
		return tls_write(e, buf, len);
	n = send(e->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	if ((size_t)n < len)
		e->writable = false;
	return n;
}

/* Half-close: a TLS endpoint first sends close_notify, which TLS 1.3 lets
 * the peer answer with more data. */
static int shut_write(struct endpoint *e)
{
	int ret;

	if (e->ssl && !(SSL_get_shutdown(e->ssl) & SSL_SENT_SHUTDOWN)) {
		ret = SSL_shutdown(e->ssl);
		if (ret < 0) {
			ret = tls_error(e, ret, false);
			if (ret == -EAGAIN)
				e->writable = false;
			return ret ? ret : -EPIPE;
		}
	}
	return shutdown(e->fd, SHUT_WR) ? -errno : 0;
}

/* One read into the ring when it has room: 0 (*progress set when
 * something happened) or the negative errno that ends the flow. */
static int relay_fill(struct proxy *p, struct flow *f, struct relay *r, bool *progress)
{
	ssize_t n;

	if (r->eof || !r->src->readable || r->ring.len >= PROXY_BUF_SIZE)
		return 0;
	n = relay_read(p, r);
	if (n > 0) {
		r->ring.len += n;
		p->stats.buffered += n;
		flow_touch(p, f);
		*progress = true;
	} else if (!n) {
		r->eof = true;
		*progress = true;
	} else if (n == -EAGAIN) {
		r->src->readable = false;
	} else if (n == -EINTR) {
		*progress = true;
	} else if (n != -EINPROGRESS) {
		return n;
	}
	return 0;
}

/* n bytes of the ring's head are gone: written, or dropped. */
static void ring_consume(struct proxy *p, struct relay *r, size_t n)
{
	r->ring.head = (r->ring.head + n) % PROXY_BUF_SIZE;
	r->ring.len -= n;
	p->stats.buffered -= n;
}

/* n bytes reached dst. */
static void relay_wrote(struct proxy *p, struct flow *f, struct relay *r, size_t n)
{
	r->bytes += n;
	*r->stat_bytes += n;
	flow_touch(p, f);
}

/* What a write that moved nothing means: 0 to wait (or retry), or the
 * errno that ends the flow. */
static int write_failed(struct relay *r, ssize_t n, bool *progress)
{
	if (n == -EAGAIN)
		r->dst->writable = false;
	else if (n == -EINTR)
		*progress = true;
	else if (n != -EINPROGRESS)
		return n;
	return 0;
}

static void relay_shut(struct relay *r, int *err)
{
	int n = shut_write(r->dst);

	if (n < 0 && n != -EAGAIN && n != -EINPROGRESS)
		*err = n;
	r->shut = !n;
}

/* Returns 0 when the direction would block, 1 when its budget ran out with
 * work possibly left, or a negative errno that ends the flow. */
static int relay_pump(struct proxy *p, struct flow *f, struct relay *r)
{
	size_t moved = 0;
	bool progress;
	ssize_t n;
	int err = 0;

	do {
		progress = false;
		err = relay_fill(p, f, r, &progress);
		if (err)
			return err;
		if (r->ring.len && r->dst->writable && !r->dst->connecting) {
			n = relay_write(r, r->ring.len);
			if (n > 0) {
				ring_consume(p, r, n);
				relay_wrote(p, f, r, n);
				moved += n;
				progress = true;
			} else if ((err = write_failed(r, n, &progress))) {
				return err;
			}
		}
		if (r->eof && !r->ring.len && !r->shut && !r->dst->connecting) {
			relay_shut(r, &err);
			if (err)
				return err;
		}
		if (moved >= PUMP_BUDGET)
			return 1;
	} while (progress);
	/* Waiting with an empty ring, the ring goes back to the pool (also
	 * after a read that found nothing): 10k held flows then cost a few
	 * pooled rings, not 512 KiB of address space (and what they
	 * touched) each. */
	if (!r->ring.len)
		ring_release(p, &r->ring);
	return 0;
}

/* Feeds the gate what it has not seen of the ring, in order; true when it
 * took something. */
static bool gate_feed(struct relay *r)
{
	struct ring *g = &r->ring;
	size_t at, chunk, took;
	bool progress = false;

	while (r->fed < g->len) {
		at = (g->head + r->fed) % PROXY_BUF_SIZE;
		chunk = g->len - r->fed;
		if (chunk > PROXY_BUF_SIZE - at)
			chunk = PROXY_BUF_SIZE - at;
		took = http_gate_feed(r->gate, r->gate_dir, g->data + at, chunk);
		r->fed += took;
		progress |= took > 0;
		if (took < chunk)
			break;
	}
	if (r->eof && r->fed == g->len && !r->gate_eof) {
		http_gate_eof(r->gate, r->gate_dir);
		r->gate_eof = true;
		progress = true;
	}
	return progress;
}

/* The gate's next step for r: *idle when it has none (or closed the
 * direction: what is left is dropped, and dst gets its FIN). 0, or the
 * errno that ends the flow. */
static int gate_step(struct proxy *p, struct flow *f, struct relay *r, size_t *moved,
		     bool *progress, bool *idle)
{
	struct http_gate_step st;
	size_t n = 0;
	ssize_t w;

	http_gate_step(r->gate, r->gate_dir, &st);
	*idle = st.kind == HTTP_STEP_WAIT || st.kind == HTTP_STEP_CLOSE;
	if (st.kind == HTTP_STEP_CLOSE) {
		ring_consume(p, r, r->ring.len);
		r->fed = 0;
		r->eof = r->gate_eof = true;
		return 0;
	}
	if (st.kind == HTTP_STEP_PASS || st.kind == HTTP_STEP_DROP)
		n = st.len < r->fed ? st.len : r->fed;
	if (st.kind == HTTP_STEP_WAIT || (st.kind != HTTP_STEP_WRITE && !n))
		return 0;
	if (st.kind == HTTP_STEP_DROP) {
		ring_consume(p, r, n);
		r->fed -= n;
		http_gate_done(r->gate, r->gate_dir, n);
		*progress = true;
		return 0;
	}
	if (!r->dst->writable || r->dst->connecting)
		return 0;
	w = st.kind == HTTP_STEP_PASS ? relay_write(r, n) : endpoint_write(r->dst, st.data, st.len);
	if (w <= 0)
		return write_failed(r, w, progress);
	if (st.kind == HTTP_STEP_PASS) {
		ring_consume(p, r, w);
		r->fed -= w;
	}
	relay_wrote(p, f, r, w);
	http_gate_done(r->gate, r->gate_dir, w);
	*moved += w;
	*progress = true;
	return 0;
}

/* relay_pump for a flow through an HTTP gate: what is read is fed to the
 * gate, and what is written is what its steps say. */
static int relay_pump_gated(struct proxy *p, struct flow *f, struct relay *r)
{
	size_t moved = 0;
	bool progress, idle;
	int err;

	do {
		progress = false;
		err = relay_fill(p, f, r, &progress);
		if (err)
			return err;
		progress |= gate_feed(r);
		err = gate_step(p, f, r, &moved, &progress, &idle);
		if (err)
			return err;
		if (idle && r->gate_eof && !r->ring.len && !r->shut && !r->dst->connecting) {
			relay_shut(r, &err);
			if (err)
				return err;
		}
		if (moved >= PUMP_BUDGET)
			return 1;
	} while (progress);
	if (!r->ring.len)
		ring_release(p, &r->ring);
	return 0;
}

void flow_pump(struct proxy *p, struct flow *f)
{
	int up, down, rounds = 0;

	/* A gate's step one way can free the other (a response lets the
	 * next pipelined request go), a few rounds at most. */
	do {
		up = f->up.gate ? relay_pump_gated(p, f, &f->up) : relay_pump(p, f, &f->up);
		if (up < 0) {
			flow_close(p, f, up);
			return;
		}
		down = f->down.gate ? relay_pump_gated(p, f, &f->down)
				    : relay_pump(p, f, &f->down);
		if (down < 0) {
			flow_close(p, f, down);
			return;
		}
	} while (f->gate && http_gate_kicked(f->gate) && ++rounds < 4);
	if (f->up.shut && f->down.shut) {
		flow_close(p, f, 0);
		return;
	}
	if ((up || down) && list_empty(&f->busy_node))
		list_add_tail(&f->busy_node, &p->busy);
}

/* The flow's relays go through gate (owned from here). */
void flow_gate(struct flow *f, struct http_gate *gate)
{
	f->gate = gate;
	f->up.gate = f->down.gate = gate;
	f->up.gate_dir = HTTP_GATE_REQ;
	f->down.gate_dir = HTTP_GATE_RES;
}

int endpoint_add(struct proxy *p, struct endpoint *e)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = e,
	};

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, e->fd, &ev) ? -errno : 0;
}

void flow_event(struct proxy *p, struct endpoint *e, uint32_t ev)
{
	struct flow *f = e->flow;
	int err;

	if (f->dead)
		return;
	/* An error on a tunnel endpoint that is already connected is left to
	 * the TLS step below, which names the phase it failed in: the peer
	 * resetting a handshake is neither an unreachable peer nor a refusing
	 * destination. */
	if (ev & (EPOLLERR | (e->connecting ? EPOLLHUP : 0)) &&
	    (e->connecting || f->phase == PH_PUMP)) {
		err = sock_error(e->fd);
		if (err || e->connecting) {
			err = err ? err : -ECONNREFUSED;
			if (f->phase == PH_LOCAL) {
				local_failed(p, f, err);
				tunnel_advance(p, f);
				return;
			}
			if (e->connecting)
				p->stats.upstream_failed++;
			if (f->phase != PH_PUMP)
				tunnel_fail(p, f, f->inbound ? "upstream-refused" : "peer-unreachable",
					    strerror(-err), err);
			else
				flow_close(p, f, err);
			return;
		}
	}
	if (e->connecting) {
		if (!(ev & EPOLLOUT))
			return;
		e->connecting = false;
		if (!f->inbound && e == &f->upstream && p->ops.upstream_connected)
			p->ops.upstream_connected(p->ops.ctx, &f->dst, &f->connect_us);
		if (f->phase == PH_CONNECT)
			tls_begin(f);
		else if (f->phase == PH_LOCAL)
			local_connected(p, f);
	}
	/* HUP/ERR: let the next read or write report what happened. */
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		e->readable = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		e->writable = true;
	if (ev & EPOLLRDHUP)
		e->rdhup = true;
	if (f->phase == PH_PUMP)
		flow_pump(p, f);
	else
		tunnel_advance(p, f);
}

void flow_open(struct proxy *p, int cfd, const struct sockaddr_storage *peer)
{
	struct proxy_route route = { .ssl = NULL };
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
	if (p->ops.route && p->ops.route(p->ops.tunnel_ctx, &dst, &route)) {
		p->stats.tunnels_refused++;
		close_reset(cfd);
		return;
	}
	ufd = -1;
	f = calloc(1, sizeof(*f));
	if (route.ssl)
		ss = route.peer;
	else
		orig_dst_sockaddr(&dst, &ss);
	sslen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (f && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		ufd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0) {
		/* No upstream socket, so no flow to report. */
		p->stats.upstream_failed++;
		close_reset(cfd);
		if (route.ssl) {
			struct frame_verdict v = { .allow = 0, .reason = "internal-error" };

			if (p->ops.verdict)
				p->ops.verdict(p->ops.tunnel_ctx, route.flow_ctx, &v);
			if (p->ops.flow_closed)
				p->ops.flow_closed(p->ops.ctx, route.flow_ctx, &dst,
						   &(struct flow_end){ .status = -ENOMEM });
			SSL_free(route.ssl);
			http_gate_free(route.gate);
			OPENSSL_cleanse(route.open, route.open_len);
			free(route.open);
		}
		free(f);
		return;
	}
	f->dst = dst;
	f->start_ns = mono_ns();
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
	if (route.ssl) {
		f->peer = route.peer;
		in_flight_take(p, f);
		list_del(&f->idle_node);
		list_add_tail(&f->idle_node, &p->handshakes);
		p->stats.tunnels_out++;
		f->tun = &f->upstream;
		ssl_take(f->tun, route.ssl);
		SSL_set_connect_state(route.ssl);
		f->hs = route.open;
		f->hs_len = route.open_len;
		f->ctx = route.flow_ctx;
		f->phase = PH_CONNECT;
		flow_gate(f, route.gate);
	} else if (p->ops.gate) {
		struct http_gate *g = NULL;

		err = p->ops.gate(p->ops.ctx, &dst, &g);
		if (err) {
			close_reset(ufd);
			f->upstream.fd = -1;
			flow_close(p, f, err);
			return;
		}
		flow_gate(f, g);
	}

	sock_tune(p, cfd);
	sock_tune(p, ufd);
	if (p->ops.upstream_created)
		p->ops.upstream_created(p->ops.ctx, ufd, &dst);
	if (connect(ufd, (struct sockaddr *)&ss, sslen)) {
		if (errno != EINPROGRESS) {
			p->stats.upstream_failed++;
			err = -errno;
			if (f->tun)
				tunnel_fail(p, f, "peer-unreachable", strerror(-err), err);
			else
				flow_close(p, f, err);
			return;
		}
		f->upstream.connecting = true;
	} else if (f->tun) {
		tls_begin(f);
	}
	err = endpoint_add(p, &f->client);
	if (!err)
		err = endpoint_add(p, &f->upstream);
	if (err)
		flow_close(p, f, err);
	else if (f->phase == PH_TLS)
		tunnel_advance(p, f);
}
