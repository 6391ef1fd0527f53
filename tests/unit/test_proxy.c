// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The proxy on plain loopback sockets: no BPF, no privileges; it runs in
 * the thread of unit/proxy_harness.h. Every peer is mapped to a test
 * upstream listener.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "proxy.h"
#include "unit/proxy_harness.h"
#include "unit/sock_util.h"

#define IO_TIMEOUT_S 5
#define BULK_LEN (100ULL << 20)
#define IDLE_MS 300

struct harness {
	struct proxy_loop loop;		/* one proxy */
	int family;
	int upstream_lfd;
	struct sockaddr_storage upstream;	/* where every peer is mapped */
	/* Written by the proxy thread's callbacks, under lock. */
	bool miss;
	int lookups;
	struct sockaddr_storage last_peer;
	int created;
	int closed;
	uint64_t closed_up;
	uint64_t closed_down;
	int closed_status;
	struct sluice_orig_dst closed_dst;
};

static int cb_lookup(void *ctx, const struct sockaddr_storage *peer, struct sluice_orig_dst *out)
{
	struct harness *h = ctx;

	h->lookups++;
	h->last_peer = *peer;
	if (h->miss)
		return -ENOENT;
	test_dst(&h->upstream, out);
	return 0;
}

static void cb_upstream_created(void *ctx, int fd, const struct sluice_orig_dst *dst)
{
	struct harness *h = ctx;

	h->created++;
}

static void cb_flow_closed(void *ctx, void *flow_ctx, const struct sluice_orig_dst *dst,
			   const struct flow_end *e)
{
	struct harness *h = ctx;

	h->closed++;
	h->closed_up = e->bytes_up;
	h->closed_down = e->bytes_down;
	h->closed_status = e->status;
	h->closed_dst = *dst;
}

static int client_connect(struct harness *h)
{
	struct sockaddr_storage addr;

	assert_int_equal(proxy_listen_addr(h->loop.p[0], h->family, &addr), 0);
	return connect_to(&addr, IO_TIMEOUT_S);
}

static int accept_upstream(struct harness *h)
{
	return accept_within(h->upstream_lfd, IO_TIMEOUT_S);
}

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

/* Waits up to IO_TIMEOUT_S for flow_closed to have been called n times. */
static int wait_closed(struct harness *h, int n)
{
	return proxy_loop_wait(&h->loop, &h->closed, n, IO_TIMEOUT_S);
}

static void get_stats(struct harness *h, struct proxy_stats *st)
{
	proxy_loop_stats(&h->loop, 0, st);
}

static int harness_start(void **state, int family, unsigned int idle_ms)
{
	struct proxy_ops ops = {
		.lookup = cb_lookup,
		.upstream_created = cb_upstream_created,
		.flow_closed = cb_flow_closed,
	};
	struct sockaddr_storage listen;
	struct errmsg err = {};
	struct harness *h;
	int ret;

	h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->family = family;
	proxy_loop_init(&h->loop);
	h->upstream_lfd = listen_on(family, 16, &h->upstream);
	ops.ctx = h;
	loopback(family, &listen);
	ret = proxy_new(family == AF_INET ? &listen : NULL, family == AF_INET6 ? &listen : NULL,
			idle_ms, &ops, &h->loop.p[0], &err);
	if (ret)
		fail_msg("proxy_new: %d %s", ret, err.msg);
	h->loop.nr = 1;
	proxy_loop_run(&h->loop);
	*state = h;
	return 0;
}

static int setup4(void **state)
{
	return harness_start(state, AF_INET, 10000);
}

static int setup4_idle(void **state)
{
	return harness_start(state, AF_INET, IDLE_MS);
}

static int setup6(void **state)
{
	if (!ipv6_loopback_usable()) {
		*state = NULL;
		return 0;
	}
	return harness_start(state, AF_INET6, 10000);
}

static int teardown(void **state)
{
	struct harness *h = *state;

	if (!h)
		return 0;
	proxy_loop_stop(&h->loop);
	close(h->upstream_lfd);
	free(h);
	return 0;
}

static void *echo_once(void *arg)
{
	static __thread char buf[65536];
	int fd = *(int *)arg;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		write_full(fd, buf, n);
	shutdown(fd, SHUT_WR);
	return NULL;
}

