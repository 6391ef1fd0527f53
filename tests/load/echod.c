// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * echod: a TCP echo server for tens of thousands of connections in one
 * thread (epoll), the far end of loadgen.
 *
 *   echod [-c max_conns] IPV4:PORT
 *
 * Writes "listening" to stdout once it listens, and exits when stdin
 * reaches EOF (its parent went away) or on a signal. A connection whose
 * peer does not read keeps its unsent bytes and is not read from until
 * they are out, so memory stays bounded by the connection count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define EVENT_BATCH 512
#define BACKLOG 4096

struct econn {
	int fd;
	char *pending; /* bytes read but not written back yet */
	size_t len, off;
};

struct echod {
	int epfd, lfd;
	int nr, max;
	char buf[BUF_SIZE];
};

static void econn_close(struct echod *d, struct econn *c)
{
	close(c->fd);
	free(c->pending);
	free(c);
	d->nr--;
}

static int econn_watch(struct echod *d, struct econn *c, bool out)
{
	struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};

	return epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
}

/* Writes what is pending; 1 while some of it is left, 0, or -errno. */
static int econn_flush(struct econn *c)
{
	ssize_t n;

	while (c->off < c->len) {
		n = send(c->fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -errno;
		c->off += n;
	}
	free(c->pending);
	c->pending = NULL;
	c->len = c->off = 0;
	return 0;
}

/* Echoes what can be read; a short write parks the rest in c->pending and
 * stops reading until it is out. */
static int econn_echo(struct echod *d, struct econn *c)
{
	ssize_t n, w;

	for (;;) {
		n = recv(c->fd, d->buf, BUF_SIZE, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (!n)
			return -ECONNRESET;
		w = send(c->fd, d->buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN)
			return -errno;
		if (w < 0)
			w = 0;
		if (w < n) {
			c->pending = malloc(n - w);
			if (!c->pending)
				return -ENOMEM;
			memcpy(c->pending, d->buf + w, n - w);
			c->len = n - w;
			return econn_watch(d, c, true);
		}
	}
}

static void econn_event(struct echod *d, struct econn *c)
{
	int ret;

	if (c->pending) {
		ret = econn_flush(c);
		if (!ret)
			ret = econn_watch(d, c, false);
		else if (ret > 0)
			return;
	} else {
		ret = econn_echo(d, c);
	}
	if (ret < 0)
		econn_close(d, c);
}

static void accept_all(struct echod *d)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct econn *c;
	int fd;

	for (;;) {
		fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		c = d->nr < d->max ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		d->nr++;
	}
}

static int listen_on(const char *s)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	const char *colon = strrchr(s, ':');
	char host[64];
	socklen_t len;
	int fd, one = 1;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(colon + 1));
		len = sizeof(*sin);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, BACKLOG)) {
		close(fd);
		return -errno;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct epoll_event ev[EVENT_BATCH] = {};
	static struct echod d;
	struct rlimit rl;
	int opt, n;

	d.max = 10000;
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c')
			return 2;
		d.max = atoi(optarg);
	}
	if (optind != argc - 1 || d.max < 1)
		return 2;
	/* Every connection is an fd. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	d.lfd = listen_on(argv[optind]);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d.lfd < 0 || d.epfd < 0) {
		fprintf(stderr, "echod: %s: %s\n", argv[optind],
			strerror(d.lfd < 0 ? -d.lfd : errno));
		return 1;
	}
	ev[0] = (struct epoll_event){.events = EPOLLIN, .data.ptr = &d.lfd};
	ev[1] = (struct epoll_event){.events = EPOLLIN, .data.ptr = &d.epfd};
	if (epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &ev[0]) ||
	    epoll_ctl(d.epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev[1]))
		return 1;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		n = epoll_wait(d.epfd, ev, EVENT_BATCH, -1);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &d.lfd)
				accept_all(&d);
			else if (ev[i].data.ptr == &d.epfd)
				return 0;
			else
				econn_event(&d, ev[i].data.ptr);
		}
	}
}
