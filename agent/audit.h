/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The audit log (docs/audit.md): one JSON object per line and per decision,
 * appended to a file. A deny is written when it is decided; an allow when
 * the flow closes, with its bytes and duration. Each line goes out in one
 * write() on an O_APPEND file, so lines from several writers never mix.
 *
 * There is deliberately no member that could hold a token, a secret or a
 * key: a record names a token by its jti and kid only.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "errmsg.h"

struct audit;

/* Whether the flow's TLS session was resumed; unknown before a handshake. */
enum audit_resumed {
	AUDIT_RESUMED_UNKNOWN,		/* omitted */
	AUDIT_RESUMED_NO,
	AUDIT_RESUMED_YES,
};

struct audit_rec {
	int64_t time_ns;		/* wall clock: "time", RFC 3339, microseconds, UTC */
	const char *direction;		/* "outbound" | "inbound" */
	const char *src_node;		/* NULL: omitted (so for every optional one) */
	const char *src_workload;
	const char *peer;		/* inbound: the peer agent's address */
	const char *dst;		/* "10.99.0.2:5432", "[fd99::2]:80", "-" */
	const char *service;
	const char *verdict;		/* "allow" | "deny" */
	const char *reason;		/* a stable code: "ok", "policy-deny", ... */
	const char *detail;		/* what the reason does not say, in words */
	const char *rule;
	uint64_t generation;		/* the policy generation that decided */
	const char *jti, *kid;
	const char *trace_id;		/* W3C trace id, 32 hex */
	enum audit_resumed resumed;
	bool closed;			/* a close record: the members below are set */
	uint64_t bytes_up, bytes_down, duration_ns;
	const char *status;		/* "ok" or an errno name: "ECONNRESET" */
};

/* Opens (creating, mode 0640, and its directory, 0750) path for appending. */
int audit_open(const char *path, struct audit **out, struct errmsg *err);
/* Appends one line; -errno when it could not be written whole. */
int audit_write(struct audit *a, const struct audit_rec *r);
/* Opens the path again, for a log rotated away underneath. */
int audit_reopen(struct audit *a, struct errmsg *err);
void audit_close(struct audit *a);

#endif
