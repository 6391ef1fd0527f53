// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The control socket: control.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "log.h"
#include "unixsock.h"

#define READ_CHUNK 65536
#define MAX_GROUPS 256

struct client {
	int fd;
	struct control_peer peer;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC */
	char *in;			/* a request not yet whole */
	size_t in_len, in_cap;
	char *out;			/* an answer not yet taken */
	size_t out_len, out_off;
	bool closing;			/* after out is sent */
};

struct control {
	struct control_cfg cfg;
	struct control_deps deps;
	char *path;
	int listen_fd;
	int epoll_fd;
	struct client *clients[CONTROL_MAX_CLIENTS];	/* NULL: free */
};

static bool in_groups(unsigned int gid, const struct ucred *cred, const gid_t *groups, int nr)
{
	if (cred->gid == gid)
		return true;
	for (int i = 0; i < nr; i++) {
		if (groups[i] == gid)
			return true;
	}
	return false;
}

/* Who the client is, from the kernel: SO_PEERCRED at connect(), and its
 * supplementary groups (SO_PEERGROUPS, Linux 4.13). */
static int peer_of(const struct control *c, int fd, struct control_peer *p)
{
	gid_t groups[MAX_GROUPS];
	socklen_t len = sizeof(struct ucred);
	struct ucred cred;
	int nr = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return -errno;
	len = sizeof(groups);
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		nr = len / sizeof(gid_t);
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->pid = cred.pid;
	p->admin = !cred.uid ||
		   (c->cfg.has_admin_group && in_groups(c->cfg.admin_gid, &cred, groups, nr));
	p->reader = p->admin ||
		    (c->cfg.has_read_group && in_groups(c->cfg.read_gid, &cred, groups, nr));
	return 0;
}

static void client_free(struct control *c, int slot)
{
	struct client *cl = c->clients[slot];

	if (!cl)
		return;
	epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	free(cl);
	c->clients[slot] = NULL;
}

static void set_events(struct control *c, int slot, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u32 = slot + 1 };

	epoll_ctl(c->epoll_fd, EPOLL_CTL_MOD, c->clients[slot]->fd, &ev);
}

/* Writes what the socket takes now; the rest waits for EPOLLOUT. */
static void flush(struct control *c, int slot)
{
	struct client *cl = c->clients[slot];
	ssize_t n;

	while (cl->out_off < cl->out_len) {
		n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_events(c, slot, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			client_free(c, slot);
			return;
		}
		cl->out_off += n;
	}
	free(cl->out);
	cl->out = NULL;
	cl->out_len = cl->out_off = 0;
	if (cl->closing) {
		client_free(c, slot);
		return;
	}
	cl->deadline_ns = mono_ns() + CONTROL_TIMEOUT_S * 1000000000ull;
	set_events(c, slot, EPOLLIN);
}

/* Queues line (taken) as the answer; NULL (no memory) closes. */
static void answer(struct control *c, int slot, char *line, size_t len, bool close_after)
{
	struct client *cl = c->clients[slot];

	if (!line) {
		client_free(c, slot);
		return;
	}
	cl->out = line;
	cl->out_len = len;
	cl->out_off = 0;
	cl->closing = close_after;
	flush(c, slot);
}

static void answer_error(struct control *c, int slot, int ret, const char *msg, bool close_after)
{
	size_t len = 0;
	char *line = ctlproto_error(ret, msg, &len);

	answer(c, slot, line, len, close_after);
}

static const char *reason_of(int ret)
{
	switch (ret) {
	case 0:
		return "ok";
	case -EPERM:
	case -EACCES:
		return "not-permitted";
	case -EINVAL:
	case -EFBIG:
	case -E2BIG:
	case -EOVERFLOW:
		return "invalid";
	default:
		return "failed";
	}
}

