/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP servers on node B, run as threads of the runner: each joins node B's
 * network namespace (setns is per thread), listens on 10.<x>.0.2 and
 * fd<x>::2, and serves every connection in a thread of its own, recording
 * what it saw so a test can compare it with what the client sent.
 */
#ifndef SLUICE_INTEG_SERVERS_H
#define SLUICE_INTEG_SERVERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "payload.h"

struct sl_env;
struct server;

enum server_kind {
	SRV_ECHO,	/* writes back what it reads; closes after EOF */
	SRV_SINK,	/* reads until EOF, checking the pattern; closes */
	SRV_SOURCE,	/* reads "<n>\n", sends n pattern bytes, closes */
	SRV_HALF_CLOSE, /* reads until EOF, then replies (HALF_CLOSE_REPLY) */
	SRV_RESET,	/* echoes RESET_AFTER bytes, then resets the connection */
	SRV_GARBAGE,	/* sends GARBAGE_REPLY at once, then reads until EOF */
};

/* Neither TLS nor HTTP: what a broken server in front of an IdP might
 * send. */
#define GARBAGE_REPLY "\x15\x03\x01garbage, not a TLS record\r\n\r\n{\"access_token\": 42"


/* What the reset server echoes before its RST: a destination that dies
 * mid-stream. */
#define RESET_AFTER (64 * 1024)

/* The half-close server's reply, sent only after the client's EOF. */
#define HALF_CLOSE_REPLY "received %llu bytes crc %08x\n"

struct conn_record {
	struct sockaddr_storage peer;
	struct payload_stream in;  /* read from the client, checked */
	struct payload_stream out; /* sent by the source */
	bool eof;		   /* the client's FIN arrived */
	int err;		   /* errno that ended it; 0 when clean */
	bool done;
};

/* Listens on node B's addresses (v6 too when the kernel has it). */
struct server *server_start(struct sl_env *env, enum server_kind kind, uint16_t port);
/* Listens on one address inside namespace ns. */
struct server *server_start_at(struct sl_env *env, const char *ns, const char *addr,
			       enum server_kind kind, uint16_t port);
void server_stop(struct server *s);

/* Connections accepted so far. */
int server_nr_conns(struct server *s);
/* Waits until nr connections have ended; -ETIMEDOUT otherwise. */
int server_wait_done(struct server *s, int nr, int timeout_ms);
/* Copies the record of the i-th accepted connection. */
int server_get(struct server *s, int i, struct conn_record *out);

#endif
