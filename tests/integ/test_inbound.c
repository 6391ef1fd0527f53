// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * inbound: mesh-only. A server in workload db (mesh-only) on node A, the
 * agent's node, is reached through the agent only: a job's meshed
 * connection, which the agent opens from its own cgroup, gets through, and
 * so does anything else in the agent's cgroup. Every other SYN is dropped at
 * the server's listening socket, so connect() hears nothing and times out,
 * whether it comes from node B or from node A over loopback, and each
 * attempt is counted once as not-via-mesh under db's identity and port,
 * however often the client's kernel retransmits the SYN. db's own
 * connections and datagrams out get their answers. A workload left at
 * inbound: open stays reachable directly until a reload makes it mesh-only,
 * which leaves its established connections alone. Enforcement holds while
 * the agent is down, and a restart keeps the pinned link.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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

#include "agent_proc.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"

#define ID_DB "spiffe://acme.example/service/db"
#define ID_WEB "spiffe://acme.example/service/web"
#define PORT_DB 7300
#define PORT_WEB 7301
/* A listener in the agent's cgroup on every address, as the agent's tunnel
 * listener is. */
#define PORT_AGENT_LISTENER 7302
/* A TCP and UDP echo on node B that db may call directly. */
#define PORT_OUTSIDE 7400
/* The first SYN retransmission comes after 1 s (TCP_TIMEOUT_INIT): a
 * refused client waits long enough to have sent its SYN at least twice. */
#define REFUSED_WAIT_MS 2500
/* For connects that must succeed, and for a child's report. */
#define ANSWER_MS 20000
#define CTL_MS 10000
#define ECHO_MSG "mesh-only?"

#define WORKLOADS(web_inbound)                                                                     \
	"  - cgroup: db\n"                                                                         \
	"    id: " ID_DB "\n"                                                                      \
	"    inbound: mesh-only\n"                                                                 \
	"  - cgroup: web\n"                                                                        \
	"    id: " ID_WEB "\n"                                                                     \
	"    inbound: " web_inbound "\n"

/* What a direct client saw. */
struct attempt {
	int err;	      /* 0: ECHO_MSG came back; ETIMEDOUT: no answer */
	char call[16];	      /* the call that failed */
	uint32_t syn_retrans; /* tcpi_total_retrans when it gave up */
};

struct attempt_req {
	int family;
	const char *addr;
	uint16_t port;
	uint16_t sport; /* 0: an ephemeral source port */
	int wait_ms;	/* for the connect */
	bool udp;	/* one datagram there and back instead of TCP */
	/* Report after the first echo, wait for the parent's word, then echo
	 * again on the same connection and report again. */
	bool hold;
};

/* An echo server process and what it accepted so far. */
struct cg_server {
	pid_t pid;
	int fd;
	int accepted;
};

/* A server in a workload, with the identity and port its violations are
 * counted under. */
struct target {
	struct cg_server srv;
	const char *id;
	uint16_t port;
};

typedef void (*child_fn)(const struct sl_env *env, const void *arg, int fd);

/* Forks a child that joins cgroup and netns ns before running fn: a
 * socket belongs to the cgroup of the process that creates it, and a
 * thread cannot leave its process's cgroup. *fd is a socketpair to fn. */
static int spawn_in(struct sl_env *env, const char *ns, const char *cgroup, child_fn fn,
		    const void *arg, pid_t *pid, int *fd)
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

static void child_reap(struct sl_env *env, pid_t pid, int fd)
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

