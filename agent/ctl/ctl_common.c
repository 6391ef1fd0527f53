// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "cgroup.h"
#include "ctl.h"
#include "names.h"

static bool is_prefix(const char *pfx, const char *str)
{
	size_t n = strlen(pfx);

	return n <= strlen(str) && !memcmp(str, pfx, n);
}

int cmd_select(const struct cmd *cmds, int argc, char **argv, const char *obj)
{
	const struct cmd *match = NULL;
	char names[128] = "";
	size_t off = 0;
	int nr = 0;

	if (argc < 1)
		return cmds[0].func(argc, argv);

	for (const struct cmd *c = cmds; c->name; c++) {
		if (!strcmp(*argv, c->name))
			return c->func(argc - 1, argv + 1);
		/* Aliases (show/list) share a function: not ambiguous. */
		if (!is_prefix(*argv, c->name) || (match && match->func == c->func))
			continue;
		match = c;
		nr++;
		if (off < sizeof(names))
			off += snprintf(names + off, sizeof(names) - off, "%s%s",
					nr > 1 ? ", " : "", c->name);
	}
	if (nr == 1)
		return match->func(argc - 1, argv + 1);
	if (nr > 1)
		return errmsg_set(&ctl_err, -EINVAL, "'%s' is ambiguous: %s", *argv, names);
	return errmsg_set(&ctl_err, -EINVAL, "what is '%s'? (see '%s%s%s help')", *argv, bin_name,
			  obj ? " " : "", obj ? obj : "");
}

int parse_file_config(int argc, char **argv, const char **file, const char **config)
{
	int ret;

	*config = NULL;
	ret = REQ_ARGS(1);
	if (ret)
		return ret;
	*file = *argv;
	NEXT_ARG();
	while (argc) {
		if (strcmp(*argv, "-c") && strcmp(*argv, "--config"))
			return BAD_ARG();
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		*config = *argv;
		NEXT_ARG();
	}
	return 0;
}

int print_help(const char *fmt, ...)
{
	va_list ap;

	if (json_output)
		return print_json(json_null());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	return 0;
}

int print_json(json_t *doc)
{
	size_t flags = JSON_ENCODE_ANY | (pretty_output ? JSON_INDENT(4) : JSON_COMPACT);

	if (!doc)
		return errmsg_set(&ctl_err, -ENOMEM,
				  "cannot build the JSON output (out of memory, or text that is not "
				  "UTF-8)");
	json_dumpf(doc, stdout, flags);
	putchar('\n');
	json_decref(doc);
	return 0;
}

json_t *json_u64(__u64 v)
{
	return json_integer((json_int_t)v);
}

json_t *json_u64_or_null(bool set, __u64 v)
{
	return set ? json_u64(v) : json_null();
}

json_t *json_name(__u32 kind, __u32 id)
{
	char buf[SLUICE_NAME_LEN];
	json_t *s;

	if (!id)
		return json_null();
	ctl_name(kind, id, buf, sizeof(buf));
	s = json_string(buf);
	if (s)
		return s;
	/* Not UTF-8: jansson refuses it, so fall back to the id. */
	return json_sprintf("%s:%u", kind == SLUICE_NAME_IDENTITY ? "id" : "svc", id);
}

void table_init(struct table *t, const struct table_col *cols, int nr_cols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->nr_cols = nr_cols;
}

