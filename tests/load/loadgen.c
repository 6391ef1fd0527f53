// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadgen: N connections to one echo server, held for T seconds with bytes
 * moving on each, every byte checked against the pattern it was sent with.
 *
 *   loadgen [-c conns] [-t seconds] [-s msg_bytes] [-i interval_ms]
 *           [-w window] [-r ramp_seconds] ADDR:PORT
 *
 * It opens the connections with at most `window` of them not through their
 * first echo yet: through the tunnel that first echo is a TLS handshake,
 * and the agents cap handshakes in flight (docs/tunnel.md). Then each
 * connection sends msg_bytes every interval_ms (the connections spread
 * over the interval) and reads them back. After T seconds it stops
 * sending and waits for what is still on its way.
 *
 * Prints "established N" when the ramp is over, then one line of
 * key=value pairs; exits 0 when every connection opened, every one had an
 * echo back after its first (when T > 0), and nothing was
 * dropped, lost or corrupted, 1 otherwise, 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 4096
#define EVENT_BATCH 512
/* After T seconds: how long echoes still on their way may take. */
#define DRAIN_MS 10000
/* Round-trip histogram: 50 us buckets up to 10 s, the last one above. */
#define HIST_US 50
#define HIST_LEN 200000
#define NSEC_PER_USEC 1000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

enum conn_state {
	CS_CONNECTING,
	CS_WAIT_ECHO, /* a message is out, its echo not all back */
	CS_IDLE,      /* echoed; waits for its next turn */
	CS_DONE,      /* closed: failed, dropped or corrupted */
};

struct conn {
	int fd;
	uint32_t id;
	enum conn_state state;
	bool established;    /* its first echo came back */
	bool echoed;	     /* an echo came back after the first */
	uint64_t sent, rcvd; /* stream offsets */
	uint64_t unsent;     /* bytes of the current message not written yet */
	uint64_t open_ns, send_ns;
};

struct hist {
	uint32_t *b;
	uint64_t n;
	uint64_t max_us;
};

struct opts {
	int conns;
	int seconds;
	int msg;
	int interval_ms;
	int window;
	int ramp_s;
	struct sockaddr_storage dst;
	socklen_t dst_len;
};

struct load {
	struct opts o;
	int epfd;
	struct conn *c;
	int nr_open; /* sockets made so far */
	int pending; /* opened, first echo not back */
	int established, failed, dropped, corrupted;
	uint64_t lost, bytes, late;
	int stalled; /* open to the end, and no echo after the first */
	struct hist rtt, first;
	bool sending;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* The byte at offset off of connection id's stream. Odd multiplier: a
 * byte lost or duplicated shifts every byte after it off the pattern; the
 * off >> 8 term catches a loss of a whole multiple of 256 bytes, and id
 * catches bytes of another connection. */
static uint8_t pattern(uint32_t id, uint64_t off)
{
	return (uint8_t)(off * 251 + (off >> 8) * 13 + id * 131);
}

static void hist_add(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / NSEC_PER_USEC, i = us / HIST_US;

	h->b[i < HIST_LEN ? i : HIST_LEN - 1]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

/* The q-th quantile in microseconds (a bucket's upper edge). */
static uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * h->n), seen = 0;

	for (int i = 0; i < HIST_LEN; i++) {
		seen += h->b[i];
		if (seen > want)
			return (uint64_t)(i + 1) * HIST_US;
	}
	return h->max_us;
}

static void conn_end(struct load *l, struct conn *c, int *counter)
{
	if (c->state == CS_DONE)
		return;
	if (!c->established)
		l->pending--;
	(*counter)++;
	c->state = CS_DONE;
	close(c->fd);
	c->fd = -1;
}

/* Writes what is left of the current message; arms EPOLLOUT while some
 * of it does not fit. */
