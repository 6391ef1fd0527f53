/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload processes: a forked child moves itself into a cgroup under the
 * test's root (so the BPF programs see it as that workload), joins node A,
 * does its socket work and reports what it saw through a pipe.
 */
#ifndef SLUICE_INTEG_CLIENT_H
#define SLUICE_INTEG_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "payload.h"

struct sl_env;

/* How long a test waits for a client's report or a server's end (flow_churn's
 * 2,000 connections take 37 s under qemu without KVM on a quiet host); the
 * client itself gives up a little later. */
#define CLIENT_MS 120000

enum client_op {
	CL_CONNECT,    /* connect, then close */
	CL_ECHO,       /* send bytes, read them back, half-close, read EOF */
	CL_UPLOAD,     /* send bytes, shutdown(SHUT_WR), read to EOF */
	CL_DOWNLOAD,   /* ask a source for bytes, read to EOF */
	CL_HALF_CLOSE, /* send bytes, shutdown(SHUT_WR), read the reply to EOF */
	CL_CHURN,      /* count times: connect, echo 16 bytes, close */
	CL_SENDTO,     /* one UDP datagram with sendto(), no connect() */
	CL_LISTEN,     /* bind and listen on addr:port (in node A), report, hold
			* until released: a workload's own listener */
	CL_RETRY,      /* count times connect() as fast as it can, whatever it
			* returns, as a retry loop does; completed: the EPERMs */
	CL_VERDICTS,   /* count times: connect and echo 16 bytes (completed),
			* or EPERM (denied); anything else is broken */
};

struct client_req {
	enum client_op op;
	const char *cgroup; /* name under the test's cgroup root */
	int family;	    /* AF_INET or AF_INET6: node B's address */
	const char *addr;   /* instead of node B's address */
	uint16_t port;
	uint64_t bytes;
	int count; /* CL_CHURN */
	/* Report once the socket work (minus the close) is done, then wait
	 * for client_release() before closing and reporting again. */
	bool hold;
};

struct client_res {
	int err;		       /* errno of the first call that failed; 0: none */
	char call[16];		       /* which call that was */
	uint64_t cookie;	       /* SO_COOKIE: the key of the flows map */
	struct sockaddr_storage local; /* getsockname() after connect */
	struct sockaddr_storage peer;  /* getpeername() after connect */
	struct payload_stream sent;
	struct payload_stream recvd;
	bool eof;	/* read() returned 0 */
	char reply[96]; /* CL_HALF_CLOSE */
	int completed;	/* CL_CHURN: connections that worked */
	int denied;	/* CL_VERDICTS: connects refused with EPERM */
	int broken;	/* CL_VERDICTS: neither */
};

struct client {
	pid_t pid;
	int res_fd;
	int ctl_fd;
};

int client_start(struct sl_env *env, const struct client_req *req, struct client *c);
/* Reads the next report; -ETIMEDOUT, or -EPIPE when the child died. */
int client_result(struct client *c, struct client_res *res, int timeout_ms);
/* Lets a held client close its socket. */
void client_release(struct client *c);
/* Waits for the child; returns its exit status or a negative errno. */
int client_finish(struct sl_env *env, struct client *c);
/* start + one report + finish. */
int client_run(struct sl_env *env, const struct client_req *req, struct client_res *res);

/* "10.1.0.2:7000" / "[fd1::2]:7000" for messages and comparisons. */
void sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
