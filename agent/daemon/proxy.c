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
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "addr.h"
#include "addrcount.h"
#include "clock.h"
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
/* A tunnel must be up, OPEN and VERDICT exchanged, within this: a peer
 * that opens connections and says nothing holds no flow for long. */
#define HANDSHAKE_TIMEOUT_MS 10000
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

struct list_node {
	struct list_node *prev, *next;
};

enum ep_kind {
	EP_LISTEN,
	EP_TUNNEL_LISTEN,
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
	SSL *ssl;			/* a tunnel endpoint; NULL for plain TCP */
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

/* Where a tunnel flow is before its bytes may flow. */
enum phase {
	PH_PUMP,			/* bytes flow (every plain flow) */
	PH_CONNECT,			/* outbound: TCP to the peer agent */
	PH_TLS,				/* the TLS handshake */
	PH_SEND,			/* writing f->hs (OPEN or VERDICT) */
	PH_RECV,			/* reading a frame into f->hs */
	PH_LOCAL,			/* inbound: connecting to the destination */
};

struct flow {
	struct endpoint client, upstream;
	struct relay up, down;		/* client -> upstream, upstream -> client */
	struct sluice_orig_dst dst;
	/* Tunnel flows: tun is the TLS endpoint (upstream outbound, client
	 * inbound); NULL for plain flows. */
	struct endpoint *tun;
	enum phase phase;
	bool inbound;
	bool hs_body;			/* PH_RECV: header read, reading payload */
	bool close_after_send;		/* inbound deny: close once sent */
	/* Inbound: the tunnel ops heard how the flow ends (tunnel_refused,
	 * authorize's deny or setup_failed), so one decision is one line. */
	bool told;
	uint8_t *hs;			/* the frame being sent or received */
	size_t hs_len, hs_off;
	struct frame_verdict verdict;	/* inbound allow: sent when connected */
	/* The peer agent: inbound, where it connected from; outbound, its
	 * tunnel listener. */
	struct sockaddr_storage peer;
	void *ctx;			/* the caller's, see proxy_ops */
	uint64_t start_ns;
	uint64_t last_ns;		/* last byte moved either way */
	/* On p->idle (oldest first) while open, on p->handshakes while a
	 * tunnel is set up, on p->dead once closed. */
	struct list_node idle_node;
	/* On p->busy while a direction has budget-limited work left. */
	struct list_node busy_node;
	bool dead;
	bool in_flight;			/* counted in p->in_flight[inbound] */
};

/* Tunnel handshakes in flight one way: outbound to peers, inbound accepted
 * and not pumping yet; in total and per host address (the source inbound,
 * the peer outbound). */
struct in_flight {
	unsigned int max, per_addr;	/* max 0: no cap */
	unsigned int nr;
	struct addr_count *by_addr;
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
	struct endpoint listen[3];	/* AF_INET, AF_INET6, tunnel; fd -1 unused */
	struct endpoint timer;
	uint64_t timer_at;		/* armed deadline, 0 when disarmed */
	uint64_t idle_ns;
	uint64_t now;			/* CLOCK_MONOTONIC at the start of the round */
	bool accept_paused;
	bool accept_err_logged;
	uint64_t accept_resume_ns;
	struct proxy_ops ops;
	struct keepalive_cfg keepalive;
	struct proxy_stats stats;
	struct list_node idle;
	struct list_node handshakes;	/* tunnel flows not yet pumping, oldest first */
	struct in_flight in_flight[2];	/* [0] outbound, [1] inbound */
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

/* Every socket of a flow: app, upstream and tunnel legs alike. */
static void sock_tune(const struct proxy *p, int fd)
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
				       HANDSHAKE_TIMEOUT_MS * NSEC_PER_MSEC;

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

static void endpoint_close(struct endpoint *e, int status)
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

static void hs_release(struct flow *f)
{
	/* An OPEN frame holds a bearer token. */
	if (f->hs) {
		OPENSSL_cleanse(f->hs, f->hs_len);
		free(f->hs);
	}
	f->hs = NULL;
	f->hs_len = f->hs_off = 0;
}

static void in_flight_put(struct proxy *p, struct flow *f)
{
	struct in_flight *l = &p->in_flight[f->inbound];

	if (!f->in_flight)
		return;
	f->in_flight = false;
	l->nr--;
	addr_count_dec(l->by_addr, &f->peer);
}

static void flow_close(struct proxy *p, struct flow *f, int status)
{
	uint64_t end = mono_ns();

	endpoint_close(&f->client, status);
	endpoint_close(&f->upstream, status);
	hs_release(f);
	in_flight_put(p, f);
	p->stats.active--;
	p->stats.buffered -= f->up.ring.len + f->down.ring.len;
	if (p->ops.flow_closed)
		p->ops.flow_closed(p->ops.ctx, f->ctx, &f->dst, f->up.bytes, f->down.bytes,
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

/* What an SSL call that did not complete means for the endpoint: -EAGAIN
 * to wait for the edge it named (the caller clears the flag for its own
 * direction), -EINPROGRESS when it waits for the other one (no flag
 * changes: that edge pumps the flow again), or the error that ends it. */
static int tls_error(struct endpoint *e, int ret, bool reading)
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
	if (r->dst->ssl)
		return tls_write(r->dst, iov[0].iov_base, iov[0].iov_len);
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
			} else if (n != -EINPROGRESS) {
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
			} else if (n != -EINPROGRESS) {
				return n;
			}
		}
		if (r->eof && !r->ring.len && !r->shut && !r->dst->connecting) {
			n = shut_write(r->dst);
			if (n < 0 && n != -EAGAIN && n != -EINPROGRESS)
				return n;
			r->shut = !n;
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

static int endpoint_add(struct proxy *p, struct endpoint *e)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = e,
	};

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, e->fd, &ev) ? -errno : 0;
}

