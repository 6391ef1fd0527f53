// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "env.h"
#include "harness.h"

#define CLIENT_BUF (64 * 1024)
/* A client never outlives this, whatever the agent does. */
#define CLIENT_ALARM_S 150
#define CHURN_MSG 24

void sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", ss->ss_family);
	}
}

struct child {
	const struct client_req *req;
	struct client_res res;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int res_fd;
	int ctl_fd;
	char *buf;
};

static bool failed(struct child *c, const char *call)
{
	if (!c->res.err) {
		c->res.err = errno ? errno : EIO;
		snprintf(c->res.call, sizeof(c->res.call), "%s", call);
	}
	return false;
}

static bool write_all(struct child *c, int fd, const void *buf, size_t len)
{
	int ret = write_full(fd, buf, len);

	if (ret) {
		errno = -ret;
		return failed(c, "write");
	}
	return true;
}

/* Reads into res.recvd until EOF (checking the pattern when check). */
static bool read_to_eof(struct child *c, int fd, bool check, char *keep, size_t keep_len)
{
	size_t kept = 0;

	for (;;) {
		ssize_t n = read(fd, c->buf, CLIENT_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return failed(c, "read");
		if (!n) {
			c->res.eof = true;
			return true;
		}
		if (check) {
			payload_feed(&c->res.recvd, c->buf, n);
		} else {
			c->res.recvd.bytes += n;
			if (keep && kept < keep_len - 1) {
				size_t room = keep_len - 1 - kept;
				size_t k = (size_t)n < room ? (size_t)n : room;

				memcpy(keep + kept, c->buf, k);
				kept += k;
				keep[kept] = '\0';
			}
		}
	}
}

static int open_conn(struct child *c, bool record)
{
	socklen_t len;
	int fd;

	fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		failed(c, "socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&c->dst, c->dst_len)) {
		failed(c, "connect");
		close(fd);
		return -1;
	}
	if (record) {
		len = sizeof(c->res.cookie);
		getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c->res.cookie, &len);
		len = sizeof(c->res.local);
		getsockname(fd, (struct sockaddr *)&c->res.local, &len);
		len = sizeof(c->res.peer);
		getpeername(fd, (struct sockaddr *)&c->res.peer, &len);
	}
	return fd;
}

/* Sends bytes and reads them back chunk by chunk, so neither side's
 * buffers ever have to hold more than one chunk. */
static bool echo(struct child *c, int fd, uint64_t bytes)
{
	while (c->res.sent.bytes < bytes) {
		size_t n =
		    bytes - c->res.sent.bytes < CLIENT_BUF ? bytes - c->res.sent.bytes : CLIENT_BUF;
		uint64_t want = c->res.sent.bytes + n;

		payload_next(&c->res.sent, c->buf, n);
		if (!write_all(c, fd, c->buf, n))
			return false;
		while (c->res.recvd.bytes < want) {
			ssize_t r = read(fd, c->buf, want - c->res.recvd.bytes);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return failed(c, "read");
			if (!r) {
				errno = ECONNRESET;
				return failed(c, "read-eof");
			}
			payload_feed(&c->res.recvd, c->buf, r);
		}
	}
	return true;
}

static bool upload(struct child *c, int fd, uint64_t bytes)
{
	while (c->res.sent.bytes < bytes) {
		size_t n =
		    bytes - c->res.sent.bytes < CLIENT_BUF ? bytes - c->res.sent.bytes : CLIENT_BUF;

		payload_next(&c->res.sent, c->buf, n);
		if (!write_all(c, fd, c->buf, n))
			return false;
	}
	return true;
}

static void report(struct child *c)
{
	if (write(c->res_fd, &c->res, sizeof(c->res)) != sizeof(c->res))
		_exit(3);
}

static void wait_release(struct child *c)
{
	char b;

	while (read(c->ctl_fd, &b, 1) < 0 && errno == EINTR)
		;
}

/* sendto() on an unconnected UDP socket: only the sendmsg hooks see it. */
static void send_datagram(struct child *c)
{
	static const char msg[] = "sluice udp datagram";
	int fd;

	fd = socket(c->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		failed(c, "socket");
		return;
	}
	if (sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&c->dst, c->dst_len) < 0)
		failed(c, "sendto");
	close(fd);
}

