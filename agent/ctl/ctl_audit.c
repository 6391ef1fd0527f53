// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl audit: the audit log (docs/audit.md), filtered, as a table or
 * JSON. The file is read line by line, never whole: it grows for as long
 * as the agent runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ctl.h"

#define AUDIT_DEFAULT_PATH "/run/sluice/audit.jsonl"
#define FOLLOW_POLL_US 200000

struct audit_filter {
	const char *workload, *service, *verdict, *reason, *trace, *direction;
	int64_t since_us, until_us;	/* unix microseconds; 0: open */
	size_t limit;			/* the last N matches; 0: all */
	bool follow;
};

/* "2026-12-02T23:02:44.982822Z" -> unix microseconds; -1: not that. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm = {};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	int64_t us = 0, scale = 100000;

	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			us += (*p - '0') * scale;
	}
	if (*p != 'Z' || p[1])
		return -1;
	return (int64_t)timegm(&tm) * 1000000 + us;
}

/* An RFC 3339 time (UTC, "Z") or an age: "90s", "10m", "2h", "1d". */
static int parse_when(const char *opt, const char *s, int64_t *out)
{
	char *end;
	long v;

	*out = parse_rfc3339(s);
	if (*out >= 0)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!errno && end != s && v >= 0 && end[0] && !end[1] && strchr("smhd", end[0])) {
		long mul = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 86400;

		*out = ((int64_t)time(NULL) - v * mul) * 1000000;
		return 0;
	}
	return errmsg_set(&ctl_err, -EINVAL,
			  "%s takes an RFC 3339 time in UTC (2026-12-02T23:02:44Z) or an age "
			  "(90s, 10m, 2h, 1d), not '%s'",
			  opt, s);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool eq(const char *have, const char *want)
{
	return have && !strcmp(have, want);
}

/* A workload filter matches a SPIFFE ID in full or as its path's tail. */
static bool workload_match(const char *id, const char *want)
{
	size_t n, w = strlen(want);

	if (!id)
		return false;
	n = strlen(id);
	return !strcmp(id, want) || (n > w && id[n - w - 1] == '/' && !strcmp(id + n - w, want));
}

static bool matches(const struct audit_filter *f, const json_t *o)
{
	const char *t = jstr(o, "time");
	int64_t us = t ? parse_rfc3339(t) : -1;

	if (f->workload && !workload_match(jstr(o, "src_workload"), f->workload) &&
	    !workload_match(jstr(o, "dst_workload"), f->workload) &&
	    !workload_match(jstr(o, "caller"), f->workload))
		return false;
	if ((f->service && !eq(jstr(o, "service"), f->service)) ||
	    (f->verdict && !eq(jstr(o, "verdict"), f->verdict)) ||
	    (f->reason && !eq(jstr(o, "reason"), f->reason)) ||
	    (f->trace && !eq(jstr(o, "trace_id"), f->trace)) ||
	    (f->direction && !eq(jstr(o, "direction"), f->direction)))
		return false;
	if (f->since_us && us < f->since_us)
		return false;
	return !f->until_us || (us >= 0 && us <= f->until_us);
}

static void print_plain(const json_t *o)
{
	const char *wl = jstr(o, "src_workload") ?: jstr(o, "caller") ?: jstr(o, "peer") ?: "-";
	const char *to = jstr(o, "service") ?: jstr(o, "dst") ?: "-";
	json_int_t count = json_integer_value(json_object_get(o, "count"));
	const char *t = jstr(o, "time") ?: "-";

	printf("%-27s %-8s %-5s %-16s %s -> %s", t, jstr(o, "direction") ?: "-",
	       jstr(o, "verdict") ?: "-", jstr(o, "reason") ?: "-", wl, to);
	if (jstr(o, "service") && jstr(o, "dst"))
		printf(" (%s)", jstr(o, "dst"));
	if (count > 1)
		printf(" x%lld", (long long)count);
	if (jstr(o, "trace_id"))
		printf(" trace %s", jstr(o, "trace_id"));
	putchar('\n');
}

