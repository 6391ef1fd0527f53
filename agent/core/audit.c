// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "audit.h"
#include "utf8.h"

struct audit {
	int fd;
	char *path;
	bool torn;		/* the last write ended inside its line */
	struct audit_health health;
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

/* Whatever v holds becomes a string jansson takes: a member that could not
 * be encoded would cost the whole line. */
static int set_str(json_t *o, const char *key, const char *v)
{
	char buf[AUDIT_STR_MAX];
	size_t len;

	if (!v)
		return 0;
	len = utf8_copy(buf, sizeof(buf), v);
	return json_object_set_new(o, key, json_stringn(buf, len));
}

static int set_u64(json_t *o, const char *key, uint64_t v)
{
	return json_object_set_new(o, key, json_integer((json_int_t)v));
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
	char when[40], *line;
	json_t *o = json_object();
	int bad, ret;

	if (!o)
		return -ENOMEM;
	fmt_time(r->time_ns, when, sizeof(when));
	/* Order of insertion is the order on the line: time first. */
	bad = set_str(o, "time", when) | set_u64(o, "schema", AUDIT_SCHEMA) |
	      set_str(o, "direction", r->direction) | set_str(o, "src_node", r->src_node) |
	      set_str(o, "src_workload", r->src_workload) | set_str(o, "peer", r->peer) |
	      set_str(o, "dst", r->dst) | set_str(o, "service", r->service) |
	      set_str(o, "verdict", r->verdict) | set_str(o, "reason", r->reason) |
	      set_str(o, "detail", r->detail) | set_str(o, "rule", r->rule) |
	      set_u64(o, "generation", r->generation) | set_str(o, "jti", r->jti) |
	      set_str(o, "kid", r->kid) | set_str(o, "trace_id", r->trace_id) |
	      set_str(o, "caller", r->caller) | set_str(o, "client", r->client) |
	      set_str(o, "host", r->host) | set_str(o, "method", r->method) |
	      set_str(o, "path", r->path) | set_str(o, "orig_jti", r->orig_jti);
	if (r->resumed)
		bad |= json_object_set_new(o, "resumed",
					   json_boolean(r->resumed == AUDIT_RESUMED_YES));
	if (r->closed)
		bad |= set_u64(o, "bytes_up", r->bytes_up) | set_u64(o, "bytes_down", r->bytes_down) |
		       set_u64(o, "duration_ns", r->duration_ns) | set_str(o, "status", r->status);
	line = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!line)
		return -ENOMEM;
	ret = append(a, line, strlen(line));
	free(line);
	return ret;
}

int audit_write(struct audit *a, const struct audit_rec *r)
{
	int ret = write_line(a, r);

	if (ret) {
		a->health.lost++;
		a->health.last_err = ret;
	}
	return ret;
}

void audit_get_health(const struct audit *a, struct audit_health *out)
{
	*out = a->health;
}