/* A listener the workload owns; left open for the caller to connect to. */
static int listen_on(struct child *c)
{
	int fd, one = 1;

	fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		failed(c, "socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&c->dst, c->dst_len)) {
		failed(c, "bind");
	} else if (listen(fd, 64)) {
		failed(c, "listen");
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

/* Everything after connect for the ops that use one connection. */
static bool one_conn(struct child *c, int fd)
{
	const struct client_req *req = c->req;
	char line[32];
	int n;

	switch (req->op) {
	case CL_CONNECT:
		return true;
	case CL_ECHO:
		return echo(c, fd, req->bytes);
	case CL_UPLOAD:
		return upload(c, fd, req->bytes);
	case CL_DOWNLOAD:
		n = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)req->bytes);
		return write_all(c, fd, line, n);
	case CL_HALF_CLOSE:
		return upload(c, fd, req->bytes);
	default:
		return true;
	}
}

/* The closing half: what each op does once it may finish. */
static bool finish_conn(struct child *c, int fd)
{
	switch (c->req->op) {
	case CL_CONNECT:
		return true;
	case CL_DOWNLOAD:
		if (!read_to_eof(c, fd, true, NULL, 0))
			return false;
		shutdown(fd, SHUT_WR);
		return true;
	case CL_HALF_CLOSE:
		if (shutdown(fd, SHUT_WR))
			return failed(c, "shutdown");
		return read_to_eof(c, fd, false, c->res.reply, sizeof(c->res.reply));
	default:
		if (shutdown(fd, SHUT_WR))
			return failed(c, "shutdown");
		return read_to_eof(c, fd, false, NULL, 0);
	}
}

static void retry(struct child *c)
{
	for (int i = 0; i < c->req->count; i++) {
		int fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			failed(c, "socket");
			return;
		}
		if (connect(fd, (struct sockaddr *)&c->dst, c->dst_len) && errno == EPERM)
			c->res.completed++;
		close(fd);
	}
}

/* One message of a churn, there and back on fd. */
static bool churn_msg(struct child *c, int fd, int i)
{
	char msg[CHURN_MSG], back[CHURN_MSG];
	size_t got = 0;

	snprintf(msg, sizeof(msg), "churn %09d", i);
	if (!write_all(c, fd, msg, sizeof(msg)))
		return false;
	while (got < sizeof(back)) {
		ssize_t n = read(fd, back + got, sizeof(back) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = ECONNRESET;
			return failed(c, "read");
		}
		got += n;
	}
	if (memcmp(msg, back, sizeof(msg))) {
		errno = EBADMSG;
		return failed(c, "compare");
	}
	return true;
}

static void churn(struct child *c)
{
	for (int i = 0; i < c->req->count; i++) {
		int fd = open_conn(c, i == 0);
		bool ok;

		if (fd < 0)
			return;
		ok = churn_msg(c, fd, i);
		close(fd);
		if (!ok)
			return;
		c->res.completed++;
	}
}

/* Whatever the policy says of each: an allowed connection must carry its
 * message, a denied one fail with EPERM; anything else is broken. */
static void verdicts(struct child *c)
{
	for (int i = 0; i < c->req->count; i++) {
		int fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			failed(c, "socket");
			return;
		}
		if (!connect(fd, (struct sockaddr *)&c->dst, c->dst_len)) {
			if (churn_msg(c, fd, i))
				c->res.completed++;
			else
				c->res.broken++;
		} else if (errno == EPERM) {
			c->res.denied++;
		} else {
			failed(c, "connect");
			c->res.broken++;
		}
		close(fd);
	}
}

