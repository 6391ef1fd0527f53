/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the proxy unit tests share: the thread that runs the proxies under
 * test, and the pattern streams that prove no byte was lost, duplicated or
 * reordered. The thread is driven only by the proxies' fds turning
 * readable, so a proxy that needed extra calls (for timers or leftover
 * work) would hang a test. Include after <cmocka.h>.
 */
#ifndef SLUICE_TEST_PROXY_HARNESS_H
#define SLUICE_TEST_PROXY_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sluice/abi.h>

#include "addr.h"
#include "clock.h"
#include "proxy.h"

#define PROXY_LOOP_MAX 2
/* A prime, so a byte lost, duplicated or reordered shifts the stream off
 * the pattern and no whole-period slip keeps the total length. */
#define PATTERN_LEN 1048573

static unsigned char pattern[PATTERN_LEN];

struct proxy_loop {
	struct proxy *p[PROXY_LOOP_MAX];
	int nr;
	pthread_t thread;
	/* Held while a proxy runs: what its callbacks record, and the knobs
	 * they read, change under it. */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* broadcast after every round */
	atomic_bool stop;
	atomic_ulong wakeups;		/* rounds in which a proxy fd was ready */
};

/* Before the proxies are made: their callbacks may take the lock. */
static inline void proxy_loop_init(struct proxy_loop *l)
{
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
}

static inline void *proxy_loop_thread(void *arg)
{
	struct proxy_loop *l = arg;
	struct pollfd pfd[PROXY_LOOP_MAX];

	for (int i = 0; i < l->nr; i++)
		pfd[i] = (struct pollfd){ .fd = proxy_fd(l->p[i]), .events = POLLIN };
	while (!atomic_load(&l->stop)) {
		if (poll(pfd, l->nr, 10) <= 0)
			continue;
		atomic_fetch_add(&l->wakeups, 1);
		pthread_mutex_lock(&l->lock);
		for (int i = 0; i < l->nr; i++) {
			if (pfd[i].revents)
				proxy_run_once(l->p[i]);
		}
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
	}
	return NULL;
}

/* Runs l->p[0..nr) until proxy_loop_stop(). */
static inline void proxy_loop_run(struct proxy_loop *l)
{
	assert_int_equal(pthread_create(&l->thread, NULL, proxy_loop_thread, l), 0);
}

/* Stops the thread and frees the proxies. */
static inline void proxy_loop_stop(struct proxy_loop *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->thread, NULL);
	for (int i = 0; i < l->nr; i++)
		proxy_free(l->p[i]);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

static inline void proxy_loop_stats(struct proxy_loop *l, int idx, struct proxy_stats *st)
{
	pthread_mutex_lock(&l->lock);
	proxy_get_stats(l->p[idx], st);
	pthread_mutex_unlock(&l->lock);
}

/* Up to seconds for a counter the callbacks keep to reach n; returns it. */
static inline int proxy_loop_wait(struct proxy_loop *l, const int *count, int n, int seconds)
{
	struct timespec until;
	int ret;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&l->lock);
	while (*count < n && pthread_cond_timedwait(&l->cond, &l->lock, &until) != ETIMEDOUT)
		;
	ret = *count;
	pthread_mutex_unlock(&l->lock);
	return ret;
}

/* Where a test maps every peer: the address, and a workload identity
 * and socket cookie for the callbacks to see. */
static inline void test_dst(const struct sockaddr_storage *ss, struct sluice_orig_dst *dst)
{
	sockaddr_orig_dst(ss, dst);
	dst->identity = 7;
	dst->cookie = 0xc00c1e;
}

/* Pseudo-random bytes, so no short period can hide a slip. */
static inline void pattern_init(void)
{
	unsigned int seed = 1;

	for (size_t i = 0; i < sizeof(pattern); i++) {
		seed = seed * 1103515245 + 12345;
		pattern[i] = seed >> 16;
	}
}

struct stream {
	int fd;
	uint64_t len;
	atomic_ullong done;		/* bytes sent, or received and matching */
	int err;			/* -errno, or -EILSEQ on a mismatch */
	bool eof;			/* receiver: ended on EOF */
	bool shutdown;			/* sender: shutdown(SHUT_WR) when done */
	uint64_t ms;			/* how long it took */
};

/* Sends len bytes of the pattern from its start. */
static inline void *pattern_send(void *arg)
{
	struct stream *s = arg;
	uint64_t start = mono_ms(), off = 0;

	while (off < s->len) {
		size_t at = off % PATTERN_LEN, n = PATTERN_LEN - at;
		ssize_t w;

		if (n > s->len - off)
			n = s->len - off;
		w = send(s->fd, pattern + at, n, MSG_NOSIGNAL);
		if (w < 0) {
			s->err = -errno;
			return NULL;
		}
		off += w;
		atomic_store(&s->done, off);
	}
	if (s->shutdown && shutdown(s->fd, SHUT_WR))
		s->err = -errno;
	s->ms = mono_ms() - start;
	return NULL;
}

/* Reads to EOF, checking every byte against the pattern. */
static inline void *pattern_recv(void *arg)
{
	static __thread unsigned char buf[256 * 1024];
	struct stream *s = arg;
	uint64_t start = mono_ms(), off = 0;

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		size_t i = 0;

		if (n < 0) {
			s->err = -errno;
			return NULL;
		}
		if (!n)
			break;
		while (i < (size_t)n) {
			size_t at = (off + i) % PATTERN_LEN, k = PATTERN_LEN - at;

			if (k > n - i)
				k = n - i;
			if (memcmp(buf + i, pattern + at, k)) {
				s->err = -EILSEQ;
				return NULL;
			}
			i += k;
		}
		off += n;
		atomic_store(&s->done, off);
	}
	s->eof = true;
	s->ms = mono_ms() - start;
	return NULL;
}

#endif
