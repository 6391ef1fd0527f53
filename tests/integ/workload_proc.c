// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "workload_proc.h"

/* Forks a child that joins cgroup and netns ns before running fn: a
 * socket belongs to the cgroup of the process that creates it, and a
 * thread cannot leave its process's cgroup. *fd is a socketpair to fn. */
int spawn_in(struct sl_env *env, const char *ns, const char *cgroup, child_fn fn, const void *arg,
	     pid_t *pid, int *fd)
{
	pid_t parent = getpid();
	int sp[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return -errno;
	fflush(stdout);
	*pid = fork();
	if (!*pid) {
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(sp[0]);
		ret = env_cgroup_join(env, cgroup);
		if (!ret)
			ret = netns_join(ns);
		if (ret) {
			dprintf(STDOUT_FILENO, "child in %s/%s: %s\n", ns, cgroup, strerror(-ret));
			_exit(2);
		}
		fn(env, arg, sp[1]);
		_exit(0);
	}
	close(sp[1]);
	if (*pid < 0) {
		close(sp[0]);
		return -errno;
	}
	env_track_child(env, *pid);
	*fd = sp[0];
	return 0;
}

void child_reap(struct sl_env *env, pid_t pid, int fd)
{
	close(fd);
	kill(pid, SIGKILL);
	wait_child(pid, NULL, ANSWER_MS);
	env_untrack_child(env, pid);
}

static int fill_addr(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6) {
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -EINVAL;
}

/* A socket bound to every address of family, listening when TCP. */
static int bind_any(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	int fd, one = 1;
	socklen_t len;

	fill_addr(family, family == AF_INET6 ? "::" : "0.0.0.0", port, &ss, &len);
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || (type == SOCK_STREAM && listen(fd, 64))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void echo_datagram(int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char buf[256];
	ssize_t n;

	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len);
	if (n > 0)
		sendto(fd, buf, n, 0, (struct sockaddr *)&peer, len);
}

/* Child: listens on port (TCP, v4 and v6) and binds it for UDP on v4,
 * reports 0 (or the errno), then one byte per accepted connection; echoes
 * datagrams, and each connection until its EOF. */
static void server_main(const struct sl_env *env, const void *arg, int fd)
{
	uint16_t port = *(const uint16_t *)arg;
	struct pollfd pfd[3];
	int nr = 0, status = 0;
	char buf[256];

	pfd[nr++] = (struct pollfd){.fd = bind_any(AF_INET, SOCK_DGRAM, port), .events = POLLIN};
	pfd[nr++] = (struct pollfd){.fd = bind_any(AF_INET, SOCK_STREAM, port), .events = POLLIN};
	if (env->has_ipv6)
		pfd[nr++] =
		    (struct pollfd){.fd = bind_any(AF_INET6, SOCK_STREAM, port), .events = POLLIN};
	for (int i = 0; i < nr; i++)
		if (pfd[i].fd < 0)
			status = errno ? errno : EIO;
	if (write(fd, &status, sizeof(status)) != sizeof(status) || status)
		_exit(3);
	for (;;) {
		ssize_t n;
		int c = -1;

		if (poll(pfd, nr, -1) < 0 && errno != EINTR)
			_exit(4);
		if (pfd[0].revents)
			echo_datagram(pfd[0].fd);
		for (int i = 1; i < nr && c < 0; i++)
			if (pfd[i].revents)
				c = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (write(fd, "c", 1) != 1)
			_exit(5);
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write_full(c, buf, n))
				break;
		close(c);
	}
}

bool server_start_in(struct sl_env *env, const char *ns, const char *cgroup, uint16_t port,
		     struct cg_server *s)
{
	int status = -1;

	memset(s, 0, sizeof(*s));
	if (!ASSERT_OK(spawn_in(env, ns, cgroup, server_main, &port, &s->pid, &s->fd),
		       "fork server") ||
	    !ASSERT_OK(read_full(s->fd, &status, sizeof(status), ANSWER_MS), "server report"))
		return false;
	if (!ASSERT_EQ(status, 0, "server bind errno"))
		return false;
	fcntl(s->fd, F_SETFL, O_NONBLOCK);
	return true;
}

int server_accepted(struct cg_server *s)
{
	char b[64];
	ssize_t n;

	while ((n = read(s->fd, b, sizeof(b))) > 0)
		s->accepted += n;
	return s->accepted;
}

static bool attempt_failed(struct attempt *a, const char *call)
{
	a->err = errno ? errno : EIO;
	snprintf(a->call, sizeof(a->call), "%s", call);
	return false;
}