/* Sends len pattern bytes through an echo upstream; checks them coming back. */
static void echo_round_trip(struct harness *h, uint64_t len)
{
	struct stream tx = { .len = len, .shutdown = true };
	struct stream rx = {};
	struct sockaddr_storage local;
	socklen_t slen = sizeof(local);
	pthread_t et, tt;
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	assert_int_equal(pthread_create(&et, NULL, echo_once, &ufd), 0);
	tx.fd = rx.fd = cfd;
	assert_int_equal(pthread_create(&tt, NULL, pattern_send, &tx), 0);
	pattern_recv(&rx);
	pthread_join(tt, NULL);
	pthread_join(et, NULL);
	assert_int_equal(tx.err, 0);
	assert_int_equal(rx.err, 0);
	assert_true(rx.eof);
	assert_int_equal(atomic_load(&rx.done), len);

	/* The lookup saw the client's own address, as the BPF side keys it. */
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&local, &slen), 0);
	pthread_mutex_lock(&h->loop.lock);
	assert_int_equal(h->lookups, 1);
	assert_memory_equal(&h->last_peer, &local, slen);
	pthread_mutex_unlock(&h->loop.lock);

	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, 0);
	assert_int_equal(h->closed_up, len);
	assert_int_equal(h->closed_down, len);
	close(cfd);
	close(ufd);
}

static void test_echo_64k(void **state)
{
	echo_round_trip(*state, 64 * 1024);
}

static void test_ipv6(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;

	if (!h)
		skip();
	assert_int_equal(proxy_listen_addr(h->loop.p[0], AF_INET, &addr), -ENOENT);
	echo_round_trip(h, 64 * 1024);
	assert_int_equal(h->closed_dst.family, AF_INET6);
}

/* One 100 MiB stream; returns its duration in ms. */
static uint64_t bulk_one(int src, int dst)
{
	struct stream tx = { .fd = src, .len = BULK_LEN, .shutdown = true };
	struct stream rx = { .fd = dst };
	pthread_t tt;

	assert_int_equal(pthread_create(&tt, NULL, pattern_send, &tx), 0);
	pattern_recv(&rx);
	pthread_join(tt, NULL);
	assert_int_equal(tx.err, 0);
	assert_int_equal(rx.err, 0);
	assert_true(rx.eof);
	assert_int_equal(atomic_load(&rx.done), BULK_LEN);
	return rx.ms ? rx.ms : 1;
}

static void test_bulk_100m(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	uint64_t up_ms, down_ms;
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	up_ms = bulk_one(cfd, ufd);
	down_ms = bulk_one(ufd, cfd);
	assert_int_equal(read_end(cfd), 0);
	assert_int_equal(read_end(ufd), 0);
	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, 0);
	assert_int_equal(h->closed_up, BULK_LEN);
	assert_int_equal(h->closed_down, BULK_LEN);
	get_stats(h, &st);
	assert_int_equal(st.bytes_up, BULK_LEN);
	assert_int_equal(st.bytes_down, BULK_LEN);
	assert_int_equal(st.buffered, 0);
	/* Generous enough for ASan on two busy cores. */
	assert_true(up_ms < 30000);
	assert_true(down_ms < 30000);
	print_message("100 MiB through the proxy: upload %llu MiB/s, download %llu MiB/s\n",
		      (unsigned long long)(100 * 1000 / up_ms),
		      (unsigned long long)(100 * 1000 / down_ms));
	close(cfd);
	close(ufd);
}

static void test_half_close(void **state)
{
	struct harness *h = *state;
	struct stream tx = { .len = 300 * 1024, .shutdown = true };
	struct stream rx = {};
	char reply[6] = {};
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	tx.fd = cfd;
	pattern_send(&tx);
	assert_int_equal(tx.err, 0);

	/* The upstream gets every byte, then EOF... */
	rx.fd = ufd;
	pattern_recv(&rx);
	assert_int_equal(rx.err, 0);
	assert_true(rx.eof);
	assert_int_equal(atomic_load(&rx.done), tx.len);

	/* ...while the other direction still works. */
	write_full(ufd, "reply", 5);
	assert_int_equal(read_full(cfd, reply, 5), 5);
	assert_string_equal(reply, "reply");
	pthread_mutex_lock(&h->loop.lock);
	assert_int_equal(h->closed, 0);
	pthread_mutex_unlock(&h->loop.lock);

	assert_int_equal(shutdown(ufd, SHUT_WR), 0);
	assert_int_equal(read_end(cfd), 0);
	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, 0);
	assert_int_equal(h->closed_up, tx.len);
	assert_int_equal(h->closed_down, 5);
	close(cfd);
	close(ufd);
}