static void ssl_take(struct endpoint *e, SSL *ssl)
{
	e->ssl = ssl;
	/* The ring hands SSL_write the same bytes at a different address
	 * after it wraps, and one record per call keeps other flows going. */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_fd(ssl, e->fd);
}

/* From the handshake deadline to the idle timeout. */
static void tunnel_pumping(struct proxy *p, struct flow *f)
{
	in_flight_put(p, f);
	f->phase = PH_PUMP;
	f->last_ns = p->now;
	list_del(&f->idle_node);
	list_add_tail(&f->idle_node, &p->idle);
}

/* Inbound: tells the tunnel ops, once, why a flow that never reached
 * PH_PUMP ends: refused before authorize could decide, or allowed and then
 * failed. */
static void inbound_failed(struct proxy *p, struct flow *f, const char *reason,
			   const char *detail)
{
	if (f->told)
		return;
	f->told = true;
	if (f->ctx && p->ops.setup_failed)
		p->ops.setup_failed(p->ops.tunnel_ctx, f->ctx, reason, detail);
	else if (!f->ctx && p->ops.tunnel_refused)
		p->ops.tunnel_refused(p->ops.tunnel_ctx, f->tun->ssl, &f->peer, reason, detail);
}

/* Ends a tunnel flow that never reached PH_PUMP. */
static void tunnel_fail(struct proxy *p, struct flow *f, const char *reason, const char *detail,
			int status)
{
	struct frame_verdict v = { .allow = 0 };

	p->stats.tunnels_refused++;
	if (f->inbound) {
		inbound_failed(p, f, reason, detail);
	} else if (p->ops.verdict) {
		snprintf(v.reason, sizeof(v.reason), "%s", reason);
		p->ops.verdict(p->ops.tunnel_ctx, f->ctx, &v);
	}
	flow_close(p, f, status);
}

