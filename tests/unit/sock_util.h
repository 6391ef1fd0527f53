/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loopback socket helpers the proxy unit tests share. Include after
 * <cmocka.h>: the helpers assert with it.
 */
#ifndef SLUICE_TEST_SOCK_UTIL_H
#define SLUICE_TEST_SOCK_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static inline void loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Whether this host can bind ::1: the IPv6 tests skip where it cannot. */
static inline bool ipv6_loopback_usable(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a));

	if (fd >= 0)
		close(fd);
	return ok;
}

static inline socklen_t ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* A blocked read or write gives up after seconds: a test fails, it does
 * not hang. */
static inline void set_timeouts(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A socket bound to loopback port 0; its address goes to *addr. */
static inline int bind_loopback(int family, struct sockaddr_storage *addr)
{
	socklen_t len = sizeof(*addr);
	int fd;

	loopback(family, addr);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)addr, ss_len(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

static inline int listen_on(int family, int backlog, struct sockaddr_storage *addr)
{
	int fd = bind_loopback(family, addr);

	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

static inline int connect_to(const struct sockaddr_storage *addr, int timeout_s)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	set_timeouts(fd, timeout_s);
	assert_int_equal(connect(fd, (const struct sockaddr *)addr, ss_len(addr)), 0);
	return fd;
}

/* The next connection on listener lfd, within timeout_s. */
static inline int accept_within(int lfd, int timeout_s)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd;

	assert_int_equal(poll(&pfd, 1, timeout_s * 1000), 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	set_timeouts(fd, timeout_s);
	return fd;
}

/* Reads until len bytes, EOF or an error; returns the count or -errno. */
static inline ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0)
			return -errno;
		if (!n)
			break;
		got += n;
	}
	return got;
}

static inline void write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		assert_true(n > 0);
		done += n;
	}
}

/* What read() says next: 1 for data, 0 for EOF, else -errno. */
static inline int read_end(int fd)
{
	char c;
	ssize_t n = read(fd, &c, 1);

	if (n > 0)
		return 1;
	return n ? -errno : 0;
}

static inline bool fd_in(int fd, const int *fds, int nr)
{
	for (int i = 0; i < nr; i++) {
		if (fds[i] == fd)
			return true;
	}
	return false;
}

static inline int sockopt_int(int fd, int level, int name)
{
	socklen_t len = sizeof(int);
	int v = -1;

	if (getsockopt(fd, level, name, &v, &len))
		return -errno;
	return v;
}

/* The connected TCP sockets of this process but those in mine: what a
 * proxy running in the test's process holds. Returns how many it put in
 * fds. */
static inline int proxy_sockets(const int *mine, int nr_mine, int *fds, int max)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int n = 0;

	for (int fd = 0; fd < 1024 && n < max; fd++) {
		len = sizeof(ss);
		if (fd_in(fd, mine, nr_mine) ||
		    sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP ||
		    sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) != 0 ||
		    getpeername(fd, (struct sockaddr *)&ss, &len))
			continue;
		fds[n++] = fd;
	}
	return n;
}

/* The proxies hold nr sockets besides the test's own two, and each of them
 * sends keepalive probes as asked. */
static inline void assert_keepalive(const int mine[2], int nr, int idle_s, int interval_s,
				    int count)
{
	int fds[8];

	assert_int_equal(proxy_sockets(mine, 2, fds, 8), nr);
	for (int i = 0; i < nr; i++) {
		assert_int_equal(sockopt_int(fds[i], SOL_SOCKET, SO_KEEPALIVE), 1);
		assert_int_equal(sockopt_int(fds[i], IPPROTO_TCP, TCP_KEEPIDLE), idle_s);
		assert_int_equal(sockopt_int(fds[i], IPPROTO_TCP, TCP_KEEPINTVL), interval_s);
		assert_int_equal(sockopt_int(fds[i], IPPROTO_TCP, TCP_KEEPCNT), count);
	}
}

#endif