/* One line per change and per refused attempt; dry runs change nothing. */
static void audit_change(struct control *c, const struct ctl_request *req,
			 const struct control_peer *p, json_t *result, int ret, const char *msg)
{
	struct timespec ts;
	struct audit_rec r = {
		.direction = "control",
		.src_node = c->deps.node,
		.op = ctlproto_cmd_name(req->cmd),
		.verdict = ret ? "deny" : "allow",
		.reason = reason_of(ret),
		.detail = ret ? msg : NULL,
		.has_cred = true,
		.uid = p->uid,
		.gid = p->gid,
		.pid = p->pid,
	};

	if (!ctlproto_cmd_changes(req->cmd) || req->dry_run || !c->deps.audit)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	r.generation = json_integer_value(json_object_get(result, "generation"));
	r.sha256 = json_string_value(json_object_get(result, "sha256"));
	audit_write(c->deps.audit, &r);
}

static int check_right(const struct control_peer *p, const struct ctl_request *req,
		       const struct control_cfg *cfg, struct errmsg *err)
{
	if (!ctlproto_cmd_changes(req->cmd) || p->admin)
		return 0;
	if (cfg->has_admin_group)
		return errmsg_set(err, -EPERM, "%s changes the agent: it needs root or group %u "
				  "(control.admin_group), and uid %u is neither",
				  ctlproto_cmd_name(req->cmd), cfg->admin_gid, p->uid);
	return errmsg_set(err, -EPERM, "%s changes the agent: it needs root (no "
			  "control.admin_group is configured), and uid %u is not root",
			  ctlproto_cmd_name(req->cmd), p->uid);
}

static void serve(struct control *c, int slot, const char *line, size_t len)
{
	struct client *cl = c->clients[slot];
	struct control_peer peer = cl->peer;
	struct ctl_request req;
	struct errmsg err = {};
	json_t *result = NULL;
	size_t out_len = 0;
	int ret;

	ret = ctlproto_parse_request(line, len, &req, &err);
	if (ret) {
		pr_debug("control: uid %u pid %u: bad request: %s", peer.uid, peer.pid, err.msg);
		answer_error(c, slot, ret, err.msg, true);
		return;
	}
	ret = check_right(&peer, &req, &c->cfg, &err);
	if (!ret)
		ret = c->deps.handler(c->deps.ctx, &req, &peer, &result, &err);
	audit_change(c, &req, &peer, result, ret, err.msg);
	if (ret) {
		pr_info("control: %s from uid %u pid %u refused: %s", ctlproto_cmd_name(req.cmd),
			peer.uid, peer.pid, err.msg);
		answer_error(c, slot, ret, err.msg, false);
	} else {
		char *out = ctlproto_ok(result, &out_len);

		result = NULL;
		answer(c, slot, out, out_len, false);
	}
	json_decref(result);
	ctlproto_request_free(&req);
}

/* Serves each whole line in the buffer; an overlong one closes. */
static void take_lines(struct control *c, int slot)
{
	struct client *cl = c->clients[slot];
	char *nl;
	size_t n;

	while (cl && !cl->out && (nl = memchr(cl->in, '\n', cl->in_len))) {
		n = nl - cl->in;
		serve(c, slot, cl->in, n);
		cl = c->clients[slot];
		if (!cl)
			return;
		memmove(cl->in, nl + 1, cl->in_len - n - 1);
		cl->in_len -= n + 1;
	}
	if (cl && cl->in_len > CTLPROTO_MAX_REQUEST)
		answer_error(c, slot, -EFBIG, "request longer than 4 MiB", true);
}

static void client_read(struct control *c, int slot)
{
	struct client *cl = c->clients[slot];
	ssize_t n;
	char *in;

	if (cl->in_cap - cl->in_len < READ_CHUNK) {
		in = realloc(cl->in, cl->in_cap + READ_CHUNK);
		if (!in) {
			client_free(c, slot);
			return;
		}
		cl->in = in;
		cl->in_cap += READ_CHUNK;
	}
	n = recv(cl->fd, cl->in + cl->in_len, cl->in_cap - cl->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c, slot);
		return;
	}
	cl->in_len += n;
	take_lines(c, slot);
}

