/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control socket's protocol (docs/control.md), version 1: one JSON
 * object per line each way, UTF-8, the line ending in "\n". A client sends
 * a request and reads its response before it sends the next.
 *
 *   -> {"v": 1, "cmd": "policy.apply", "args": {"name": "/etc/sluice/p.yaml",
 *       "content": "version: 1\n...", "dry_run": true}}
 *   <- {"v": 1, "ok": true, "result": {...}}
 *   <- {"v": 1, "ok": false, "error": "p.yaml:14: unknown service \"x\"",
 *       "errno": "EINVAL"}
 *
 * Commands, and who may send them (control.read_group / admin_group):
 *
 *   status            read    the live generation, its hash, the agent
 *   policy.get        read    the live policy's name, hash and content
 *   policy.history    read    the generations kept, newest first
 *   policy.apply      change  args: name (what errors call it), content
 *                             (the file, at most 1 MiB), dry_run (bool)
 *   policy.rollback   change  the previous generation, live again
 *
 * A request line is at most CTLPROTO_MAX_REQUEST bytes; a longer one, one
 * that is not a JSON object, names another version or an unknown command,
 * or has an unknown or mistyped member, is answered with an error and the
 * connection is closed.
 */
#ifndef SLUICE_CTLPROTO_H
#define SLUICE_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "errmsg.h"

#define CTLPROTO_VERSION 1
/* A 1 MiB policy with JSON's escapes, and room for the envelope. */
#define CTLPROTO_MAX_REQUEST (4 << 20)
#define CTLPROTO_MAX_CONTENT (1 << 20)
/* What a client takes in one response: history and status are small,
 * policy.get is one policy. */
#define CTLPROTO_MAX_RESPONSE (8 << 20)

enum ctl_cmd {
	CTL_STATUS,
	CTL_POLICY_GET,
	CTL_POLICY_HISTORY,
	CTL_POLICY_APPLY,
	CTL_POLICY_ROLLBACK,
	NR_CTL_CMDS,
};

struct ctl_request {
	enum ctl_cmd cmd;
	/* policy.apply; pointers into the parsed document. */
	const char *name;
	const char *content;
	size_t content_len;
	bool dry_run;
	json_t *doc;			/* owns the strings above */
};

/* "policy.apply", ... */
const char *ctlproto_cmd_name(enum ctl_cmd cmd);
/* Whether cmd changes anything (needs the admin right). */
bool ctlproto_cmd_changes(enum ctl_cmd cmd);

/*
 * Parses one request line (without its "\n"). On success req->doc holds a
 * reference (ctlproto_request_free()). Errors say what was wrong: "not
 * JSON: ... at column 7", "protocol version 2 is not spoken here (1)",
 * "unknown command \"x\"", "args.content: missing", ...; -EINVAL, -EFBIG,
 * -EPROTO for another version.
 */
int ctlproto_parse_request(const char *line, size_t len, struct ctl_request *req,
			   struct errmsg *err);
void ctlproto_request_free(struct ctl_request *req);

/* Builds a request line, "\n" included (malloc'd), taking args (may be
 * NULL). NULL when out of memory. */
char *ctlproto_request(enum ctl_cmd cmd, json_t *args, size_t *len);

/* Response lines, "\n" included (malloc'd): ok takes result (may be
 * NULL: {}); error names errno's symbolic name. NULL when out of memory. */
char *ctlproto_ok(json_t *result, size_t *len);
char *ctlproto_error(int err, const char *msg, size_t *len);

/*
 * Parses a response line: 0 with *result (a new reference) for "ok", or
 * the error it carries as a negative errno with its message in err.
 * -EPROTO for a line that is not a response of this version.
 */
int ctlproto_parse_response(const char *line, size_t len, json_t **result, struct errmsg *err);

#endif