static void test_upstream_refused(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	struct proxy_stats st;
	int closed_port, cfd;

	/* Bound but not listening: the port stays ours and refuses SYNs. */
	closed_port = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	loopback(AF_INET, &addr);
	assert_int_equal(bind(closed_port, (struct sockaddr *)&addr, ss_len(&addr)), 0);
	assert_int_equal(getsockname(closed_port, (struct sockaddr *)&addr, &len), 0);
	pthread_mutex_lock(&h->loop.lock);
	h->upstream = addr;
	pthread_mutex_unlock(&h->loop.lock);

	cfd = client_connect(h);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, -ECONNREFUSED);
	get_stats(h, &st);
	assert_int_equal(st.upstream_failed, 1);
	assert_int_equal(st.active, 0);
	close(cfd);
	close(closed_port);
}

/* One side resets after a request and response: the other side is reset. */
static void reset_midstream(struct harness *h, bool upstream_resets)
{
	char buf[10];
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	write_full(cfd, "request...", 10);
	assert_int_equal(read_full(ufd, buf, 10), 10);
	write_full(ufd, "response..", 10);
	assert_int_equal(read_full(cfd, buf, 10), 10);
	assert_memory_equal(buf, "response..", 10);

	reset_close(upstream_resets ? ufd : cfd);
	assert_int_equal(read_end(upstream_resets ? cfd : ufd), -ECONNRESET);
	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, -ECONNRESET);
	assert_int_equal(h->closed_up, 10);
	assert_int_equal(h->closed_down, 10);
	close(upstream_resets ? cfd : ufd);
}

static void test_upstream_reset(void **state)
{
	reset_midstream(*state, true);
}

static void test_client_reset(void **state)
{
	reset_midstream(*state, false);
}

static void test_lookup_miss(void **state)
{
	struct harness *h = *state;
	struct pollfd pfd = { .fd = h->upstream_lfd, .events = POLLIN };
	struct proxy_stats st;
	int cfd;

	pthread_mutex_lock(&h->loop.lock);
	h->miss = true;
	pthread_mutex_unlock(&h->loop.lock);
	cfd = client_connect(h);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	get_stats(h, &st);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.no_orig_dst, 1);
	assert_int_equal(st.active, 0);
	/* Nothing went upstream. */
	assert_int_equal(poll(&pfd, 1, 100), 0);
	pthread_mutex_lock(&h->loop.lock);
	assert_int_equal(h->created, 0);
	assert_int_equal(h->closed, 0);
	pthread_mutex_unlock(&h->loop.lock);
	close(cfd);
}

static void test_idle_timeout(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	uint64_t start, waited;
	int cfd, ufd;

	start = mono_ms();
	cfd = client_connect(h);
	ufd = accept_upstream(h);
	assert_int_equal(read_end(cfd), -ECONNRESET);
	waited = mono_ms() - start;
	assert_int_equal(read_end(ufd), -ECONNRESET);
	assert_true(waited >= IDLE_MS - 20);
	assert_true(waited < IDLE_MS + 1000);
	get_stats(h, &st);
	assert_int_equal(st.idle_timeouts, 1);
	assert_int_equal(st.active, 0);
	assert_int_equal(wait_closed(h, 1), 1);
	assert_int_equal(h->closed_status, -ETIMEDOUT);
	close(cfd);
	close(ufd);
}

/* Traffic in either direction keeps a flow alive past the timeout. */
static void test_idle_activity(void **state)
{
	struct harness *h = *state;
	struct proxy_stats st;
	uint64_t last;
	char c;
	int i, cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	for (i = 0; i < 8; i++) {
		usleep(IDLE_MS * 1000 / 3);
		if (i % 2) {
			write_full(cfd, "u", 1);
			assert_int_equal(read_full(ufd, &c, 1), 1);
		} else {
			write_full(ufd, "d", 1);
			assert_int_equal(read_full(cfd, &c, 1), 1);
		}
	}
	get_stats(h, &st);
	assert_int_equal(st.idle_timeouts, 0);
	last = mono_ms();
	assert_int_equal(read_end(cfd), -ECONNRESET);
	assert_true(mono_ms() - last >= IDLE_MS - 20);
	get_stats(h, &st);
	assert_int_equal(st.idle_timeouts, 1);
	close(cfd);
	close(ufd);
}

