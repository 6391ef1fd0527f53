/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Processes that are workloads: a child forked into a cgroup and a node's
 * namespace (a socket belongs to the cgroup of the process that creates
 * it, and a thread cannot leave its process's cgroup), an echo server run
 * that way, and a direct client attempt that reports what it saw,
 * including how often its SYN was retransmitted.
 */
#ifndef SLUICE_INTEG_WORKLOAD_PROC_H
#define SLUICE_INTEG_WORKLOAD_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sl_env;

/* What the echo client sends and expects back. */
#define ECHO_MSG "mesh-only?"
/* For connects that must succeed, and for a child's report. */
#define ANSWER_MS 20000

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

typedef void (*child_fn)(const struct sl_env *env, const void *arg, int fd);

/* Forks a child that joins cgroup (under the test's root) and namespace ns,
 * then runs fn with one end of a socketpair; *fd is the other end. */
int spawn_in(struct sl_env *env, const char *ns, const char *cgroup, child_fn fn, const void *arg,
	     pid_t *pid, int *fd);
/* Closes fd and waits for the child (killing it when it lingers). */
void child_reap(struct sl_env *env, pid_t pid, int fd);
/* A TCP and UDP echo server on port, as a process of cgroup in ns. */
bool server_start_in(struct sl_env *env, const char *ns, const char *cgroup, uint16_t port,
		     struct cg_server *s);
/* Connections the server accepted so far. */
int server_accepted(struct cg_server *s);
/* A direct client as a process of cgroup in ns; attempt_finish reads its
 * report, attempt_run does both. */
bool attempt_start(struct sl_env *env, const char *ns, const char *cgroup,
		   const struct attempt_req *req, struct attempt *a, pid_t *pid, int *fd);
bool attempt_finish(struct sl_env *env, pid_t pid, int fd, struct attempt *a);
bool attempt_run(struct sl_env *env, const char *ns, const char *cgroup,
		 const struct attempt_req *req, struct attempt *a);

#endif
