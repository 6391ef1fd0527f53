// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"
#include "strbuf.h"

/* A full disk must not flood the agent's log: one message about the audit
 * log in this many seconds at most. */
#define AUDIT_SAY_S 10

struct audit {
	int fd;
	char *path;
	bool torn;		/* the last write ended inside its line */
	bool unwell;		/* the log said it fails, and not yet that it works */
	time_t quiet_until;	/* CLOCK_MONOTONIC s: nothing said before then */
	struct audit_health health;
	audit_hook_fn hook;
	void *hook_ctx;
};

static int open_log(const char *path, struct errmsg *err)
{
	char dir[4096], *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) && errno != EEXIST)
			return errmsg_set(err, -errno, "audit log %s: cannot create %s: %s", path,
					  dir, strerror(errno));
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return errmsg_set(err, -errno, "audit log %s: %s (set audit_log in the config)",
				  path, strerror(errno));
	return fd;
}

int audit_open(const char *path, struct audit **out, struct errmsg *err)
{
	struct audit *a;
	int fd;

	fd = open_log(path, err);
	if (fd < 0)
		return fd;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path))) {
		free(a);
		close(fd);
		return errmsg_set(err, -ENOMEM, "audit log %s: out of memory", path);
	}
	a->fd = fd;
	*out = a;
	return 0;
}

int audit_reopen(struct audit *a, struct errmsg *err)
{
	int fd = open_log(a->path, err);

	if (fd < 0)
		return fd;
	close(a->fd);
	a->fd = fd;
	return 0;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	close(a->fd);
	free(a->path);
	free(a);
}

/*
 * A line is built in place, not through a JSON library: one is written per
 * decision, thousands a second at the edge, and jansson's object, its
 * hashing and its dump were a tenth of the agent's CPU there. The output
 * is what jansson's compact dump writes for the same members (the unit
 * test holds it to that; strbuf_json_str() writes the strings).
 */
#define LINE_STACK 4096
_Static_assert(AUDIT_STR_MAX == STRBUF_JSON_STR_MAX, "audit.h promises strbuf's cut");

/* ,"key": (no comma before the first member). */
static void put_key(struct strbuf *l, const char *key)
{
	strbuf_put(l, l->len > 1 ? ",\"" : "\"", l->len > 1 ? 2 : 1);
	strbuf_put(l, key, strlen(key));
	strbuf_put(l, "\":", 2);
}

static void put_str(struct strbuf *l, const char *key, const char *v)
{
	if (!v)
		return;
	put_key(l, key);
	strbuf_json_str(l, v);
}

static void put_u64(struct strbuf *l, const char *key, uint64_t v)
{
	put_key(l, key);
	strbuf_u64(l, v);
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
	time_t s = ns / 1000000000;
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06ldZ", (long)(ns % 1000000000 / 1000));
}

/* Appends line and its newline in one write; a line that a short write
 * left torn is ended first, so that it takes no whole line with it. */
static int append(struct audit *a, char *line, size_t len)
{
	struct iovec iov[] = {
		{ .iov_base = "\n", .iov_len = a->torn },
		{ .iov_base = line, .iov_len = len },
		{ .iov_base = "\n", .iov_len = 1 },
	};
	ssize_t want = iov[0].iov_len + len + 1, n;

	n = writev(a->fd, iov, sizeof(iov) / sizeof(iov[0]));
	if (n < 0)
		return -errno;
	a->torn = n < want && n != (ssize_t)iov[0].iov_len;
	return n == want ? 0 : -ENOSPC;
}

