// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "load.h"
#include "util.h"
#include "workload_proc.h"

/* Fds an agent holds beyond two a flow that this does not count on: the
 * accept of a flow whose upstream is not open yet, log reopen, timers. */
#define AGENT_FD_SLACK 64
#define ARGV_MAX 16
#define REPORT_LINE 512

struct exec_arg {
	char *argv[ARGV_MAX];
};

int load_env_int(const char *name, int def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	return *end || v < 0 || v > 1000000 ? def : (int)v;
}

int load_nofile_max(struct rlimit *old)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (old)
		*old = rl;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

int load_conns_fit(pid_t agent, int want)
{
	struct rlimit rl;
	int held = fds_of(agent), fit;

	if (held < 0 || getrlimit(RLIMIT_NOFILE, &rl))
		return want;
	fit = ((long long)rl.rlim_max - held - AGENT_FD_SLACK) / 2;
	return fit < want ? fit : want;
}

long rss_kib(pid_t pid)
{
	char path[64], buf[4096], *line;
	long kib;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -ENOENT;
	line = strstr(buf, "VmRSS:");
	return line && sscanf(line, "VmRSS: %ld", &kib) == 1 ? kib : -EINVAL;
}

/* Child: the socketpair becomes stdin and stdout, and the program runs. */
static void exec_main(const struct sl_env *env, const void *arg, int fd)
{
	const struct exec_arg *ea = arg;

	if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
		_exit(126);
	execv(ea->argv[0], ea->argv);
	dprintf(STDERR_FILENO, "exec %s: %s\n", ea->argv[0], strerror(errno));
	_exit(127);
}

/* Reads one line from fd within timeout_ms, a byte at a time: the child
 * writes little, and nothing after the line may be consumed. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t n = 0;

	while (n < len - 1) {
		int left = end - now_ms(), ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			continue;
		ret = read(fd, buf + n, 1);
		if (ret <= 0)
			return ret ? -errno : -EPIPE;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

int echod_start(struct sl_env *env, const char *ns, const char *addr, uint16_t port, int max,
		struct load_proc *p)
{
	char bin[PATH_MAX], listen[80], count[16], line[REPORT_LINE];
	struct exec_arg ea = {{bin, "-c", count, listen, NULL}};
	int ret;

	snprintf(bin, sizeof(bin), "%s/tests/echod", test__build_dir());
	snprintf(listen, sizeof(listen), "%s:%u", addr, port);
	snprintf(count, sizeof(count), "%d", max);
	ret = spawn_in(env, ns, "unmanaged", exec_main, &ea, &p->pid, &p->fd);
	if (ret)
		return ret;
	ret = read_line(p->fd, line, sizeof(line), ANSWER_MS);
	if (!ret && strcmp(line, "listening"))
		ret = -EPROTO;
	return ret;
}

int loadgen_start(struct sl_env *env, const struct loadgen_args *a, struct load_proc *p)
{
	char bin[PATH_MAX], opt[5][16];
	struct exec_arg ea = {{bin}};
	int n = 1;

	snprintf(bin, sizeof(bin), "%s/tests/loadgen", test__build_dir());
	snprintf(opt[0], sizeof(opt[0]), "%d", a->conns);
	snprintf(opt[1], sizeof(opt[1]), "%d", a->seconds);
	snprintf(opt[2], sizeof(opt[2]), "%d", a->msg_bytes);
	snprintf(opt[3], sizeof(opt[3]), "%d", a->interval_ms);
	snprintf(opt[4], sizeof(opt[4]), "%d", a->window);
	ea.argv[n++] = "-c";
	ea.argv[n++] = opt[0];
	ea.argv[n++] = "-t";
	ea.argv[n++] = opt[1];
	if (a->msg_bytes) {
		ea.argv[n++] = "-s";
		ea.argv[n++] = opt[2];
	}
	if (a->interval_ms) {
		ea.argv[n++] = "-i";
		ea.argv[n++] = opt[3];
	}
	if (a->window) {
		ea.argv[n++] = "-w";
		ea.argv[n++] = opt[4];
	}
	ea.argv[n++] = (char *)a->dst;
	return spawn_in(env, env->ns_a, a->cgroup, exec_main, &ea, &p->pid, &p->fd);
}

int loadgen_established(struct load_proc *p, int timeout_ms)
{
	char line[REPORT_LINE];
	int n, ret;

	ret = read_line(p->fd, line, sizeof(line), timeout_ms);
	if (ret)
		return ret;
	return sscanf(line, "established %d", &n) == 1 ? n : -EPROTO;
}

int loadgen_finish(struct sl_env *env, struct load_proc *p, struct loadgen_res *r, int timeout_ms)
{
	char line[REPORT_LINE] = "";
	int ret;

	ret = read_line(p->fd, line, sizeof(line), timeout_ms);
	if (!ret &&
	    sscanf(line,
		   "opened=%lld established=%lld failed=%lld dropped=%lld corrupted=%lld "
		   "lost=%lld bytes=%lld messages=%lld late=%lld rtt_p50_us=%lld "
		   "rtt_p99_us=%lld rtt_max_us=%lld first_p50_us=%lld first_max_us=%lld "
		   "stalled=%lld",
		   &r->opened, &r->established, &r->failed, &r->dropped, &r->corrupted, &r->lost,
		   &r->bytes, &r->messages, &r->late, &r->rtt_p50_us, &r->rtt_p99_us,
		   &r->rtt_max_us, &r->first_p50_us, &r->first_max_us, &r->stalled) != 15)
		ret = -EPROTO;
	if (ret)
		printf("loadgen: %s: '%s'\n", strerror(-ret), line);
	load_proc_stop(env, p);
	return ret;
}

void load_proc_stop(struct sl_env *env, struct load_proc *p)
{
	if (p->pid <= 0)
		return;
	child_reap(env, p->pid, p->fd);
	p->pid = 0;
}