static void refuse_peer(int fd, const struct control_peer *p, const struct control_cfg *cfg)
{
	char msg[256];
	size_t len = 0;
	char *line;

	if (cfg->has_read_group)
		snprintf(msg, sizeof(msg), "uid %u may not use the control socket: it is for root "
			 "and the members of group %u (control.read_group)", p->uid,
			 cfg->read_gid);
	else
		snprintf(msg, sizeof(msg), "uid %u may not use the control socket: it is for root "
			 "(set control.read_group to let a group read)", p->uid);
	line = ctlproto_error(-EACCES, msg, &len);
	if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("control: uid %u: %s", p->uid, strerror(errno));
	free(line);
}

static void accept_one(struct control *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct control_peer peer;
	struct client *cl;
	int fd, slot;

	fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (peer_of(c, fd, &peer)) {
		close(fd);
		return;
	}
	if (!peer.reader) {
		pr_info("control: refused uid %u gid %u pid %u: neither root nor in a control "
			"group", peer.uid, peer.gid, peer.pid);
		refuse_peer(fd, &peer, &c->cfg);
		close(fd);
		return;
	}
	for (slot = 0; slot < CONTROL_MAX_CLIENTS && c->clients[slot]; slot++)
		;
	cl = slot < CONTROL_MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		close(fd);
		return;
	}
	cl->fd = fd;
	cl->peer = peer;
	cl->deadline_ns = mono_ns() + CONTROL_TIMEOUT_S * 1000000000ull;
	ev.data.u32 = slot + 1;
	if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		free(cl);
		return;
	}
	c->clients[slot] = cl;
}

void control_run(void *ctx)
{
	struct epoll_event evs[CONTROL_MAX_CLIENTS + 1];
	struct control *c = ctx;
	int n;

	n = epoll_wait(c->epoll_fd, evs, CONTROL_MAX_CLIENTS + 1, 0);
	for (int i = 0; i < n; i++) {
		int slot = (int)evs[i].data.u32 - 1;

		if (slot < 0) {
			accept_one(c);
		} else if (c->clients[slot] && c->clients[slot]->out) {
			/* Then the requests that came while it waited. */
			flush(c, slot);
			if (c->clients[slot] && !c->clients[slot]->out)
				take_lines(c, slot);
		} else if (c->clients[slot]) {
			client_read(c, slot);
		}
	}
}

void control_tick(struct control *c)
{
	uint64_t now = mono_ns();

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct client *cl = c->clients[i];

		if (!cl || now < cl->deadline_ns)
			continue;
		pr_debug("control: uid %u pid %u: closed after %d s without a whole request",
			 cl->peer.uid, cl->peer.pid, CONTROL_TIMEOUT_S);
		client_free(c, i);
	}
}

int control_fd(const struct control *c)
{
	return c->epoll_fd;
}

int control_new(const struct control_cfg *cfg, const struct control_deps *deps,
		struct control **out, struct errmsg *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	unsigned int gid;
	struct control *c;

	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(cfg->socket))) {
		free(c);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	c->cfg = *cfg;
	c->cfg.socket = c->path;
	c->deps = *deps;
	c->listen_fd = -1;
	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epoll_fd < 0) {
		control_free(c);
		return errmsg_set(err, -errno, "control: epoll: %s", strerror(errno));
	}
	gid = cfg->has_read_group ? cfg->read_gid : cfg->has_admin_group ? cfg->admin_gid : 0;
	c->listen_fd = unixsock_listen(cfg->socket, "control.socket", gid, true, err);
	if (c->listen_fd < 0) {
		int ret = c->listen_fd;

		c->listen_fd = -1;
		free(c->path);
		c->path = NULL;
		control_free(c);
		return ret;
	}
	if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->listen_fd, &ev)) {
		control_free(c);
		return errmsg_set(err, -errno, "control: epoll: %s", strerror(errno));
	}
	*out = c;
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		client_free(c, i);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->epoll_fd >= 0)
		close(c->epoll_fd);
	free(c->path);
	free(c);
}
