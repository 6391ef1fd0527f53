/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The edge's nginx config on disk, one file per policy generation, and the
 * nginx that reads it. sluiced calls edge_nginx_prepare() before a
 * generation goes live (a refusal rejects the generation) and
 * edge_nginx_switch() once it is live, and again on rollback.
 *
 * In cfg->edge.render_dir (root-owned, writable by nobody else; created
 * 0750 when missing):
 *   edge-<gen>.conf   edge_render()'s text for generation gen, 0640, only
 *                     ever written whole (temporary file, fsync, rename)
 *                     and only after nginx -t accepted it
 *   live.conf         a symlink to one of them, replaced with rename(2):
 *                     what the outer config (cfg->edge.nginx_conf)
 *                     includes, so nginx never reads an untested file
 * The newest EDGE_NGINX_KEEP generations' files stay (rollback targets),
 * older ones are removed when live.conf moves.
 */
#ifndef SLUICE_EDGE_NGINX_H
#define SLUICE_EDGE_NGINX_H

#include <stdint.h>

#include "config.h"
#include "errmsg.h"
#include "policy.h"

#define EDGE_NGINX_LIVE "live.conf"
#define EDGE_NGINX_KEEP 5
/* nginx -t gets this long, or heartbeat_timeout less a second when that
 * is shorter (at least EDGE_NGINX_TEST_MIN_MS): it runs in the event loop,
 * and a fail-open node must not see a stale heartbeat during a reload. */
#define EDGE_NGINX_TEST_TIMEOUT_MS 5000
#define EDGE_NGINX_TEST_MIN_MS 500
/* nginx -t output kept for the error message. */
#define EDGE_NGINX_OUTPUT_MAX 4096

/*
 * Renders pol for generation gen and runs `<cfg->edge.nginx> -t -q -c
 * COPY`, where COPY is the outer config with its include of
 * <render_dir>/live.conf pointed at the candidate. COPY is written next to
 * the outer config (.<name>.sluice-test), so the outer config's relative
 * paths mean what they mean to the running nginx (in render_dir when that
 * directory is read-only), and removed afterwards.
 * On success edge-<gen>.conf is in place; live.conf is never touched.
 * Errors: the render's; -EPERM for an unsafe render_dir; -ENOENT for an
 * outer config that does not include live.conf; -EINVAL when nginx
 * refuses ("edge: nginx -t refused generation 7: nginx: [emerg] ...");
 * -ETIMEDOUT (nginx and its process group killed at the timeout); or the
 * errno of a file operation, with the path.
 */
int edge_nginx_prepare(const struct config *cfg, const struct policy *pol, uint32_t gen,
		       struct errmsg *err);

/*
 * Points live.conf at generation gen's file, removes files older than the
 * newest EDGE_NGINX_KEEP (never live.conf's target), and sends SIGHUP to
 * the nginx in cfg->edge.nginx_pid when set. No pid file, a stale pid or a
 * process that is not nginx is a warning in the log, not an error: an
 * nginx started later reads live.conf. -ENOENT when gen has no file
 * (never rendered, or pruned); live.conf then stays as it was.
 */
int edge_nginx_switch(const struct config *cfg, uint32_t gen, struct errmsg *err);

#endif