static void conn_write(struct load *l, struct conn *c)
{
	uint8_t buf[MSG_MAX];
	uint64_t off = c->sent;
	struct epoll_event ev = {.data.ptr = c};
	ssize_t n;

	for (uint64_t i = 0; i < c->unsent; i++)
		buf[i] = pattern(c->id, off + i);
	n = send(c->fd, buf, c->unsent, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN) {
		conn_end(l, c, c->established ? &l->dropped : &l->failed);
		return;
	}
	if (n > 0) {
		c->sent += n;
		c->unsent -= n;
	}
	ev.events = EPOLLIN | (c->unsent ? EPOLLOUT : 0);
	epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_send(struct load *l, struct conn *c, uint64_t now)
{
	c->state = CS_WAIT_ECHO;
	c->send_ns = now;
	c->unsent = l->o.msg;
	conn_write(l, c);
}

/* The first echo's time is the connection's setup (a TLS handshake
 * through the tunnel): it goes to first, not to the round trips. */
static void conn_echoed(struct load *l, struct conn *c, uint64_t now)
{
	c->state = CS_IDLE;
	if (c->established) {
		hist_add(&l->rtt, now - c->send_ns);
		c->echoed = true;
		return;
	}
	c->established = true;
	l->established++;
	l->pending--;
	hist_add(&l->first, now - c->open_ns);
}

static void conn_read(struct load *l, struct conn *c, uint64_t now)
{
	uint8_t buf[MSG_MAX];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || c->rcvd + n > c->sent) {
			int *ended = c->established ? &l->dropped : &l->failed;

			/* EOF, an error, or bytes never sent: all the
			 * connection's end, but more bytes than sent is
			 * corruption. */
			conn_end(l, c, n > 0 ? &l->corrupted : ended);
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != pattern(c->id, c->rcvd + i)) {
				conn_end(l, c, &l->corrupted);
				return;
			}
		}
		c->rcvd += n;
		l->bytes += n;
		if (c->rcvd == c->sent && !c->unsent)
			conn_echoed(l, c, now);
	}
}

static int conn_open(struct load *l, uint64_t now)
{
	struct conn *c = &l->c[l->nr_open];
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	int one = 1;

	c->id = l->nr_open++;
	c->open_ns = now;
	c->state = CS_CONNECTING;
	l->pending++;
	c->fd = socket(l->o.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_end(l, c, &l->failed);
		return -errno;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((connect(c->fd, (struct sockaddr *)&l->o.dst, l->o.dst_len) && errno != EINPROGRESS) ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
		conn_end(l, c, &l->failed);
		return -errno;
	}
	return 0;
}

static void conn_event(struct load *l, struct conn *c, uint32_t events, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == CS_DONE)
		return;
	if (c->state == CS_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			conn_end(l, c, &l->failed);
			return;
		}
		conn_send(l, c, now);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(l, c, now);
	if (c->state != CS_DONE && (events & EPOLLOUT) && c->unsent)
		conn_write(l, c);
}

static void poll_once(struct load *l, int timeout_ms)
{
	struct epoll_event ev[EVENT_BATCH];
	uint64_t now;
	int n;

	n = epoll_wait(l->epfd, ev, EVENT_BATCH, timeout_ms);
	now = now_ns();
	for (int i = 0; i < n; i++)
		conn_event(l, ev[i].data.ptr, ev[i].events, now);
}

/* Opens every connection, at most window of them before their first echo;
 * those still pending at the deadline count as failed. */
static void ramp(struct load *l)
{
	uint64_t end = now_ns() + l->o.ramp_s * NSEC_PER_SEC;

	while (l->established + l->failed + l->dropped + l->corrupted < l->o.conns &&
	       now_ns() < end) {
		while (l->nr_open < l->o.conns && l->pending < l->o.window)
			if (conn_open(l, now_ns()) == -EMFILE)
				break;
		poll_once(l, 10);
	}
	for (int i = 0; i < l->nr_open; i++)
		if (!l->c[i].established)
			conn_end(l, &l->c[i], &l->failed);
	l->failed += l->o.conns - l->nr_open;
}

/* Connection i's turn comes at start + k * interval + i * interval / N: a
 * cursor walks them in that order. One whose echo is not back at its turn
 * skips it (counted late) rather than queue a second message. */
static void hold(struct load *l)
{
	uint64_t interval = l->o.interval_ms * NSEC_PER_MSEC;
	uint64_t start = now_ns(), end = start + l->o.seconds * NSEC_PER_SEC;
	uint64_t round = 0, now;
	int cur = 0;

	while ((now = now_ns()) < end) {
		for (;;) {
			uint64_t due =
			    start + round * interval + (uint64_t)cur * interval / l->nr_open;
			struct conn *c = &l->c[cur];

			if (due > now)
				break;
			if (c->state == CS_IDLE)
				conn_send(l, c, now);
			else if (c->state == CS_WAIT_ECHO)
				l->late++;
			if (++cur == l->nr_open) {
				cur = 0;
				round++;
			}
		}
		poll_once(l, 1);
	}
}