int table_add(struct table *t, ...)
{
	va_list ap;
	char **row;

	if (t->nr_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
		char **cells = realloc(t->cells, cap * t->nr_cols * sizeof(*cells));

		if (!cells)
			return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
		t->cells = cells;
		t->cap_rows = cap;
	}
	row = t->cells + t->nr_rows * t->nr_cols;
	va_start(ap, t);
	for (int i = 0; i < t->nr_cols; i++)
		row[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	t->nr_rows++;
	for (int i = 0; i < t->nr_cols; i++)
		if (!row[i])
			return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
	return 0;
}

static void table_row(const struct table *t, const int *width, const char *const *cells)
{
	for (int i = 0; i < t->nr_cols; i++) {
		bool last = i == t->nr_cols - 1;
		int pad = width[i] - (int)strlen(cells[i]);

		if (t->cols[i].right)
			printf("%*s%s", pad, "", cells[i]);
		else
			printf("%s%*s", cells[i], last ? 0 : pad, "");
		fputs(last ? "\n" : "  ", stdout);
	}
}

void table_print(const struct table *t)
{
	const char *headers[t->nr_cols];
	int width[t->nr_cols];

	for (int i = 0; i < t->nr_cols; i++) {
		headers[i] = t->cols[i].header;
		width[i] = strlen(headers[i]);
	}
	for (size_t r = 0; r < t->nr_rows; r++) {
		for (int i = 0; i < t->nr_cols; i++) {
			int n = strlen(t->cells[r * t->nr_cols + i]);

			if (n > width[i])
				width[i] = n;
		}
	}
	table_row(t, width, headers);
	for (size_t r = 0; r < t->nr_rows; r++)
		table_row(t, width, (const char *const *)t->cells + r * t->nr_cols);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nr_rows * t->nr_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

char *fmt_addr(int family, const __u32 *addr, char *buf, size_t len)
{
	if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

char *fmt_endpoint(int family, const __u32 *addr, __u16 port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	fmt_addr(family, addr, a, sizeof(a));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(port));
	return buf;
}

char *fmt_duration(__u64 ns, char *buf, size_t len)
{
	const __u64 us = 1000, ms = 1000 * us, s = 1000 * ms, m = 60 * s, h = 60 * m, d = 24 * h;

	if (ns < ms)
		snprintf(buf, len, "%lluus", ns / us);
	else if (ns < s)
		snprintf(buf, len, "%.1fms", (double)ns / ms);
	else if (ns < m)
		snprintf(buf, len, "%.1fs", (double)ns / s);
	else if (ns < h)
		snprintf(buf, len, "%llum%llus", ns / m, ns % m / s);
	else if (ns < d)
		snprintf(buf, len, "%lluh%llum", ns / h, ns % h / m);
	else
		snprintf(buf, len, "%llud%lluh", ns / d, ns % d / h);
	return buf;
}

char *fmt_u64(__u64 v, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", v);
	return buf;
}

const char *family_name(int family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "unknown";
}

const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "unknown";
}

const char *flow_state_name(__u32 state)
{
	switch (state) {
	case SLUICE_FLOW_CONNECTING:
		return "connecting";
	case SLUICE_FLOW_ESTABLISHED:
		return "established";
	case SLUICE_FLOW_CLOSING:
		return "closing";
	default:
		return "unknown";
	}
}

const char *fail_mode_name(__u32 mode)
{
	if (mode == SLUICE_FAIL_OPEN)
		return "open";
	return mode == SLUICE_FAIL_CLOSED ? "closed" : "unknown";
}

const char *name_kind_name(__u32 kind)
{
	return kind == SLUICE_NAME_IDENTITY  ? "identity"
	       : kind == SLUICE_NAME_SERVICE ? "service"
					     : "unknown";
}

int cmp_u64(__u64 a, __u64 b)
{
	return a < b ? -1 : a > b;
}

__u64 age_ns(__u64 now, __u64 then)
{
	return then && now > then ? now - then : 0;
}

static int names_fd = -1;

int ctl_names_open(void)
{
	if (names_fd >= 0)
		return 0;
	return map_open_name("names", &names_fd);
}

int ctl_name(__u32 kind, __u32 id, char *buf, size_t len)
{
	return names_lookup(names_fd, kind, id, buf, len);
}

int cgroup_id_path(__u64 id, char *buf, size_t len)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64), .id = id };
	char mnt[PATH_MAX], link[64], path[PATH_MAX];
	int mnt_fd, fd, ret = 0;
	ssize_t n;
	size_t mlen;

	if (cgroup2_mount(mnt, sizeof(mnt), NULL))
		return -ENOENT;
	mnt_fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mnt_fd < 0)
		return -errno;
	/* FILEID_KERNFS: a cgroup2 file handle is the cgroup id. */
	h.fh.handle_type = 0xfe;
	fd = open_by_handle_at(mnt_fd, &h.fh, O_RDONLY | O_CLOEXEC);
	close(mnt_fd);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		ret = -errno;
	close(fd);
	if (ret)
		return ret;
	path[n] = '\0';
	mlen = strlen(mnt);
	if (strncmp(path, mnt, mlen) || (path[mlen] && path[mlen] != '/'))
		return -ENOENT;
	snprintf(buf, len, "%s", path[mlen] ? path + mlen : "/");
	return 0;
}
