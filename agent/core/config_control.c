// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The config's control: section: who may use the control socket. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "config_int.h"
#include "yamlx.h"

#define DEFAULT_HISTORY 10
/* Rollback needs the previous generation; past a thousand the index is
 * read and rewritten on every apply for nothing. */
#define MIN_HISTORY 2
#define MAX_HISTORY 1000

int parse_control(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		  struct errmsg *err)
{
	enum { K_SOCKET, K_READ, K_ADMIN, K_HISTORY, NR_K };
	struct yamlx_field f[NR_K] = {
		[K_SOCKET] = { .key = "socket" },
		[K_READ] = { .key = "read_group" },
		[K_ADMIN] = { .key = "admin_group" },
		[K_HISTORY] = { .key = "history" },
	};
	struct control_cfg *c = &cfg->control;
	int ret = 0;

	c->history = DEFAULT_HISTORY;
	if (v->node)
		ret = yamlx_fields(y, v, f, NR_K, err);
	if (ret)
		return ret;
	if (f[K_SOCKET].v.node)
		ret = parse_abs_path(y, &f[K_SOCKET].v, &c->socket, err);
	else if (asprintf(&c->socket, "%s/ctl/control.sock", cfg->run_dir) < 0 &&
		 !(c->socket = NULL))
		ret = yamlx_nomem(y, err);
	if (!ret && f[K_READ].v.node) {
		ret = parse_group(y, &f[K_READ].v, "control.read_group", &c->read_gid, err);
		c->has_read_group = !ret;
	}
	if (!ret && f[K_ADMIN].v.node) {
		ret = parse_group(y, &f[K_ADMIN].v, "control.admin_group", &c->admin_gid, err);
		c->has_admin_group = !ret;
	}
	if (!ret && f[K_HISTORY].v.node)
		ret = yamlx_uint(y, &f[K_HISTORY].v, MIN_HISTORY, MAX_HISTORY, &c->history, err);
	return ret;
}

void control_cfg_free(struct control_cfg *c)
{
	free(c->socket);
}