static int write_line(struct audit *a, const struct audit_rec *r)
{
	char when[40], stack[LINE_STACK];
	struct strbuf l;
	int ret;

	strbuf_init(&l, stack, sizeof(stack));
	fmt_time(r->time_ns, when, sizeof(when));
	/* The order of the members is the order of the schema: time first. */
	strbuf_put(&l, "{", 1);
	put_str(&l, "time", when);
	put_u64(&l, "schema", AUDIT_SCHEMA);
	put_str(&l, "direction", r->direction);
	put_str(&l, "src_node", r->src_node);
	put_str(&l, "src_workload", r->src_workload);
	put_str(&l, "peer", r->peer);
	put_str(&l, "dst", r->dst);
	put_str(&l, "dst_workload", r->dst_workload);
	put_str(&l, "service", r->service);
	put_str(&l, "verdict", r->verdict);
	put_str(&l, "reason", r->reason);
	put_str(&l, "detail", r->detail);
	put_str(&l, "rule", r->rule);
	put_u64(&l, "generation", r->generation);
	put_str(&l, "jti", r->jti);
	put_str(&l, "kid", r->kid);
	put_str(&l, "trace_id", r->trace_id);
	put_str(&l, "span_id", r->span_id);
	put_str(&l, "parent_span_id", r->parent_span_id);
	put_str(&l, "caller", r->caller);
	put_str(&l, "client", r->client);
	put_str(&l, "host", r->host);
	put_str(&l, "method", r->method);
	put_str(&l, "path", r->path);
	put_str(&l, "orig_jti", r->orig_jti);
	if (r->http_status) {
		put_u64(&l, "http_status", r->http_status);
		put_u64(&l, "duration_ns", r->duration_ns);
	}
	put_str(&l, "op", r->op);
	if (r->has_cred) {
		put_u64(&l, "uid", r->uid);
		put_u64(&l, "gid", r->gid);
	}
	if (r->pid)
		put_u64(&l, "pid", r->pid);
	put_str(&l, "sha256", r->sha256);
	put_str(&l, "comm", r->comm);
	put_str(&l, "proto", r->proto);
	put_str(&l, "hook", r->hook);
	if (r->count > 1)
		put_u64(&l, "count", r->count);
	if (r->resumed) {
		put_key(&l, "resumed");
		if (r->resumed == AUDIT_RESUMED_YES)
			strbuf_put(&l, "true", 4);
		else
			strbuf_put(&l, "false", 5);
	}
	if (r->closed) {
		put_u64(&l, "bytes_up", r->bytes_up);
		put_u64(&l, "bytes_down", r->bytes_down);
		put_u64(&l, "duration_ns", r->duration_ns);
		if (r->connect_us)
			put_u64(&l, "connect_us", r->connect_us);
		if (r->srtt_us)
			put_u64(&l, "srtt_us", r->srtt_us);
		put_str(&l, "status", r->status);
	}
	strbuf_put(&l, "}", 1);
	ret = l.oom ? -ENOMEM : append(a, l.p, l.len);
	strbuf_release(&l);
	return ret;
}

/* Says that lines are lost, with the running count, and that they are
 * written again once they are, at most once every AUDIT_SAY_S. */
static void report(struct audit *a, int ret)
{
	struct timespec ts;

	if (!ret && !a->unwell)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec < a->quiet_until) {
		a->unwell = true;
		return;
	}
	if (ret)
		pr_err("audit: %llu lines lost so far: cannot write %s: %s",
		       (unsigned long long)a->health.lost, a->path, strerror(-ret));
	else
		pr_info("audit: writing to %s again, %llu lines lost so far", a->path,
			(unsigned long long)a->health.lost);
	a->unwell = ret != 0;
	a->quiet_until = ts.tv_sec + AUDIT_SAY_S;
}

int audit_write(struct audit *a, const struct audit_rec *r)
{
	int ret = write_line(a, r);

	if (ret) {
		a->health.lost++;
		a->health.last_err = ret;
	} else {
		a->health.written++;
	}
	report(a, ret);
	if (a->hook)
		a->hook(a->hook_ctx, r);
	return ret;
}

void audit_span(struct audit *a, const struct audit_rec *r)
{
	if (a->hook)
		a->hook(a->hook_ctx, r);
}

void audit_set_hook(struct audit *a, audit_hook_fn fn, void *ctx)
{
	a->hook = fn;
	a->hook_ctx = ctx;
}

void audit_get_health(const struct audit *a, struct audit_health *out)
{
	*out = a->health;
}
