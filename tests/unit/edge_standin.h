/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test peers for the rendered edge config under a real nginx, each a
 * forked process answering one request per connection:
 *
 * - an authz stand-in on a UNIX socket, in place of the agent's endpoint
 *   (which is not this test's subject): it answers by the path in
 *   X-Original-URI, 200 with identity headers, 401 with WWW-Authenticate,
 *   403, or 500; the 200's X-Sluice-Caller echoes what nginx told it
 *   (service, generation, method, URI, host), so the client can check the
 *   subrequest's headers;
 * - an upstream that answers 200 with the request head it received as its
 *   body, so the client sees what the service would see.
 *
 * Not a product peer: no HTTP parsing beyond finding header lines.
 */
#ifndef SLUICE_TEST_EDGE_STANDIN_H
#define SLUICE_TEST_EDGE_STANDIN_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STANDIN_HEAD_MAX 16384

/* The request head (up to the blank line) into buf; its length or -1. */
static inline int standin_read_head(int fd, char *buf, size_t len)
{
	size_t used = 0;

	while (used + 1 < len) {
		ssize_t n = read(fd, buf + used, len - 1 - used);

		if (n <= 0)
			return -1;
		used += (size_t)n;
		buf[used] = 0;
		if (strstr(buf, "\r\n\r\n"))
			return (int)used;
	}
	return -1;
}

/* The value of header name in head ("" when absent), into out. */
static inline void standin_header(const char *head, const char *name, char *out, size_t len)
{
	const char *p = head;
	size_t n = strlen(name);

	out[0] = 0;
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *end = strstr(v, "\r\n");

			v += strspn(v, " ");
			snprintf(out, len, "%.*s", (int)(end - v), v);
			return;
		}
	}
}

static inline void standin_send(int fd, const char *resp)
{
	size_t len = strlen(resp);

	while (len) {
		ssize_t n = write(fd, resp, len);

		if (n <= 0)
			return;
		resp += n;
		len -= (size_t)n;
	}
}

static inline void standin_authz(int fd)
{
	char head[STANDIN_HEAD_MAX], uri[1024], svc[64], gen[16], method[16], host[256];
	char resp[4096];

	if (standin_read_head(fd, head, sizeof(head)) < 0)
		return;
	standin_header(head, "X-Original-URI", uri, sizeof(uri));
	standin_header(head, "X-Sluice-Service", svc, sizeof(svc));
	standin_header(head, "X-Sluice-Generation", gen, sizeof(gen));
	standin_header(head, "X-Original-Method", method, sizeof(method));
	standin_header(head, "X-Original-Host", host, sizeof(host));
	if (strstr(uri, "/noauth"))
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 401 Unauthorized\r\n"
			 "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
			 "X-Sluice-Reason: invalid_token: signature does not verify\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else if (strstr(uri, "/deny"))
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 403 Forbidden\r\n"
			 "X-Sluice-Reason: denied by rule no-writes\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else if (strstr(uri, "/boom"))
		snprintf(resp, sizeof(resp), "HTTP/1.1 500 Internal Server Error\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\n"
			 "X-Sluice-Assertion: verified.assertion.sig\r\n"
			 "X-Sluice-Caller: svc=%s gen=%s method=%s uri=%s host=%s\r\n"
			 "X-Sluice-Roles: etl\r\n"
			 "X-Sluice-Rule: jobs-call-api\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n",
			 svc, gen, method, uri, host);
	standin_send(fd, resp);
}

static inline void standin_upstream(int fd)
{
	char head[STANDIN_HEAD_MAX], resp[STANDIN_HEAD_MAX + 256];
	int n = standin_read_head(fd, head, sizeof(head));

	if (n < 0)
		return;
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		 "Connection: close\r\n\r\n%s", n, head);
	standin_send(fd, resp);
}

/* Forks a process serving lfd with serve() until killed; its pid. */
static inline pid_t standin_start(int lfd, void (*serve)(int fd))
{
	pid_t pid = fork();

	if (pid)
		return pid;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
}

static inline void standin_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

#endif