static void test_backpressure(void **state)
{
	struct harness *h = *state;
	struct stream tx = { .len = 10 << 20, .shutdown = true };
	struct stream rx = {};
	uint64_t max_buffered = 0, taken_mid = 0, end, mid;
	struct proxy_stats st;
	pthread_t tt;
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	tx.fd = cfd;
	assert_int_equal(pthread_create(&tt, NULL, pattern_send, &tx), 0);

	/* The upstream reads nothing for a second. */
	mid = mono_ms() + 500;
	end = mid + 500;
	while (mono_ms() < end) {
		get_stats(h, &st);
		if (st.buffered > max_buffered)
			max_buffered = st.buffered;
		if (!taken_mid && mono_ms() >= mid)
			taken_mid = st.bytes_up + st.buffered;
		usleep(5000);
	}
	assert_true(max_buffered <= PROXY_BUF_SIZE);
	/* The proxy holds one full buffer and has stopped reading: the rest
	 * of the 10 MiB waits in the client's socket, not in the proxy. */
	assert_int_equal(st.buffered, PROXY_BUF_SIZE);
	assert_int_equal(st.bytes_up + st.buffered, taken_mid);
	assert_true(st.bytes_up + st.buffered < tx.len);

	rx.fd = ufd;
	pattern_recv(&rx);
	pthread_join(tt, NULL);
	assert_int_equal(tx.err, 0);
	assert_int_equal(rx.err, 0);
	assert_true(rx.eof);
	assert_int_equal(atomic_load(&rx.done), tx.len);
	get_stats(h, &st);
	assert_int_equal(st.buffered, 0);
	close(cfd);
	close(ufd);
}

static void test_flow_closed_counts(void **state)
{
	struct harness *h = *state;
	static char big[12345];
	char req[1000];
	int cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	memset(req, 'q', sizeof(req));
	memset(big, 'r', sizeof(big));
	write_full(cfd, req, sizeof(req));
	assert_int_equal(read_full(ufd, req, sizeof(req)), sizeof(req));
	write_full(ufd, big, sizeof(big));
	assert_int_equal(read_full(cfd, big, sizeof(big)), sizeof(big));
	close(cfd);
	assert_int_equal(read_end(ufd), 0);
	close(ufd);

	assert_int_equal(wait_closed(h, 1), 1);
	/* Exactly once, even given time for a second call. */
	usleep(200 * 1000);
	pthread_mutex_lock(&h->loop.lock);
	assert_int_equal(h->closed, 1);
	assert_int_equal(h->created, 1);
	assert_int_equal(h->closed_up, 1000);
	assert_int_equal(h->closed_down, 12345);
	assert_int_equal(h->closed_status, 0);
	assert_int_equal(h->closed_dst.identity, 7);
	assert_int_equal(h->closed_dst.port, ((struct sockaddr_in *)&h->upstream)->sin_port);
	pthread_mutex_unlock(&h->loop.lock);
}

/* Client bytes sent while the upstream connect is still pending are held
 * and delivered once it completes. */
