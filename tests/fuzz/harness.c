// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

#define REQUEST_MAX 65536

static void die(const char *what)
{
	perror(what);
	abort();
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		if (fd < 0)
			die("memfd_create");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		die("fuzz_file");
	return path;
}

static pthread_mutex_t resp_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *resp;
static size_t resp_len;

void fuzz_http_respond(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		die("malloc");
	memcpy(copy, data, size);
	pthread_mutex_lock(&resp_lock);
	free(resp);
	resp = copy;
	resp_len = size;
	pthread_mutex_unlock(&resp_lock);
}

/* The bytes of the request body libcurl announced, 0 without one. */
static size_t content_length(const char *hdrs)
{
	const char *p = hdrs;

	while ((p = strchr(p, '\n'))) {
		p++;
		if (!strncasecmp(p, "Content-Length:", 15))
			return strtoul(p + 15, NULL, 10);
	}
	return 0;
}

/* Reads the whole request, so that closing the socket after the answer
 * sends a FIN, not an RST that could overtake the answer. */
static void read_request(int fd)
{
	static char buf[REQUEST_MAX + 1];
	size_t len = 0, want = 0;
	char *end = NULL;
	ssize_t n;

	while (len < REQUEST_MAX && (!end || len < want)) {
		n = recv(fd, buf + len, REQUEST_MAX - len, 0);
		if (n <= 0)
			return;
		len += n;
		buf[len] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n")))
			want = end + 4 - buf + content_length(buf);
	}
}

static void serve(int fd)
{
	struct timeval tv = { .tv_sec = 2 };
	size_t off = 0;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	read_request(fd);
	pthread_mutex_lock(&resp_lock);
	/* MSG_NOSIGNAL: a client that gave up early must not kill the run. */
	while (off < resp_len && (n = send(fd, resp + off, resp_len - off, MSG_NOSIGNAL)) > 0)
		off += n;
	pthread_mutex_unlock(&resp_lock);
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void *server_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			serve(fd);
	}
	return NULL;
}

int fuzz_http_start(int port)
{
	static int bound;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);
	pthread_t t;
	int lfd;

	if (bound)
		return bound;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin))) {
		fprintf(stderr, "fuzz http server: port %d taken, using another\n", port);
		sin.sin_port = 0;
		if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)))
			die("bind");
	}
	if (listen(lfd, 16) || getsockname(lfd, (struct sockaddr *)&sin, &slen))
		die("listen");
	if (pthread_create(&t, NULL, server_main, (void *)(intptr_t)lfd))
		die("pthread_create");
	bound = ntohs(sin.sin_port);
	return bound;
}
