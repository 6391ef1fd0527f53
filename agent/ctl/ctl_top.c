// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl top: a live view of the pinned maps, refreshed in place. Plain
 * text and two escape sequences (clear, home) on the alternate screen, no
 * colour and no terminal library: it runs in any terminal that is at least
 * 80x24, and in batch mode (stdout not a terminal, or --once) it prints
 * frames one after the other, as top -b does.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "ctl.h"
#include "policy.h"

#define ROWS_PER_TABLE 5

struct top_flow {
	__u64 cookie;
	struct sluice_flow f;
	__u64 rate;			/* bytes both ways since the last frame */
};

struct sample {
	__u64 at_ns;
	__u64 opened;			/* svc_stats flows, summed */
	__u64 violations;		/* violations counts, summed */
	struct top_flow *flows;
	size_t nr_flows;
};

static struct termios saved_tio;
static bool tio_saved;

static void term_restore(void)
{
	if (!tio_saved)
		return;
	/* Cursor back, main screen back, the line discipline as it was. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_saved = false;
}

static void on_signal(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int term_setup(void)
{
	struct termios tio;

	if (tcgetattr(STDIN_FILENO, &saved_tio))
		return -errno;
	tio = saved_tio;
	tio.c_lflag &= ~(ICANON | ECHO);
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio))
		return -errno;
	tio_saved = true;
	atexit(term_restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGABRT, on_signal);
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

static int take_sample(struct sample *s)
{
	struct map_snap snap;
	int ret;

	memset(s, 0, sizeof(*s));
	s->at_ns = mono_ns();
	ret = map_snapshot("svc_stats", &snap);
	if (ret)
		return ret;
	for (size_t i = 0; i < snap.nr; i++)
		s->opened += ((const struct sluice_svc_stats *)snap_value(&snap, i, 0))->flows;
	map_snap_free(&snap);
	ret = map_snapshot("violations", &snap);
	if (ret)
		return ret;
	for (size_t i = 0; i < snap.nr; i++)
		for (int cpu = 0; cpu < snap.nr_cpus; cpu++)
			s->violations +=
			    ((const struct sluice_counter *)snap_value(&snap, i, cpu))->count;
	map_snap_free(&snap);
	ret = map_snapshot("flows", &snap);
	if (ret)
		return ret;
	s->flows = calloc(snap.nr ? snap.nr : 1, sizeof(*s->flows));
	if (!s->flows) {
		map_snap_free(&snap);
		return -ENOMEM;
	}
	for (size_t i = 0; i < snap.nr; i++) {
		s->flows[i].cookie = *(const __u64 *)snap_key(&snap, i);
		s->flows[i].f = *(const struct sluice_flow *)snap_value(&snap, i, 0);
	}
	s->nr_flows = snap.nr;
	map_snap_free(&snap);
	return 0;
}

/* Bytes per frame of each flow: against the last frame where it was
 * there, or all it moved when it is new. */
static void rates(struct sample *now, const struct sample *prev)
{
	for (size_t i = 0; i < now->nr_flows; i++) {
		struct top_flow *f = &now->flows[i];
		__u64 before = 0;

		for (size_t j = 0; prev && j < prev->nr_flows; j++) {
			if (prev->flows[j].cookie == f->cookie) {
				before = prev->flows[j].f.bytes_sent + prev->flows[j].f.bytes_received;
				break;
			}
		}
		f->rate = f->f.bytes_sent + f->f.bytes_received - before;
	}
}

static int by_rate(const void *a, const void *b)
{
	const struct top_flow *x = a, *y = b;

	return cmp_u64(y->rate, x->rate) ?: cmp_u64(x->cookie, y->cookie);
}

static int by_rtt(const void *a, const void *b)
{
	const struct top_flow *x = a, *y = b;

	return cmp_u64(y->f.srtt_us, x->f.srtt_us) ?: cmp_u64(x->cookie, y->cookie);
}

/* One line, cut at the terminal's width: the view never wraps. */
static void line(int width, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(int width, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((int)strlen(buf) > width)
		buf[width] = '\0';
	printf("%s\n", buf);
}

/* A SPIFFE ID that does not fit keeps its end, which tells workloads
 * apart: "...acme.example/notebook/alice". */
static const char *tail(const char *s, size_t w)
{
	static char buf[2][SLUICE_NAME_LEN];
	static int which;
	size_t n = strlen(s);

	if (n <= w || w < 4)
		return s;
	which ^= 1;
	snprintf(buf[which], sizeof(buf[which]), "...%s", s + n - (w - 3));
	return buf[which];
}

static void flow_table(int width, const char *title, struct top_flow *flows, size_t n,
		       int (*cmp)(const void *, const void *), __u64 now, double secs)
{
	char wl[SLUICE_NAME_LEN], svc[SLUICE_NAME_LEN], dst[64], age[32], rate[32];

	qsort(flows, n, sizeof(*flows), cmp);
	line(width, "%s", title);
	line(width, "  %-34s %-12s %-21s %8s %10s %7s", "WORKLOAD", "SERVICE", "DESTINATION",
	     "AGE", "BYTES/S", "SRTT");
	for (size_t i = 0; i < n && i < ROWS_PER_TABLE; i++) {
		const struct sluice_flow *f = &flows[i].f;

		ctl_name(SLUICE_NAME_IDENTITY, f->dst.identity, wl, sizeof(wl));
		ctl_name(SLUICE_NAME_SERVICE, f->dst.service, svc, sizeof(svc));
		fmt_endpoint(f->dst.family, f->dst.addr, f->dst.port, dst, sizeof(dst));
		fmt_duration(age_ns(now, f->start_ns), age, sizeof(age));
		snprintf(rate, sizeof(rate), "%.0f", flows[i].rate / secs);
		line(width, "  %-34s %-12s %-21.21s %8s %10s %5uus", tail(wl, 34), tail(svc, 12),
		     dst, age, rate, f->srtt_us);
	}
	if (!n)
		line(width, "  (no live flows)");
}

struct newest {
	struct sluice_violation_key key;
	__u64 count, last_ns;
};

static int by_newest(const void *a, const void *b)
{
	return cmp_u64(((const struct newest *)b)->last_ns, ((const struct newest *)a)->last_ns);
}

static void violation_table(int width, __u64 now)
{
	char wl[SLUICE_NAME_LEN], svc[SLUICE_NAME_LEN], age[32];
	struct map_snap snap;
	struct newest *v;

	line(width, "NEWEST VIOLATIONS");
	line(width, "  %-34s %-12s %-14s %8s %10s", "WORKLOAD", "SERVICE", "REASON", "COUNT",
	     "AGE");
	if (map_snapshot("violations", &snap))
		return;
	v = calloc(snap.nr ? snap.nr : 1, sizeof(*v));
	for (size_t i = 0; v && i < snap.nr; i++) {
		v[i].key = *(const struct sluice_violation_key *)snap_key(&snap, i);
		for (int cpu = 0; cpu < snap.nr_cpus; cpu++) {
			const struct sluice_counter *c = snap_value(&snap, i, cpu);

			v[i].count += c->count;
			if (c->last_ns > v[i].last_ns)
				v[i].last_ns = c->last_ns;
		}
	}
	if (v)
		qsort(v, snap.nr, sizeof(*v), by_newest);
	for (size_t i = 0; v && i < snap.nr && i < ROWS_PER_TABLE; i++) {
		ctl_name(SLUICE_NAME_IDENTITY, v[i].key.identity, wl, sizeof(wl));
		ctl_name(SLUICE_NAME_SERVICE, v[i].key.service, svc, sizeof(svc));
		fmt_duration(age_ns(now, v[i].last_ns), age, sizeof(age));
		line(width, "  %-34s %-12s %-14s %8llu %10s", tail(wl, 34), tail(svc, 12),
		     policy_reason_name(v[i].key.reason), (unsigned long long)v[i].count, age);
	}
	if (!snap.nr)
		line(width, "  (none)");
	free(v);
	map_snap_free(&snap);
}

static void frame(int width, struct sample *now, const struct sample *prev)
{
	struct sluice_config cfg = {};
	double secs = prev ? (now->at_ns - prev->at_ns) / 1e9 : 1;
	bool up;

	sluice_cfg_read(&cfg);
	up = cfg.heartbeat_ns && age_ns(now->at_ns, cfg.heartbeat_ns) <= cfg.heartbeat_timeout_ns;
	line(width, "sluicectl top - pins %s - agent %s (pid %u) - generation %u", pin_path,
	     up ? "up" : "DOWN", cfg.agent_pid, cfg.slot_generation[cfg.active_slot & 1]);
	line(width, "flows live %zu   conn/s %.1f   violations/s %.1f   (q quits)",
	     now->nr_flows, prev ? (now->opened - prev->opened) / secs : 0.0,
	     prev ? (now->violations - prev->violations) / secs : 0.0);
	line(width, "%s", "");
	rates(now, prev);
	flow_table(width, "BUSIEST FLOWS", now->flows, now->nr_flows, by_rate, now->at_ns, secs);
	line(width, "%s", "");
	flow_table(width, "SLOWEST FLOWS", now->flows, now->nr_flows, by_rtt, now->at_ns, secs);
	line(width, "%s", "");
	violation_table(width, now->at_ns);
}

static int terminal_width(void)
{
	struct winsize ws;

	return !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col >= 20 ? ws.ws_col : 80;
}

/* Waits up to ms for a key; true when it was q. */
static bool quit_key(int ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;

	while (poll(&p, 1, ms) > 0) {
		if (read(STDIN_FILENO, &c, 1) != 1)
			return false;
		if (c == 'q' || c == 'Q')
			return true;
		ms = 0;
	}
	return false;
}

static int top_run(double interval, long count, bool batch)
{
	struct sample prev = {}, now;
	bool have_prev = false;
	int ret;

	ret = ctl_names_open();
	if (ret)
		return ret;
	if (!batch) {
		ret = term_setup();
		if (ret)
			return errmsg_set(&ctl_err, ret, "cannot set up the terminal: %s",
					  strerror(-ret));
	}
	for (long i = 0; !count || i < count; i++) {
		ret = take_sample(&now);
		if (ret)
			break;
		if (!batch)
			fputs("\033[H\033[2J", stdout);
		else if (i)
			putchar('\n');
		frame(batch ? 100 : terminal_width(), &now, have_prev ? &prev : NULL);
		fflush(stdout);
		free(prev.flows);
		prev = now;
		have_prev = true;
		if (count && i + 1 == count)
			break;
		if (batch)
			usleep(interval * 1e6);
		else if (quit_key(interval * 1000))
			break;
	}
	free(prev.flows);
	term_restore();
	return ret;
}

static int top_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s top [-d SECONDS] [-n COUNT] [--once]\n"
		"       %1$s top help\n"
		"\n"
		"A live view of the pinned maps, refreshed every SECONDS (default 1): the\n"
		"agent's state and policy generation, live flows, connections opened and\n"
		"violations per second, the busiest flows (bytes both ways per second), the\n"
		"slowest (upstream smoothed RTT) and the newest violations. q quits; the\n"
		"terminal is restored on exit and on SIGINT, SIGTERM and SIGHUP. No colour.\n"
		"-n stops after COUNT frames. When stdout is not a terminal, or with --once\n"
		"(one frame), frames are printed one after another, 100 columns wide.\n",
		bin_name);
}