/* Keeps the last f->limit matches (all without a limit) for the end. */
struct kept {
	json_t **o;
	size_t nr, cap, head;
};

static void emit(const struct audit_filter *f, struct kept *k, json_t *o, bool streaming)
{
	if (streaming) {
		if (json_output) {
			char *s = json_dumps(o, JSON_COMPACT);

			puts(s ?: "null");
			free(s);
		} else {
			print_plain(o);
		}
		fflush(stdout);
		json_decref(o);
		return;
	}
	if (f->limit && k->nr == f->limit) {
		json_decref(k->o[k->head]);
		k->o[k->head] = o;
		k->head = (k->head + 1) % f->limit;
		return;
	}
	if (k->nr == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		json_t **n = realloc(k->o, cap * sizeof(*n));

		if (!n) {
			json_decref(o);
			return;
		}
		k->o = n;
		k->cap = cap;
	}
	k->o[k->nr++] = o;
}

/* Reads lines from f until EOF; returns the line number reached. */
static long read_lines(FILE *in, const char *name, long lineno, const struct audit_filter *f,
		       struct kept *k, bool streaming)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, in)) > 0) {
		json_error_t jerr;
		json_t *o;

		lineno++;
		if (line[n - 1] != '\n' && streaming) {
			/* A line the agent is still writing: read it whole next time. */
			fseek(in, -n, SEEK_CUR);
			lineno--;
			break;
		}
		o = json_loadb(line, n, 0, &jerr);
		if (!o || !json_is_object(o)) {
			fprintf(stderr, "%s: %s:%ld: not a JSON object, skipped\n", bin_name, name,
				lineno);
			json_decref(o);
			continue;
		}
		if (matches(f, o))
			emit(f, k, o, streaming);
		else
			json_decref(o);
	}
	free(line);
	clearerr(in);
	return lineno;
}

static int print_kept(const struct audit_filter *f, struct kept *k)
{
	json_t *arr = json_array();
	int ret = 0;

	for (size_t i = 0; i < k->nr; i++) {
		json_t *o = k->o[(f->limit && k->nr == f->limit ? k->head + i : i) % k->nr];

		if (json_output)
			json_array_append(arr, o);
		else
			print_plain(o);
	}
	if (json_output)
		ret = print_json(arr);
	else
		json_decref(arr);
	for (size_t i = 0; i < k->nr; i++)
		json_decref(k->o[i]);
	free(k->o);
	return ret;
}

/* tail -F: reads on as the agent appends, and from the start of a new
 * file once logrotate has moved the old one away. */
static int follow(FILE **inp, const char *path, long lineno, const struct audit_filter *f)
{
	struct stat st, now;
	FILE *in = *inp;

	if (fstat(fileno(in), &st))
		return errmsg_set(&ctl_err, -errno, "%s: %s", path, strerror(errno));
	for (;;) {
		usleep(FOLLOW_POLL_US);
		lineno = read_lines(in, path, lineno, f, NULL, true);
		if (stat(path, &now) || now.st_ino == st.st_ino)
			continue;
		/* Rotated: what is left of the old file first, then the new. */
		lineno = read_lines(in, path, lineno, f, NULL, true);
		fclose(in);
		in = *inp = fopen(path, "r");
		if (!in)
			return errmsg_set(&ctl_err, -errno, "%s: %s", path, strerror(errno));
		fstat(fileno(in), &st);
		lineno = 0;
	}
}

