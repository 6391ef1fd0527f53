// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "env.h"
#include "flood.h"
#include "harness.h"

/* Waits for every non-blocking connect to complete (or fail). */
static void flood_wait(struct flood *fl)
{
	long long end = now_ms() + fl->connect_ms;
	struct pollfd *p = calloc(fl->opened, sizeof(*p));
	int pending = fl->opened;

	if (!p) {
		fl->err = -ENOMEM;
		return;
	}
	for (int i = 0; i < fl->opened; i++)
		p[i] = (struct pollfd){.fd = fl->fds[i], .events = POLLOUT};
	while (pending && now_ms() < end && poll(p, fl->opened, 100) >= 0) {
		for (int i = 0; i < fl->opened; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			/* Out: the handshake completed; an RST from the peer
			 * may have followed already. */
			if (p[i].revents & POLLOUT) {
				fl->connected++;
				if (fl->partial && i % 2 &&
				    send(fl->fds[i], fl->partial, fl->partial_len, MSG_NOSIGNAL) !=
					    (ssize_t)fl->partial_len)
					fl->err = -EIO;
			}
			p[i].fd = -1;
			pending--;
		}
	}
	fl->done_ms = now_ms();
	free(p);
}

static void *flood_main(void *arg)
{
	struct flood *fl = arg;
	int ret, fd;

	ret = netns_join(fl->ns);
	if (ret) {
		fl->err = ret;
		return NULL;
	}
	for (; fl->opened < fl->nr; fl->opened++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fl->err = -errno;
			break;
		}
		fl->fds[fl->opened] = fd;
		if (connect(fd, (struct sockaddr *)&fl->dst, sizeof(struct sockaddr_in)) &&
		    errno != EINPROGRESS) {
			fl->err = -errno;
			close(fd);
			break;
		}
	}
	flood_wait(fl);
	return NULL;
}

int flood_start(struct flood *fl)
{
	int ret;

	fl->fds = calloc(fl->nr, sizeof(*fl->fds));
	if (!fl->fds)
		return -ENOMEM;
	ret = pthread_create(&fl->th, NULL, flood_main, fl);
	return -ret;
}

void flood_join(struct flood *fl)
{
	pthread_join(fl->th, NULL);
}

int flood_closed(const struct flood *fl)
{
	int n = 0;
	char c;

	for (int i = 0; i < fl->opened; i++) {
		ssize_t r = recv(fl->fds[i], &c, 1, MSG_DONTWAIT);

		n += !r || (r < 0 && errno != EAGAIN);
	}
	return n;
}

int flood_reset(const struct flood *fl)
{
	int n = 0, err;
	socklen_t len;

	for (int i = 0; i < fl->opened; i++) {
		len = sizeof(err);
		if (!getsockopt(fl->fds[i], SOL_SOCKET, SO_ERROR, &err, &len) && err == ECONNRESET)
			n++;
		else if (recv(fl->fds[i], &err, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET)
			n++;
	}
	return n;
}

void flood_free(struct flood *fl)
{
	for (int i = 0; i < fl->opened; i++)
		close(fl->fds[i]);
	free(fl->fds);
	fl->fds = NULL;
	fl->opened = 0;
}
