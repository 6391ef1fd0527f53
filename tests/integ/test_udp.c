// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * UDP without connect(): sendto() names its destination per datagram, so
 * only the sendmsg hooks can decide it. A denied datagram fails with EPERM
 * and never reaches node B, counted once per call like a refused
 * connect(); an allowed one is delivered. Over IPv4, IPv6 and IPv4-mapped
 * IPv6 (a dual-stack socket's route to an IPv4 peer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_proc.h"
#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"

#define PORT_UDP 8125
#define SVC_UDP "statsd"
/* How long the receiver waits for a datagram that should arrive (and the
 * proof that a refused one did not). */
#define RECV_MS 1500

/* A UDP socket bound in node B; the test reads it from the runner (a
 * socket stays in the namespace it was made in). */
struct receiver {
	int fd;
};

/* Opens a UDP socket bound in node B: a forked child joins the namespace,
 * binds, and passes the descriptor back over a socketpair. */
static int receiver_open(struct sl_env *env, int family, struct receiver *r)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, b = 0;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int sp[2], status;
	pid_t pid;

	r->fd = -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp))
		return -errno;
	fflush(stdout);
	pid = fork();
	if (!pid) {
		struct sockaddr_storage ss = {};
		socklen_t len;
		int fd;

		child_reset_signals();
		close(sp[0]);
		if (netns_join(env->ns_b))
			_exit(1);
		if (family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			s4->sin_family = AF_INET;
			s4->sin_port = htons(PORT_UDP);
			inet_pton(AF_INET, env->ip4_b, &s4->sin_addr);
			len = sizeof(*s4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(PORT_UDP);
			inet_pton(AF_INET6, env->ip6_b, &s6->sin6_addr);
			len = sizeof(*s6);
		}
		fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len))
			_exit(2);
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		_exit(sendmsg(sp[1], &mh, 0) == 1 ? 0 : 3);
	}
	close(sp[1]);
	if (pid < 0) {
		close(sp[0]);
		return -errno;
	}
	if (wait_child(pid, &status, CLIENT_MS) || !WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("udp receiver in %s: setup failed (status %d)\n", env->ns_b, status);
		close(sp[0]);
		return -EIO;
	}
	if (recvmsg(sp[0], &mh, 0) != 1 || !(cm = CMSG_FIRSTHDR(&mh))) {
		close(sp[0]);
		return -EIO;
	}
	memcpy(&r->fd, CMSG_DATA(cm), sizeof(int));
	close(sp[0]);
	return 0;
}

/* Datagrams that arrived within RECV_MS of the last one. */
static int receiver_count(struct receiver *r)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	char buf[256];
	int n = 0;

	while (poll(&p, 1, RECV_MS) == 1) {
		if (recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
			break;
		n++;
	}
	return n;
}

static int write_policy(struct sl_env *env)
{
	char addrs[128];

	env_node_addrs(env, 'b', addrs, sizeof(addrs));
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_UDP "\n"
			      "    addresses: [%s]\n"
			      "    ports: [%d]\n"
			      "    protocol: udp\n"
			      "rules:\n"
			      "  - name: jobs-send-metrics\n"
			      "    from: {kind: job}\n"
			      "    to: [" SVC_UDP "]\n"
			      "    action: allow\n",
			      addrs, PORT_UDP);
}

static void sendto_checked(struct sl_env *env, int family, const char *addr, bool via_mapped)
{
	struct client_req req = { .op = CL_SENDTO, .family = family, .addr = addr,
				  .port = PORT_UDP };
	uint32_t nb = pinned_identity(env, ID_NOTEBOOK), svc = pinned_service(env, SVC_UDP);
	struct client_res res;
	struct receiver r;
	long long before, total;

	if (!ASSERT_OK(receiver_open(env, via_mapped ? AF_INET : family, &r), "udp receiver"))
		return;

	req.cgroup = "job";
	if (ASSERT_OK(client_run(env, &req, &res), "job's sendto report"))
		ASSERT_EQ(res.err, 0, "job's sendto errno");
	ASSERT_EQ(receiver_count(&r), 1, "job's datagrams delivered");

	req.cgroup = "notebook";
	before = pinned_violations(env, nb, svc, SLUICE_REASON_DEFAULT_DENY);
	total = pinned_violations_total(env);
	if (ASSERT_OK(client_run(env, &req, &res), "notebook's sendto report")) {
		ASSERT_EQ(res.err, EPERM, "notebook's sendto errno");
		ASSERT_STREQ(res.call, "sendto", "failing call");
	}
	ASSERT_EQ(receiver_count(&r), 0, "notebook's datagrams delivered");
	ASSERT_EQ(pinned_violations(env, nb, svc, SLUICE_REASON_DEFAULT_DENY) - before, 1,
		  "violations[notebook, " SVC_UDP ", default-deny] delta");
	ASSERT_EQ(pinned_violations_total(env) - total, 1, "violations total delta");
	close(r.fd);
}

void test_udp(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	char mapped[64];

	if (!ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(write_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start(env, NULL), "start sluiced"))
		return;

	if (test__start_subtest("sendto4"))
		sendto_checked(env, AF_INET, env->ip4_b, false);
	if (env->has_ipv6 && test__start_subtest("sendto6"))
		sendto_checked(env, AF_INET6, env->ip6_b, false);
	if (env->has_ipv6 && test__start_subtest("sendto_mapped")) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", env->ip4_b);
		sendto_checked(env, AF_INET6, mapped, true);
	}
}