static int parse_filters(int argc, char **argv, struct audit_filter *f, const char **path)
{
	static const char *const str_opts[] = {
		"--workload", "--service", "--verdict", "--reason", "--trace", "--direction",
	};
	const char **str_dst[] = {
		&f->workload, &f->service, &f->verdict, &f->reason, &f->trace, &f->direction,
	};
	int ret;

	while (argc) {
		const char *opt = *argv;
		bool known = false;

		if (*opt != '-' || !strcmp(opt, "-")) {
			*path = opt;
			NEXT_ARG();
			continue;
		}
		if (!strcmp(opt, "--follow") || !strcmp(opt, "-f")) {
			f->follow = true;
			NEXT_ARG();
			continue;
		}
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		for (size_t i = 0; i < ARRAY_SIZE(str_opts); i++) {
			if (!strcmp(opt, str_opts[i])) {
				*str_dst[i] = *argv;
				known = true;
			}
		}
		if (!strcmp(opt, "--verdict") && strcmp(*argv, "allow") && strcmp(*argv, "deny") &&
		    strcmp(*argv, "would-deny"))
			return errmsg_set(&ctl_err, -EINVAL,
					  "--verdict takes allow, deny or would-deny, not '%s'", *argv);
		if (!strcmp(opt, "--since") || !strcmp(opt, "--until")) {
			ret = parse_when(opt, *argv, opt[2] == 's' ? &f->since_us : &f->until_us);
			if (ret)
				return ret;
			known = true;
		}
		if (!strcmp(opt, "--limit")) {
			char *end;

			f->limit = strtoul(*argv, &end, 10);
			if (end == *argv || *end || !f->limit || **argv == '-')
				return errmsg_set(&ctl_err, -EINVAL,
						  "--limit takes a number of lines (1 or more), not "
						  "'%s'", *argv);
			known = true;
		}
		if (!known)
			return errmsg_set(&ctl_err, -EINVAL, "what is '%s'? (see '%s audit help')",
					  opt, bin_name);
		NEXT_ARG();
	}
	return 0;
}

static int audit_show(int argc, char **argv)
{
	const char *path = AUDIT_DEFAULT_PATH;
	struct audit_filter f = {};
	struct kept k = {};
	FILE *in;
	long lineno;
	int ret;

	ret = parse_filters(argc, argv, &f, &path);
	if (ret)
		return ret;
	in = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!in)
		return errmsg_set(&ctl_err, -errno,
				  "cannot read %s: %s%s", path, strerror(errno),
				  errno == ENOENT ? " (the agent creates it, at audit_log in its "
						    "config, once it has decided something; give "
						    "the path if it is elsewhere)" : "");
	lineno = read_lines(in, path, 0, &f, &k, false);
	ret = print_kept(&f, &k);
	fflush(stdout);
	if (!ret && f.follow && in != stdin)
		ret = follow(&in, path, lineno, &f);
	if (in && in != stdin)
		fclose(in);
	return ret;
}

static int audit_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s audit [show] [FILE | -] [--workload ID] [--service NAME]\n"
		"                 [--verdict allow|deny|would-deny] [--reason CODE]\n"
		"                 [--trace TRACE_ID] [--direction DIR] [--since WHEN]\n"
		"                 [--until WHEN] [--limit N] [--follow]\n"
		"       %1$s audit help\n"
		"\n"
		"Reads the agent's audit log (docs/audit.md): FILE, default\n"
		AUDIT_DEFAULT_PATH " (the audit_log of the default run_dir), or - for\n"
		"stdin. One line per matching record: time (UTC), direction, verdict, reason,\n"
		"workload -> service (destination), xCOUNT for folded refusals, the trace id.\n"
		"With -j the records as written, as a JSON array (with --follow, one per\n"
		"line). Filters combine: --workload matches src_workload, dst_workload or\n"
		"caller, in full or by the end of its path (notebook/77); WHEN is an RFC 3339\n"
		"time in UTC (2026-12-02T23:02:44Z) or an age (90s, 10m, 2h, 1d); --limit keeps\n"
		"the last N matches; --follow (-f) goes on reading as the agent appends, and\n"
		"from the new file after a rotation. A line that is not JSON is reported on\n"
		"stderr with its line number and skipped.\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "show", audit_show },
	{ "list", audit_show },
	{ "help", audit_help },
	{ 0 }
};

int do_audit(int argc, char **argv)
{
	if (!argc || (strcmp(*argv, "show") && strcmp(*argv, "list") && strcmp(*argv, "help")))
		return audit_show(argc, argv);
	return cmd_select(cmds, argc, argv, "audit");
}