/* The oldest handshake one way, from or to addr's host (NULL: any). */
static struct flow *in_flight_oldest(struct proxy *p, bool inbound,
				     const struct sockaddr_storage *addr)
{
	struct list_node *n;
	struct flow *f;

	for (n = p->handshakes.next; n != &p->handshakes; n = n->next) {
		f = node_flow(n, idle_node);
		if (f->in_flight && f->inbound == inbound &&
		    (!addr || addr_same_host(&f->peer, addr)))
			return f;
	}
	return NULL;
}

static void in_flight_drop(struct proxy *p, struct flow *f)
{
	if (!f->inbound) {
		p->stats.handshakes_refused_out++;
		tunnel_fail(p, f, "handshake-limit", "too many tunnel handshakes in flight",
			    -ECONNRESET);
		return;
	}
	/* Counted, not audited: a flood would write a line per connection.
	 * The agent logs the count, rate-limited. */
	p->stats.handshakes_refused_in++;
	p->stats.tunnels_refused++;
	flow_close(p, f, -ECONNRESET);
}

/*
 * Counts f, a tunnel flow starting its handshake, first dropping the oldest
 * handshake that way (of f's host, if that is the cap met). Dropping the
 * oldest costs no more than refusing the newest, and under a flood of idle
 * connections a real handshake, done in milliseconds, completes as long as
 * the cap holds more than arrive meanwhile; refusing new ones (or leaving
 * them in the listen backlog, first come first served) would lock a real
 * peer out until the flood timed out.
 */
static void in_flight_take(struct proxy *p, struct flow *f)
{
	struct in_flight *l = &p->in_flight[f->inbound];
	struct flow *old = NULL;

	if (!l->max)
		return;
	if (addr_count_get(l->by_addr, &f->peer) >= l->per_addr)
		old = in_flight_oldest(p, f->inbound, &f->peer);
	else if (l->nr >= l->max)
		old = in_flight_oldest(p, f->inbound, NULL);
	if (old)
		in_flight_drop(p, old);
	/* Room was made: fewer hosts are counted than the table holds. */
	if (addr_count_inc(l->by_addr, &f->peer))
		return;
	l->nr++;
	f->in_flight = true;
}

/* Why a handshake failed, in words a user can act on. */
static const char *tls_failure(SSL *ssl, char *buf, size_t len)
{
	long vr = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();

	/* Leaves are issued by the mesh CA itself (depth 0): a peer that
	 * sends a chain of its own was issued by another CA, which OpenSSL
	 * words as the chain being too long. */
	if (vr == X509_V_ERR_CERT_CHAIN_TOO_LONG)
		snprintf(buf, len, "certificate: not issued by this mesh's CA (the peer sent "
				   "a chain through another issuer)");
	else if (vr != X509_V_OK)
		snprintf(buf, len, "certificate: %s", X509_verify_cert_error_string(vr));
	else if (e && ERR_reason_error_string(e))
		snprintf(buf, len, "%s", ERR_reason_error_string(e));
	else
		snprintf(buf, len, "connection closed during the handshake");
	ERR_clear_error();
	return buf;
}

static int hs_expect(struct flow *f, size_t len)
{
	hs_release(f);
	f->hs = malloc(len);
	if (!f->hs)
		return -ENOMEM;
	f->hs_len = len;
	f->phase = PH_RECV;
	return 0;
}

/* Sends v and, for a deny, closes once it is out. */
static void send_verdict(struct proxy *p, struct flow *f, const struct frame_verdict *v)
{
	hs_release(f);
	if (frame_verdict_encode(v, &f->hs, &f->hs_len)) {
		flow_close(p, f, -ENOMEM);
		return;
	}
	f->close_after_send = !v->allow;
	f->phase = PH_SEND;
}

static void local_connected(struct proxy *p, struct flow *f)
{
	send_verdict(p, f, &f->verdict);
}