int do_top(int argc, char **argv)
{
	bool batch = !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO);
	double interval = 1;
	long count = 0;
	char *end;

	if (argc && !strcmp(*argv, "help"))
		return top_help(argc, argv);
	if (json_output)
		return errmsg_set(&ctl_err, -EINVAL, "top has no JSON output: use flow list and "
				  "violation list with -j");
	while (argc) {
		if (!strcmp(*argv, "--once")) {
			batch = true;
			count = 1;
			NEXT_ARG();
			continue;
		}
		if (strcmp(*argv, "-d") && strcmp(*argv, "-n"))
			return BAD_ARG();
		NEXT_ARG();
		if (REQ_ARGS(1))
			return -EINVAL;
		if (!strcmp(argv[-1], "-d")) {
			interval = strtod(*argv, &end);
			if (end == *argv || *end || !(interval >= 0.1 && interval <= 3600))
				return errmsg_set(&ctl_err, -EINVAL,
						  "-d takes seconds between 0.1 and 3600, not '%s'",
						  *argv);
		} else {
			count = strtol(*argv, &end, 10);
			if (end == *argv || *end || count < 1)
				return errmsg_set(&ctl_err, -EINVAL,
						  "-n takes a number of frames (1 or more), not '%s'",
						  *argv);
		}
		NEXT_ARG();
	}
	return top_run(interval, count, batch);
}