/* Connects without waiting longer than wait_ms; on false, a says why. */
static bool attempt_connect(const struct attempt_req *req, struct attempt *a, int *fd)
{
	socklen_t len, ti_len = sizeof(struct tcp_info), err_len = sizeof(int);
	int err = 0, type = req->udp ? SOCK_DGRAM : SOCK_STREAM;
	struct sockaddr_storage ss;
	struct tcp_info ti = {};
	struct pollfd pfd;

	*fd = socket(req->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return attempt_failed(a, "socket");
	fill_addr(req->family, req->family == AF_INET6 ? "::" : "0.0.0.0", req->sport, &ss, &len);
	if (req->sport && bind(*fd, (struct sockaddr *)&ss, len))
		return attempt_failed(a, "bind");
	fill_addr(req->family, req->addr, req->port, &ss, &len);
	if (connect(*fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS)
		return attempt_failed(a, "connect");
	pfd = (struct pollfd){.fd = *fd, .events = POLLOUT};
	if (poll(&pfd, 1, req->wait_ms) == 0) {
		getsockopt(*fd, IPPROTO_TCP, TCP_INFO, &ti, &ti_len);
		a->syn_retrans = ti.tcpi_total_retrans;
		errno = ETIMEDOUT;
		return attempt_failed(a, "connect");
	}
	getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
	if (err) {
		errno = err;
		return attempt_failed(a, "connect");
	}
	return true;
}

/* Sends ECHO_MSG and reads it back within ANSWER_MS. */
static bool attempt_echo(int fd, struct attempt *a)
{
	char back[sizeof(ECHO_MSG)] = "";
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t got = 0;

	if (write_full(fd, ECHO_MSG, sizeof(ECHO_MSG)))
		return attempt_failed(a, "write");
	while (got < sizeof(back)) {
		ssize_t n;

		if (poll(&pfd, 1, ANSWER_MS) == 0) {
			errno = ETIMEDOUT;
			return attempt_failed(a, "read");
		}
		n = read(fd, back + got, sizeof(back) - got);
		if (n <= 0) {
			errno = n ? errno : ECONNRESET;
			return attempt_failed(a, "read");
		}
		got += n;
	}
	if (memcmp(back, ECHO_MSG, sizeof(back))) {
		errno = EBADMSG;
		return attempt_failed(a, "compare");
	}
	return true;
}

static void attempt_main(const struct sl_env *env, const void *arg, int fd)
{
	const struct attempt_req *req = arg;
	struct attempt a = {};
	char go;
	int c;

	if (attempt_connect(req, &a, &c) && attempt_echo(c, &a) && req->hold) {
		if (write(fd, &a, sizeof(a)) != sizeof(a) || read(fd, &go, 1) != 1)
			_exit(3);
		attempt_echo(c, &a);
	}
	if (write(fd, &a, sizeof(a)) != sizeof(a))
		_exit(3);
}

static void attempt_print(const char *ns, const char *cgroup, const struct attempt_req *req,
			  const struct attempt *a)
{
	printf("%s/%s -> %s %s port %u: %s%s%s, %u SYN retransmits\n", ns, cgroup,
	       req->udp ? "udp" : "tcp", req->addr, req->port, a->err ? a->call : "echoed",
	       a->err ? ": " : "", a->err ? strerror(a->err) : "", a->syn_retrans);
}

/* A direct exchange (no agent involved) from a process in cgroup on node
 * ns. With req->hold, *fd and *pid stay open for attempt_finish. */
bool attempt_start(struct sl_env *env, const char *ns, const char *cgroup,
		   const struct attempt_req *req, struct attempt *a, pid_t *pid, int *fd)
{
	int ret;

	memset(a, 0, sizeof(*a));
	if (!ASSERT_OK(spawn_in(env, ns, cgroup, attempt_main, req, pid, fd), "fork client"))
		return false;
	ret = read_full(*fd, a, sizeof(*a), req->wait_ms + ANSWER_MS);
	attempt_print(ns, cgroup, req, a);
	if (!req->hold || ret)
		child_reap(env, *pid, *fd);
	return ASSERT_OK(ret, "client report");
}

/* Lets a held client echo once more and reports how that went. */
bool attempt_finish(struct sl_env *env, pid_t pid, int fd, struct attempt *a)
{
	int ret = write(fd, "g", 1) == 1 ? 0 : -errno;

	if (!ret)
		ret = read_full(fd, a, sizeof(*a), ANSWER_MS);
	child_reap(env, pid, fd);
	return ASSERT_OK(ret, "held client's second report");
}

bool attempt_run(struct sl_env *env, const char *ns, const char *cgroup,
		 const struct attempt_req *req, struct attempt *a)
{
	pid_t pid;
	int fd;

	return attempt_start(env, ns, cgroup, req, a, &pid, &fd);
}