/* Inbound: the destination refused; the peer hears it as a deny. */
static void local_failed(struct proxy *p, struct flow *f, int err)
{
	struct frame_verdict v = { .allow = 0, .reason = "upstream-refused" };

	p->stats.upstream_failed++;
	p->stats.tunnels_refused++;
	endpoint_close(&f->upstream, err);
	inbound_failed(p, f, v.reason, strerror(-err));
	send_verdict(p, f, &v);
}

/* Inbound: a whole OPEN payload is in f->hs. */
static void open_received(struct proxy *p, struct flow *f)
{
	struct proxy_authz az = { .allow = false };
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd;

	p->ops.authorize(p->ops.tunnel_ctx, f->tun->ssl, &f->peer, f->hs, f->hs_len, &az);
	f->ctx = az.flow_ctx;
	f->verdict = az.verdict;
	/* authorize audited a deny; an allow is audited when it ends. */
	f->told = !az.allow;
	hs_release(f);
	if (!az.allow) {
		p->stats.tunnels_refused++;
		send_verdict(p, f, &az.verdict);
		return;
	}
	ss = az.dst;
	sslen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	f->dst = (struct sluice_orig_dst){ .family = ss.ss_family,
					   .port = htons(sockaddr_port(&ss)) };
	memcpy(f->dst.addr, sockaddr_words(&ss), ss.ss_family == AF_INET6 ? 16 : 4);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		tunnel_fail(p, f, "upstream-refused", strerror(errno), -errno);
		return;
	}
	f->upstream.fd = fd;
	sock_tune(p, fd);
	f->phase = PH_LOCAL;
	if (connect(fd, (struct sockaddr *)&ss, sslen) && errno != EINPROGRESS) {
		local_failed(p, f, -errno);
		return;
	}
	f->upstream.connecting = true;
	if (endpoint_add(p, &f->upstream))
		flow_close(p, f, -errno);
}

/* Outbound: a whole VERDICT payload is in f->hs. */
static void verdict_received(struct proxy *p, struct flow *f)
{
	struct frame_verdict v;
	const char *detail;

	if (frame_verdict_decode(f->hs, f->hs_len, &v, &detail)) {
		memset(&v, 0, sizeof(v));
		snprintf(v.reason, sizeof(v.reason), "%s", FRAME_MALFORMED);
	}
	hs_release(f);
	if (p->ops.verdict)
		p->ops.verdict(p->ops.tunnel_ctx, f->ctx, &v);
	if (!v.allow) {
		p->stats.tunnels_refused++;
		flow_close(p, f, -ECONNREFUSED);
		return;
	}
	tunnel_pumping(p, f);
	/* The verdict's record may have carried the first response bytes. */
	f->tun->readable = f->tun->writable = true;
}

/* A frame (header, then payload) is complete in f->hs. */
static void frame_received(struct proxy *p, struct flow *f)
{
	struct frame_verdict v = { .allow = 0 };
	const char *why;
	int len;

	if (f->hs_body) {
		if (f->inbound)
			open_received(p, f);
		else
			verdict_received(p, f);
		return;
	}
	len = frame_hdr_parse(f->hs, f->inbound ? FRAME_OPEN : FRAME_VERDICT, &why);
	if (len < 0) {
		if (!f->inbound) {
			tunnel_fail(p, f, why, "bad VERDICT frame", -ECONNREFUSED);
			return;
		}
		p->stats.tunnels_refused++;
		inbound_failed(p, f, why, "bad OPEN frame header");
		/* The rest is never read: a 1 MiB frame costs its header. */
		snprintf(v.reason, sizeof(v.reason), "%s", why);
		send_verdict(p, f, &v);
		return;
	}
	if (hs_expect(f, len)) {
		flow_close(p, f, -ENOMEM);
		return;
	}
	f->hs_body = true;
}

/* One step of PH_TLS, PH_SEND or PH_RECV: 1 when it completed, 0 when it
 * waits for an edge, -1 when the flow is gone. */