static int join_cgroup(struct sl_env *env, const char *name)
{
	char path[PATH_MAX], pid[32];
	int fd, ret = 0;

	env_cgroup(env, name, path, sizeof(path));
	strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write(fd, pid, strlen(pid)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int fill_dst(struct sl_env *env, const struct client_req *req, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	const char *addr = req->addr;
	int family = req->family ? req->family : AF_INET;

	memset(ss, 0, sizeof(*ss));
	if (!addr)
		addr = family == AF_INET6 ? env->ip6_b : env->ip4_b;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(req->port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(req->port);
	*len = sizeof(*sin6);
	return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
}

static void __attribute__((noreturn)) child_main(struct sl_env *env, struct child *c)
{
	int fd, ret;

	payload_init(&c->res.sent);
	payload_init(&c->res.recvd);
	c->buf = malloc(CLIENT_BUF);
	ret = join_cgroup(env, c->req->cgroup);
	if (ret) {
		errno = -ret;
		failed(c, "cgroup");
	} else if ((ret = netns_join(env->ns_a))) {
		errno = -ret;
		failed(c, "setns");
	} else if (!c->buf) {
		errno = ENOMEM;
		failed(c, "malloc");
	}
	if (c->res.err) {
		report(c);
		_exit(2);
	}
	if (c->req->op == CL_CHURN) {
		churn(c);
		report(c);
		_exit(0);
	}
	if (c->req->op == CL_VERDICTS) {
		verdicts(c);
		report(c);
		_exit(0);
	}
	if (c->req->op == CL_RETRY) {
		retry(c);
		report(c);
		_exit(0);
	}
	if (c->req->op == CL_SENDTO) {
		send_datagram(c);
		report(c);
		_exit(0);
	}
	if (c->req->op == CL_LISTEN) {
		fd = listen_on(c);
		report(c);
		if (fd >= 0)
			wait_release(c);
		_exit(0);
	}
	fd = open_conn(c, true);
	if (fd >= 0 && one_conn(c, fd) && c->req->hold) {
		report(c);
		wait_release(c);
	}
	if (fd >= 0 && !c->res.err)
		finish_conn(c, fd);
	if (fd >= 0)
		close(fd);
	report(c);
	_exit(0);
}

int client_start(struct sl_env *env, const struct client_req *req, struct client *c)
{
	int res_pipe[2], ctl_pipe[2], ret;
	struct child ch = {.req = req};
	pid_t parent = getpid();

	c->pid = -1;
	c->res_fd = c->ctl_fd = -1;
	ret = fill_dst(env, req, &ch.dst, &ch.dst_len);
	if (ret) {
		printf("client: bad destination address\n");
		return ret;
	}
	if (pipe2(res_pipe, O_CLOEXEC))
		return -errno;
	if (pipe2(ctl_pipe, O_CLOEXEC)) {
		close(res_pipe[0]);
		close(res_pipe[1]);
		return -errno;
	}
	fflush(stdout);
	c->pid = fork();
	if (!c->pid) {
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(CLIENT_ALARM_S);
		close(res_pipe[0]);
		close(ctl_pipe[1]);
		ch.res_fd = res_pipe[1];
		ch.ctl_fd = ctl_pipe[0];
		child_main(env, &ch);
	}
	close(res_pipe[1]);
	close(ctl_pipe[0]);
	if (c->pid < 0) {
		ret = -errno;
		close(res_pipe[0]);
		close(ctl_pipe[1]);
		return ret;
	}
	env_track_child(env, c->pid);
	c->res_fd = res_pipe[0];
	c->ctl_fd = ctl_pipe[1];
	return 0;
}

int client_result(struct client *c, struct client_res *res, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->res_fd, .events = POLLIN};
	size_t got = 0;
	long long deadline = now_ms() + timeout_ms;

	while (got < sizeof(*res)) {
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = read(c->res_fd, (char *)res + got, sizeof(*res) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += n;
	}
	return 0;
}

void client_release(struct client *c)
{
	/* A byte, not only the close: clients forked later hold copies of
	 * this pipe's write end, so its EOF would not come while they run.
	 * EPIPE just means the client is gone, released or not. */
	if (c->ctl_fd >= 0) {
		if (write(c->ctl_fd, "", 1) < 0 && errno != EPIPE)
			printf("client (pid %d): cannot release: %s\n", c->pid, strerror(errno));
		close(c->ctl_fd);
	}
	c->ctl_fd = -1;
}

int client_finish(struct sl_env *env, struct client *c)
{
	int status, ret;

	client_release(c);
	if (c->res_fd >= 0)
		close(c->res_fd);
	c->res_fd = -1;
	if (c->pid <= 0)
		return -ESRCH;
	ret = wait_child(c->pid, &status, CLIENT_MS);
	if (ret == -ETIMEDOUT) {
		kill(c->pid, SIGKILL);
		wait_child(c->pid, &status, CLIENT_MS);
	}
	env_untrack_child(env, c->pid);
	c->pid = -1;
	if (ret)
		return ret;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int client_run(struct sl_env *env, const struct client_req *req, struct client_res *res)
{
	struct client c;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = client_start(env, req, &c);
	if (ret)
		return ret;
	ret = client_result(&c, res, CLIENT_MS);
	if (ret)
		printf("client (pid %d): no report: %s\n", c.pid, strerror(-ret));
	client_finish(env, &c);
	return ret;
}
