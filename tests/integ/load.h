/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load tests' processes (tests/load/): echod, an epoll echo server in
 * node B, and loadgen, run as a workload (a process of a cgroup under the
 * test's root, in node A), each reporting on a socketpair. Both are
 * children of the runner, so env_teardown kills them.
 */
#ifndef SLUICE_INTEG_LOAD_H
#define SLUICE_INTEG_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct sl_env;

/* SLUICE_LOAD_SECONDS: how long the load tests hold their connections;
 * short by default so `make check` stays fast, 60 for the README. */
#define LOAD_SECONDS_DEFAULT 5
/* SLUICE_LOAD_CONNS: how many. */
#define LOAD_CONNS_DEFAULT 10000

struct load_proc {
	pid_t pid;
	int fd;
};

struct loadgen_args {
	const char *cgroup; /* under the test's root, in node A */
	const char *dst;    /* ADDR:PORT */
	int conns, seconds;
	int msg_bytes, interval_ms; /* 0: loadgen's defaults */
	int window;		    /* connections before their first echo; 0: default */
};

/* What loadgen's last line says (tests/load/loadgen.c). */
struct loadgen_res {
	long long opened, established, failed, dropped, corrupted, lost, bytes, messages, late;
	long long rtt_p50_us, rtt_p99_us, rtt_max_us, first_p50_us, first_max_us;
	long long stalled; /* no echo after the first one */
};

int load_env_int(const char *name, int def);
/* The soft fd limit up to the hard one, which the agents and the load
 * processes started after this inherit; old (if not NULL) gets the
 * limit before. */
int load_nofile_max(struct rlimit *old);
/* The hard fd limit's share of connections one agent can proxy: two fds
 * a flow, beside the fds it holds already (pid's, and slack). */
int load_conns_fit(pid_t agent, int want);

/* echod on addr:port in namespace ns, ready when this returns 0. */
int echod_start(struct sl_env *env, const char *ns, const char *addr, uint16_t port, int max,
		struct load_proc *p);
int loadgen_start(struct sl_env *env, const struct loadgen_args *a, struct load_proc *p);
/* Waits for "established N": N, or a negative errno. */
int loadgen_established(struct load_proc *p, int timeout_ms);
/* Waits for the result line and the exit; 0 when the line parsed. */
int loadgen_finish(struct sl_env *env, struct load_proc *p, struct loadgen_res *r, int timeout_ms);
void load_proc_stop(struct sl_env *env, struct load_proc *p);

/* VmRSS of pid in KiB, or a negative errno. */
long rss_kib(pid_t pid);

#endif