static int tunnel_step(struct proxy *p, struct flow *f)
{
	SSL *ssl = f->tun->ssl;
	char buf[160];
	size_t n;
	int ret;

	switch (f->phase) {
	case PH_TLS:
		ret = SSL_do_handshake(ssl);
		if (ret == 1)
			return 1;
		/* Not tls_error(): the error queue says why, keep it. */
		ret = SSL_get_error(ssl, ret);
		if (ret == SSL_ERROR_WANT_READ || ret == SSL_ERROR_WANT_WRITE)
			return 0;
		tunnel_fail(p, f, "tls-handshake-failed", tls_failure(ssl, buf, sizeof(buf)),
			    -ECONNRESET);
		return -1;
	case PH_SEND:
		/* Partial writes are on: a frame longer than a record goes out
		 * in several calls, and no new event comes while the socket
		 * stays writable. */
		while ((ret = SSL_write_ex(ssl, f->hs + f->hs_off, f->hs_len - f->hs_off, &n)) > 0) {
			f->hs_off += n;
			if (f->hs_off == f->hs_len)
				return 1;
		}
		ret = tls_error(f->tun, ret, false);
		if (ret == -EAGAIN || ret == -EINPROGRESS)
			return 0;
		/* Inbound, only a VERDICT is ever sent. */
		tunnel_fail(p, f, f->inbound ? "verdict-not-sent" : "tunnel-broken",
			    strerror(EPIPE), -ECONNRESET);
		return -1;
	case PH_RECV:
		/* SSL_read returns one record at a time: with edge-triggered
		 * sockets no new event comes for what is already queued, so read
		 * on until the frame is whole or the socket is drained. */
		while ((ret = SSL_read_ex(ssl, f->hs + f->hs_off, f->hs_len - f->hs_off, &n)) > 0) {
			f->hs_off += n;
			if (f->hs_off == f->hs_len)
				return 1;
		}
		ret = tls_error(f->tun, ret, true);
		if (ret == -EAGAIN || ret == -EINPROGRESS)
			return 0;
		snprintf(buf, sizeof(buf), "closed after %zu of %zu %s bytes", f->hs_off,
			 f->hs_len, f->hs_body ? "payload" : "header");
		tunnel_fail(p, f, f->inbound ? FRAME_TRUNCATED : "no-verdict", buf,
			    -ECONNRESET);
		return -1;
	default:
		return 0;
	}
}

/* Moves a tunnel flow through its phases as far as its sockets allow. */
static void tunnel_advance(struct proxy *p, struct flow *f)
{
	int ret;

	while (f->phase != PH_PUMP && f->phase != PH_CONNECT && f->phase != PH_LOCAL) {
		ret = tunnel_step(p, f);
		if (ret <= 0)
			return;
		switch (f->phase) {
		case PH_TLS:
			if (f->inbound) {
				if (hs_expect(f, FRAME_HDR_LEN)) {
					flow_close(p, f, -ENOMEM);
					return;
				}
				f->hs_body = false;
			} else if (p->ops.tunnel_ready &&
				   (ret = p->ops.tunnel_ready(p->ops.tunnel_ctx, f->ctx, f->tun->ssl))) {
				p->stats.tunnels_refused++;
				flow_close(p, f, ret);
				return;
			} else {
				f->phase = PH_SEND;
			}
			break;
		case PH_SEND:
			hs_release(f);
			if (f->close_after_send) {
				SSL_shutdown(f->tun->ssl);
				flow_close(p, f, 0);
				return;
			}
			if (f->inbound) {
				tunnel_pumping(p, f);
				f->tun->readable = f->tun->writable = true;
			} else if (hs_expect(f, FRAME_HDR_LEN)) {
				flow_close(p, f, -ENOMEM);
				return;
			} else {
				f->hs_body = false;
			}
			break;
		case PH_RECV:
			frame_received(p, f);
			if (f->dead)
				return;
			break;
		default:
			return;
		}
	}
	if (f->phase == PH_PUMP) {
		f->upstream.writable = f->client.writable = true;
		flow_pump(p, f);
	}
}