/* Waits for the echoes still on their way; what does not come back is
 * lost. */
static void drain(struct load *l)
{
	uint64_t end = now_ns() + DRAIN_MS * NSEC_PER_MSEC;
	bool waiting = true;

	while (waiting && now_ns() < end) {
		poll_once(l, 10);
		waiting = false;
		for (int i = 0; i < l->nr_open && !waiting; i++)
			waiting = l->c[i].state == CS_WAIT_ECHO;
	}
	for (int i = 0; i < l->nr_open; i++) {
		struct conn *c = &l->c[i];

		if (c->state == CS_DONE)
			continue;
		l->lost += c->sent - c->rcvd;
		l->stalled += !c->echoed && l->o.seconds;
		close(c->fd);
	}
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const char *colon = strrchr(s, ':');
	char host[64];
	int port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -EINVAL;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int opt;

	*o = (struct opts){.conns = 100,
			   .seconds = 5,
			   .msg = 64,
			   .interval_ms = 1000,
			   .window = 128,
			   .ramp_s = 120};
	while ((opt = getopt(argc, argv, "c:t:s:i:w:r:")) != -1) {
		switch (opt) {
		case 'c':
			o->conns = atoi(optarg);
			break;
		case 't':
			o->seconds = atoi(optarg);
			break;
		case 's':
			o->msg = atoi(optarg);
			break;
		case 'i':
			o->interval_ms = atoi(optarg);
			break;
		case 'w':
			o->window = atoi(optarg);
			break;
		case 'r':
			o->ramp_s = atoi(optarg);
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind != argc - 1 || o->conns < 1 || o->seconds < 0 || o->msg < 1 ||
	    o->msg > MSG_MAX || o->interval_ms < 1 || o->window < 1 || o->ramp_s < 1)
		return -EINVAL;
	return parse_addr(argv[optind], &o->dst, &o->dst_len);
}

/* The soft fd limit up to the hard one: every connection is an fd. */
static int raise_nofile(int conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	return rl.rlim_cur < (rlim_t)conns + 16 ? -EMFILE : 0;
}

static void report(const struct load *l)
{
	printf("opened=%d established=%d failed=%d dropped=%d corrupted=%d lost=%llu "
	       "bytes=%llu messages=%llu late=%llu rtt_p50_us=%llu rtt_p99_us=%llu "
	       "rtt_max_us=%llu first_p50_us=%llu first_max_us=%llu stalled=%d\n",
	       l->nr_open, l->established, l->failed, l->dropped, l->corrupted,
	       (unsigned long long)l->lost, (unsigned long long)l->bytes,
	       (unsigned long long)l->rtt.n, (unsigned long long)l->late,
	       (unsigned long long)hist_quantile(&l->rtt, 0.5),
	       (unsigned long long)hist_quantile(&l->rtt, 0.99), (unsigned long long)l->rtt.max_us,
	       (unsigned long long)hist_quantile(&l->first, 0.5),
	       (unsigned long long)l->first.max_us, l->stalled);
}

int main(int argc, char **argv)
{
	struct load l = {};
	int ret;
	bool ok;

	if (parse_opts(argc, argv, &l.o)) {
		fprintf(stderr, "usage: loadgen [-c conns] [-t seconds] [-s msg_bytes] "
				"[-i interval_ms] [-w window] [-r ramp_seconds] ADDR:PORT\n");
		return 2;
	}
	ret = raise_nofile(l.o.conns);
	if (ret) {
		fprintf(stderr, "loadgen: fd limit too low for %d connections\n", l.o.conns);
		return 1;
	}
	l.c = calloc(l.o.conns, sizeof(*l.c));
	l.rtt.b = calloc(HIST_LEN, sizeof(*l.rtt.b));
	l.first.b = calloc(HIST_LEN, sizeof(*l.first.b));
	l.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!l.c || !l.rtt.b || !l.first.b || l.epfd < 0) {
		fprintf(stderr, "loadgen: %s\n", strerror(l.epfd < 0 ? errno : ENOMEM));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	ramp(&l);
	printf("established %d\n", l.established);
	if (l.established)
		hold(&l);
	drain(&l);
	report(&l);
	ok = l.nr_open == l.o.conns && l.established == l.o.conns && !l.stalled && !l.dropped &&
	     !l.corrupted && !l.lost;
	return ok ? 0 : 1;
}