static bool server_start_in(struct sl_env *env, const char *ns, const char *cgroup, uint16_t port,
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

static int server_accepted(struct cg_server *s)
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
static bool attempt_start(struct sl_env *env, const char *ns, const char *cgroup,
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
static bool attempt_finish(struct sl_env *env, pid_t pid, int fd, struct attempt *a)
{
	int ret = write(fd, "g", 1) == 1 ? 0 : -errno;

	if (!ret)
		ret = read_full(fd, a, sizeof(*a), ANSWER_MS);
	child_reap(env, pid, fd);
	return ASSERT_OK(ret, "held client's second report");
}

static bool attempt_run(struct sl_env *env, const char *ns, const char *cgroup,
			const struct attempt_req *req, struct attempt *a)
{
	pid_t pid;
	int fd;

	return attempt_start(env, ns, cgroup, req, a, &pid, &fd);
}

/* `sluicectl -P PIN -j CMD SUB`: exits 0 and prints JSON. */
static json_t *ctl_json(struct sl_env *env, const char *cmd, const char *sub)
{
	char bin[PATH_MAX], *out = NULL, *err = NULL;
	char *argv[] = {bin, "-P", env->pin_dir, "-j", (char *)cmd, (char *)sub, NULL};
	json_t *root = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	ret = run_argv(argv, &out, &err, CTL_MS);
	if (ASSERT_EQ(ret, 0, "sluicectl exit status"))
		root = json_loads(out ? out : "", 0, NULL);
	if (!ASSERT_OK_PTR(root, "sluicectl output is JSON"))
		printf("sluicectl -j %s %s: %s%s\n", cmd, sub, out ? out : "", err ? err : "");
	free(out);
	free(err);
	return root;
}

/* The not-via-mesh count `sluicectl violation list` shows for t; 0
 * without a row, -1 when it cannot be read. */
static long long refused_count(struct sl_env *env, const struct target *t)
{
	json_t *rows = ctl_json(env, "violation", "list"), *r;
	long long count = 0;
	size_t i;

	if (!rows)
		return -1;
	json_array_foreach(rows, i, r)
	{
		const char *wl = json_string_value(json_object_get(r, "workload"));
		const char *reason = json_string_value(json_object_get(r, "reason"));

		if (!wl || !reason || strcmp(wl, t->id) || strcmp(reason, "not-via-mesh") ||
		    json_integer_value(json_object_get(r, "port")) != t->port)
			continue;
		ASSERT_TRUE(json_is_null(json_object_get(r, "service")), "not-via-mesh service");
		count = json_integer_value(json_object_get(r, "count"));
	}
	json_decref(rows);
	return count;
}

/* A direct connect to t from cgroup on node ns gets no answer although
 * the client retransmitted its SYN; t accepts nothing, and exactly one
 * violation is counted, shown by sluicectl under t's workload and port. */
static void refused_once(struct sl_env *env, struct target *t, const char *ns, const char *cgroup,
			 int family, const char *addr, uint16_t sport)
{
	struct attempt_req req = {.family = family,
				  .addr = addr,
				  .port = t->port,
				  .sport = sport,
				  .wait_ms = REFUSED_WAIT_MS};
	long long total = pinned_violations_total(env);
	long long count = refused_count(env, t);
	int accepted = server_accepted(&t->srv);
	struct attempt a;

	if (!attempt_run(env, ns, cgroup, &req, &a))
		return;
	ASSERT_EQ(a.err, ETIMEDOUT, "direct connect errno");
	ASSERT_GE(a.syn_retrans, 1, "SYNs retransmitted");
	ASSERT_EQ(server_accepted(&t->srv), accepted, "connections the server accepted");
	ASSERT_EQ(pinned_violations_total(env) - total, 1, "violations total delta");
	ASSERT_EQ(refused_count(env, t) - count, 1, "violation list: not-via-mesh delta");
}

/* A connect from cgroup on node ns to srv reaches it, with nothing
 * counted. */
static void reaches(struct sl_env *env, struct cg_server *srv, const char *ns, const char *cgroup,
		    int family, const char *addr, uint16_t port)
{
	struct attempt_req req = {
	    .family = family, .addr = addr, .port = port, .wait_ms = ANSWER_MS};
	long long total = pinned_violations_total(env);
	int accepted = server_accepted(srv);
	struct attempt a;

	if (!attempt_run(env, ns, cgroup, &req, &a))
		return;
	ASSERT_EQ(a.err, 0, "connect and echo errno");
	ASSERT_EQ(server_accepted(srv), accepted + 1, "connections the server accepted");
	ASSERT_EQ(pinned_violations_total(env), total, "violations total");
}

/* A job reaches db through the agent: its connect is redirected to the
 * agent's listener, and the agent connects to db. */
static void via_agent(struct sl_env *env, struct target *db)
{
	struct client_req req = {
	    .op = CL_ECHO, .cgroup = "job", .addr = env->ip4_a, .port = PORT_DB, .bytes = 4096};
	long long total = pinned_violations_total(env);
	int accepted = server_accepted(&db->srv);
	struct client_res res;
	char peer[64];

	if (!ASSERT_OK(client_run(env, &req, &res), "job client report"))
		return;
	if (!ASSERT_EQ(res.err, 0, "job echo errno"))
		printf("job: %s failed: %s\n", res.call, strerror(res.err));
	ASSERT_EQ(res.recvd.bytes, 4096, "job echo bytes back");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, OUTBOUND4, "job's peer (the agent's listener)");
	ASSERT_EQ(server_accepted(&db->srv), accepted + 1, "connections db accepted");
	ASSERT_EQ(pinned_violations_total(env), total, "violations total");
}

/* db's own traffic is not inbound: answers to its direct TCP connect and
 * to its UDP datagram reach it. */
static void own_traffic(struct sl_env *env, struct cg_server *outside)
{
	struct attempt_req req = {
	    .family = AF_INET, .addr = env->ip4_b, .port = PORT_OUTSIDE, .wait_ms = ANSWER_MS};
	struct attempt a;

	reaches(env, outside, env->ns_a, "db", AF_INET, env->ip4_b, PORT_OUTSIDE);
	req.udp = true;
	if (attempt_run(env, env->ns_a, "db", &req, &a))
		ASSERT_EQ(a.err, 0, "udp exchange errno");
}

/* web turns mesh-only on reload: a connection it accepted before keeps
 * working, a new direct one is refused. */
static void reload_mesh_only(struct sl_env *env, struct agent_cfg *cfg, struct target *web)
{
	struct attempt_req req = {.family = AF_INET,
				  .addr = env->ip4_a,
				  .port = PORT_WEB,
				  .wait_ms = ANSWER_MS,
				  .hold = true};
	long from = agent_log_size(env);
	struct attempt a;
	pid_t pid;
	int fd;

	if (!attempt_start(env, env->ns_b, "unmanaged", &req, &a, &pid, &fd))
		return;
	if (!ASSERT_EQ(a.err, 0, "echo before the reload")) {
		child_reap(env, pid, fd);
		return;
	}
	cfg->extra_workloads = WORKLOADS("mesh-only");
	if (!ASSERT_OK(agent_write_config(env, cfg), "rewrite sluice.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP") ||
	    !ASSERT_TRUE(agent_log_wait(env, from, "policy generation", LOG_WAIT_MS),
			 "reload applied")) {
		child_reap(env, pid, fd);
		return;
	}
	if (attempt_finish(env, pid, fd, &a))
		ASSERT_EQ(a.err, 0, "echo on the connection after the reload");
	refused_once(env, web, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
}

static void inbound_link(struct sl_env *env, uint32_t link_id)
{
	json_t *st = ctl_json(env, "status", "show"), *l;

	if (!st)
		return;
	l = json_object_get(json_object_get(st, "links"), "inbound");
	ASSERT_TRUE(json_is_true(json_object_get(l, "pinned")), "status: links.inbound.pinned");
	ASSERT_STREQ(json_string_value(json_object_get(l, "prog_name")), "sluice_inbound",
		     "status: links.inbound.prog_name");
	ASSERT_EQ(json_integer_value(json_object_get(l, "link_id")), link_id,
		  "status: links.inbound.link_id");
	json_decref(st);
}

/* Jobs reach db through the mesh; db may call node B's echo directly. */
static int write_policy(struct sl_env *env)
{
	char addrs[128];

	env_node_addrs(env, 'a', addrs, sizeof(addrs));
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: db\n"
			      "    addresses: [%s]\n"
			      "    ports: [%d]\n"
			      "  - name: outside\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%d]\n"
			      "    mesh: false\n"
			      "  - name: outside-udp\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%d]\n"
			      "    protocol: udp\n"
			      "    mesh: false\n"
			      "rules:\n"
			      "  - name: jobs-use-db\n"
			      "    from: {kind: job}\n"
			      "    to: [db]\n"
			      "    action: allow\n"
			      "  - name: db-calls-out\n"
			      "    from: {workload: \"" ID_DB "\"}\n"
			      "    to: [outside, outside-udp]\n"
			      "    action: allow\n",
			      addrs, PORT_DB, env->ip4_b, PORT_OUTSIDE, env->ip4_b, PORT_OUTSIDE);
}

void test_inbound(struct sl_env *env)
{
	struct agent_cfg cfg = {.extra_workloads = WORKLOADS("open")};
	struct target db = {.id = ID_DB, .port = PORT_DB};
	struct target web = {.id = ID_WEB, .port = PORT_WEB};
	struct cg_server outside, agent_listener;
	uint32_t link_id = 0, id;

	if (!ASSERT_OK(env_cgroup_add(env, "db"), "cgroup db") ||
	    !ASSERT_OK(env_cgroup_add(env, "web"), "cgroup web") ||
	    !server_start_in(env, env->ns_a, "db", PORT_DB, &db.srv) ||
	    !server_start_in(env, env->ns_a, "web", PORT_WEB, &web.srv) ||
	    !server_start_in(env, env->ns_b, "unmanaged", PORT_OUTSIDE, &outside) ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(write_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "start sluiced") ||
	    !ASSERT_OK(pinned_link_id(env, SLUICE_LINK_INBOUND, &link_id), "inbound link id"))
		return;

	if (test__start_subtest("via_agent"))
		via_agent(env, &db);
	if (test__start_subtest("from_node_b"))
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
	if (test__start_subtest("loopback_not_agent"))
		refused_once(env, &db, env->ns_a, "unmanaged", AF_INET, "127.0.0.1", 0);
	if (test__start_subtest("agent_cgroup"))
		reaches(env, &db.srv, env->ns_a, "sluiced", AF_INET, "127.0.0.1", PORT_DB);
	/* The sender is looked up by the reversed 4-tuple: a source port on
	 * which the agent listens must not make a stranger pass for it. */
	if (test__start_subtest("agent_port_as_source") &&
	    server_start_in(env, env->ns_a, "sluiced", PORT_AGENT_LISTENER, &agent_listener))
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a,
			     PORT_AGENT_LISTENER);
	if (env->has_ipv6 && test__start_subtest("ipv6")) {
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET6, env->ip6_a, 0);
		reaches(env, &db.srv, env->ns_a, "sluiced", AF_INET6, "::1", PORT_DB);
	}
	if (test__start_subtest("own_traffic"))
		own_traffic(env, &outside);
	if (test__start_subtest("open_workload"))
		reaches(env, &web.srv, env->ns_b, "unmanaged", AF_INET, env->ip4_a, PORT_WEB);
	if (test__start_subtest("reload"))
		reload_mesh_only(env, &cfg, &web);
	if (test__start_subtest("status"))
		inbound_link(env, link_id);
	if (test__start_subtest("restart")) {
		if (!ASSERT_EQ(agent_stop(env), 0, "sluiced exit status after SIGTERM"))
			return;
		/* Nobody is left to let a connection in: still refused. */
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
		if (!ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "restart sluiced") ||
		    !ASSERT_OK(pinned_link_id(env, SLUICE_LINK_INBOUND, &id), "inbound link id"))
			return;
		ASSERT_EQ(id, link_id, "inbound link id after restart");
		via_agent(env, &db);
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
	}
}