static void flow_event(struct proxy *p, struct endpoint *e, uint32_t ev)
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
		if (f->phase == PH_CONNECT)
			f->phase = PH_TLS;
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

static void flow_open(struct proxy *p, int cfd, const struct sockaddr_storage *peer)
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
				p->ops.flow_closed(p->ops.ctx, route.flow_ctx, &dst, 0, 0, 0,
						   -ENOMEM);
			SSL_free(route.ssl);
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
		f->phase = PH_TLS;
	}
	err = endpoint_add(p, &f->client);
	if (!err)
		err = endpoint_add(p, &f->upstream);
	if (err)
		flow_close(p, f, err);
	else if (f->phase == PH_TLS)
		tunnel_advance(p, f);
}

/* Inbound: a peer agent connected to the tunnel listener. */
static void tunnel_open(struct proxy *p, int fd, const struct sockaddr_storage *peer)
{
	struct flow *f;
	SSL *ssl;

	ssl = p->ops.tunnel_accept(p->ops.tunnel_ctx);
	f = ssl ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		SSL_free(ssl);
		p->stats.tunnels_refused++;
		close_reset(fd);
		return;
	}
	p->stats.tunnels_in++;
	f->inbound = true;
	f->peer = *peer;
	f->start_ns = mono_ns();
	f->last_ns = p->now;
	f->client = (struct endpoint){ .fd = fd, .kind = EP_CLIENT, .flow = f };
	f->upstream = (struct endpoint){ .fd = -1, .kind = EP_UPSTREAM, .flow = f };
	f->up = (struct relay){ .src = &f->client, .dst = &f->upstream,
				.stat_bytes = &p->stats.bytes_up };
	f->down = (struct relay){ .src = &f->upstream, .dst = &f->client,
				  .stat_bytes = &p->stats.bytes_down };
	list_init(&f->busy_node);
	in_flight_take(p, f);
	list_add_tail(&f->idle_node, &p->handshakes);
	p->stats.active++;
	f->tun = &f->client;
	ssl_take(f->tun, ssl);
	SSL_set_accept_state(ssl);
	f->phase = PH_TLS;
	sock_tune(p, fd);
	if (endpoint_add(p, &f->client)) {
		flow_close(p, f, -errno);
		return;
	}
	tunnel_advance(p, f);
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

/* What a flow that the handshake deadline ends was waiting for. */
static const char *deadline_reason(const struct flow *f, const char **detail)
{
	*detail = "tunnel not set up in time";
	if (!f->inbound)
		return "no-verdict";
	if (f->phase == PH_LOCAL) {
		*detail = "the destination did not answer in time";
		return "upstream-connect-timeout";
	}
	/* Allowed, connected, and the peer does not take the VERDICT. */
	return f->ctx ? "verdict-not-sent" : "handshake-timeout";
}

static void idle_expire(struct proxy *p)
{
	const char *reason, *detail;

	while (!list_empty(&p->handshakes)) {
		struct flow *f = node_flow(p->handshakes.next, idle_node);

		if (f->start_ns + HANDSHAKE_TIMEOUT_MS * NSEC_PER_MSEC > p->now)
			break;
		p->stats.idle_timeouts++;
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

int proxy_set_handshake_limit(struct proxy *p, unsigned int max, unsigned int per_addr)
{
	for (int i = 0; i < 2; i++) {
		struct in_flight *l = &p->in_flight[i];

		addr_count_free(l->by_addr);
		*l = (struct in_flight){ .max = max,
					 .per_addr = per_addr && per_addr < max ? per_addr : max };
		if (max && addr_count_new(max, &l->by_addr)) {
			l->max = 0;
			return -ENOMEM;
		}
	}
	return 0;
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
