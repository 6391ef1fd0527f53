/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control socket: the agent's only management interface (protocol in
 * ctlproto.h, docs/control.md). A UNIX stream socket, mode 0660 in a
 * directory of mode 0750, both of control.read_group; every request is
 * checked against its sender's SO_PEERCRED and SO_PEERGROUPS: root and
 * members of read_group or admin_group may read, root and admin_group
 * members may change. Each request that changes something (or tries to)
 * gets an audit line with the sender's uid, gid and pid.
 *
 * Served in the agent's loop: the caller watches control_fd() and calls
 * control_run() when it is readable and control_tick() once a second. At
 * most CONTROL_MAX_CLIENTS at once; a client has CONTROL_TIMEOUT_S to send
 * a whole request and to take its answer, and one that sends garbage gets
 * an error line and is closed.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "audit.h"
#include "config.h"
#include "ctlproto.h"
#include "errmsg.h"

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_TIMEOUT_S 10

struct control;

struct control_peer {
	uint32_t uid, gid, pid;
	bool reader, admin;
};

/*
 * Answers req for peer (whose right to send it is checked already): 0 and
 * *result (a new reference, may stay NULL for {}), or a negative errno with
 * the message in err. For a change, *result's "generation" and "sha256"
 * members, when present, go into its audit line.
 */
typedef int (*control_handler)(void *ctx, const struct ctl_request *req,
			       const struct control_peer *peer, json_t **result,
			       struct errmsg *err);

struct control_deps {
	control_handler handler;
	void *ctx;
	struct audit *audit;
	const char *node;
};

int control_new(const struct control_cfg *cfg, const struct control_deps *deps,
		struct control **out, struct errmsg *err);
int control_fd(const struct control *c);
void control_run(void *c);
void control_tick(struct control *c);
/* Closes every client and the socket, and removes it. NULL: no-op. */
void control_free(struct control *c);

#endif
