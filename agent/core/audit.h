/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The audit log (docs/audit.md): one JSON object per line and per decision,
 * appended to a file. A deny is written when it is decided; an allow when
 * the flow closes, with its bytes and duration. Each line goes out in one
 * write() on an O_APPEND file, so lines from several writers never mix.
 *
 * There is deliberately no member that could hold a token, a secret or a
 * key: a record names a token by its jti and kid only.
 *
 * A line is never lost for what a member holds: bytes that are not UTF-8
 * become U+FFFD, and a member longer than AUDIT_STR_MAX bytes is cut
 * between two characters and ends in "..." (utf8.h). A line that cannot be
 * written (a full disk, no memory) is counted.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "errmsg.h"

/* The "schema" member of every line: docs/audit.md says what each means. */
#define AUDIT_SCHEMA 3
/* The longest a string member is written, with its NUL. */
#define AUDIT_STR_MAX 1024

struct audit;

/* Lines written and lost (not written, or written in part) since
 * audit_open. */
struct audit_health {
	uint64_t written;
	uint64_t lost;
	int last_err;			/* why the last one was lost; 0: none was */
};

/* Whether the flow's TLS session was resumed; unknown before a handshake. */
enum audit_resumed {
	AUDIT_RESUMED_UNKNOWN,		/* omitted */
	AUDIT_RESUMED_NO,
	AUDIT_RESUMED_YES,
};

struct audit_rec {
	int64_t time_ns;		/* wall clock: "time", RFC 3339, microseconds, UTC */
	const char *direction;		/* "outbound" | "inbound" | "edge" | "request" */
	const char *src_node;		/* NULL: omitted (so for every optional one) */
	const char *src_workload;
	const char *peer;		/* inbound: the peer agent's address */
	const char *dst;		/* "10.99.0.2:5432", "[fd99::2]:80", "-" */
	const char *dst_workload;	/* a refused connection into a mesh-only
					 * workload: the workload */
	const char *service;
	const char *verdict;		/* "allow" | "deny" */
	const char *reason;		/* a stable code: "ok", "policy-deny", ... */
	const char *detail;		/* what the reason does not say, in words */
	const char *rule;
	uint64_t generation;		/* the policy generation that decided */
	const char *jti, *kid;
	const char *trace_id;		/* W3C trace id, 32 hex */
	/* The span this decision is in the trace (16 hex), and the span it
	 * continues: the outbound agent's, for an inbound flow; the caller's
	 * traceparent, for an edge request. */
	const char *span_id;
	const char *parent_span_id;
	/* Edge lines: the verified caller (the token's sub), the client's
	 * address as nginx saw it, and the request as decided (path
	 * normalised). */
	const char *caller;
	const char *client;
	const char *host, *method, *path;
	/* Request lines: the IdP token's jti the caller assertion names,
	 * and the response's status (0: none came; omitted), with the
	 * request's duration_ns beside it. */
	const char *orig_jti;
	int http_status;
	/* Refusals made in BPF: the calling process (pid 0: omitted, as for
	 * inbound refusals, which no process of the mesh made), the protocol,
	 * the hook that decided ("connect", "sendmsg", "inbound"), and how
	 * many identical refusals the line stands for (0 and 1: omitted). */
	uint32_t pid;
	const char *comm;
	const char *proto;
	const char *hook;
	uint64_t count;
	/* Control lines (direction "control"): the request ("policy.apply"),
	 * who sent it (uid and gid beside pid) and the policy's SHA-256. */
	const char *op;
	bool has_cred;
	uint32_t uid, gid;
	const char *sha256;
	enum audit_resumed resumed;
	bool closed;			/* a close record: the members below are set */
	uint64_t bytes_up, bytes_down, duration_ns;
	/* The agent's upstream connection as sockops saw it: SYN to
	 * established, and its smoothed RTT (0: unknown, omitted). */
	uint32_t connect_us, srtt_us;
	const char *status;		/* "ok", an errno name ("ECONNRESET"), or why an
					 * allowed flow never got to move bytes */
};

/* Opens (creating, mode 0640, and its directory, 0750) path for appending. */
int audit_open(const char *path, struct audit **out, struct errmsg *err);
/* Appends one line; -errno, and the line counted as lost, when it could
 * not be written whole. That lines are lost, and later that they are
 * written again, is logged at most once every 10 s. */
int audit_write(struct audit *a, const struct audit_rec *r);
/* Called with every record audit_write() is given, written or lost: the
 * trace exporter makes its spans from them. */
typedef void (*audit_hook_fn)(void *ctx, const struct audit_rec *r);
/* The hook alone, no line: a span for what is not audited line by line
 * (an allowed request, without audit.http_allows). */
void audit_span(struct audit *a, const struct audit_rec *r);
void audit_set_hook(struct audit *a, audit_hook_fn fn, void *ctx);
void audit_get_health(const struct audit *a, struct audit_health *out);
/* Opens the path again, for a log rotated away underneath. */
int audit_reopen(struct audit *a, struct errmsg *err);
void audit_close(struct audit *a);

#endif
