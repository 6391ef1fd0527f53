/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The edge's nginx configuration, rendered from a policy's edge: section
 * (policy.h) for one policy generation. Pure: text in memory, no files;
 * sluiced writes, tests and switches it (daemon/edge_nginx.h) and
 * `sluicectl edge render` prints it for review.
 *
 * The text is an http{}-level snippet: the authz upstream (the agent's
 * UNIX socket), one upstream per routed service, the edge server with a
 * location per route, and a default server that answers hosts the edge
 * does not serve. docs/edge-render.md walks through it line by line.
 */
#ifndef SLUICE_EDGE_RENDER_H
#define SLUICE_EDGE_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errmsg.h"
#include "policy.h"

/* The socket a config without an edge: section would get. */
#define EDGE_AUTHZ_SOCKET_NAME "authz.sock"
#define EDGE_DEFAULT_RUN_DIR "/run/sluice"
/* Upstream names are this plus the service name. */
#define EDGE_UPSTREAM_PREFIX "sluice_svc_"

/*
 * Renders pol->edge for generation into *out (malloc'd, NUL-terminated;
 * free() it). The authz socket is cfg->edge.socket, else
 * <cfg->run_dir>/authz.sock, else /run/sluice/authz.sock (cfg may be
 * NULL). Returns 0; -ENOENT when pol has no edge: section; -EINVAL with
 * "policy.yaml:LINE: edge ...: why (what to do)" in err when a value
 * cannot be carried safely into nginx's syntax (a quote, '$', ';', a
 * control byte, a relative TLS path, a route to a service that is not
 * protocol: http or whose first address is a network); -ENOMEM.
 */
int edge_render(const struct policy *pol, const struct config *cfg, uint32_t generation,
		char **out, struct errmsg *err);

#endif