static void test_early_data(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;
	struct proxy_stats st;
	char buf[1000], got[1000];
	uint64_t end;
	int lfd, queued, cfd, ufd;

	/* A listener whose accept queue (backlog 0: one connection) is full
	 * drops SYNs, so the proxy's connect waits for a retransmit. */
	lfd = listen_on(AF_INET, 0, &addr);
	queued = connect_to(&addr, IO_TIMEOUT_S);
	pthread_mutex_lock(&h->loop.lock);
	h->upstream = addr;
	pthread_mutex_unlock(&h->loop.lock);

	cfd = client_connect(h);
	memset(buf, 'e', sizeof(buf));
	write_full(cfd, buf, sizeof(buf));
	assert_int_equal(shutdown(cfd, SHUT_WR), 0);
	end = mono_ms() + IO_TIMEOUT_S * 1000;
	do {
		usleep(1000);
		get_stats(h, &st);
	} while (st.buffered != sizeof(buf) && mono_ms() < end);
	assert_int_equal(st.buffered, sizeof(buf));
	assert_int_equal(st.bytes_up, 0);

	close(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
	close(queued);
	ufd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(ufd >= 0);
	set_timeouts(ufd, IO_TIMEOUT_S);
	assert_int_equal(read_full(ufd, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	assert_int_equal(read_end(ufd), 0);
	close(ufd);
	assert_int_equal(read_end(cfd), 0);
	close(cfd);
	close(lfd);
}

/* Write-write-read through the proxy: without TCP_NODELAY on its sockets
 * the second write waits for a delayed ACK (40 ms) on every round. */
static void test_no_nagle_delay(void **state)
{
	struct harness *h = *state;
	char buf[200] = {};
	uint64_t start;
	int i, one = 1, cfd, ufd;

	cfd = client_connect(h);
	ufd = accept_upstream(h);
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	start = mono_ms();
	for (i = 0; i < 50; i++) {
		write_full(cfd, buf, 100);
		usleep(1000);
		write_full(cfd, buf + 100, 100);
		assert_int_equal(read_full(ufd, buf, 200), 200);
		write_full(ufd, buf, 1);
		assert_int_equal(read_full(cfd, buf, 1), 1);
	}
	assert_true(mono_ms() - start < 1000);
	close(cfd);
	close(ufd);
}

/* With the config's defaults (minimal.yaml sets none) both legs of a flow
 * probe for a dead peer, with the values config.h documents: what keeps a
 * flow that is never reset for idling honest. */
static void test_keepalive_defaults(void **state)
{
	struct harness *h = *state;
	struct errmsg err = {};
	struct config cfg;
	int mine[2];

	assert_int_equal(config_load("tests/data/config/minimal.yaml", &cfg, &err), 0);
	pthread_mutex_lock(&h->loop.lock);
	proxy_set_keepalive(h->loop.p[0], &cfg.keepalive);
	pthread_mutex_unlock(&h->loop.lock);
	config_free(&cfg);
	mine[0] = client_connect(h);
	mine[1] = accept_upstream(h);
	assert_keepalive(mine, 2, 60, 10, 6);
	close(mine[0]);
	close(mine[1]);
}

/* Out of fds: the proxy must wait, not spin on a readable listener, and
 * accept the connection once fds are back. */
static void test_emfile_no_spin(void **state)
{
	struct harness *h = *state;
	struct sockaddr_storage addr;
	struct rlimit old, low;
	struct proxy_stats st;
	unsigned long wakeups;
	int lowest, cfd, ufd;

	assert_int_equal(proxy_listen_addr(h->loop.p[0], AF_INET, &addr), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	set_timeouts(cfd, IO_TIMEOUT_S);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	/* Every fd below the lowest free one is taken: nothing new fits. */
	low = old;
	low.rlim_cur = lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	assert_int_equal(connect(cfd, (struct sockaddr *)&addr, ss_len(&addr)), 0);
	usleep(100 * 1000);
	atomic_store(&h->loop.wakeups, 0);
	usleep(500 * 1000);
	wakeups = atomic_load(&h->loop.wakeups);
	get_stats(h, &st);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(st.accepted, 0);
	/* About one per 100 ms pause; a spinning proxy wakes thousands of times. */
	assert_true(wakeups <= 20);

	ufd = accept_upstream(h);
	write_full(cfd, "x", 1);
	assert_int_equal(read_end(ufd), 1);
	close(cfd);
	close(ufd);
}

static void test_bind_in_use(void **state)
{
	struct proxy_ops ops = { .lookup = cb_lookup };
	struct sockaddr_storage addr;
	struct errmsg err = {};
	struct proxy *p = NULL;
	char want[160];
	int lfd;

	lfd = listen_on(AF_INET, 1, &addr);
	assert_int_equal(proxy_new(&addr, NULL, 1000, &ops, &p, &err), -EADDRINUSE);
	assert_null(p);
	snprintf(want, sizeof(want),
		 "cannot listen on 127.0.0.1:%u: Address already in use "
		 "(is another sluiced running? change listen.outbound)",
		 ntohs(((struct sockaddr_in *)&addr)->sin_port));
	assert_string_equal(err.msg, want);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_echo_64k, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_100m, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_refused, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_reset, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_client_reset, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_miss, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup4_idle, teardown),
		cmocka_unit_test_setup_teardown(test_idle_activity, setup4_idle, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_flow_closed_counts, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_early_data, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_no_nagle_delay, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_defaults, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_no_spin, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup6, teardown),
		cmocka_unit_test(test_bind_in_use),
	};

	pattern_init();
	return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
