/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What config.c (the top-level keys) and config_keys.c (the per-section
 * readers) share and nothing outside them sees. Each returns 0 or a
 * negative errno with the message in err, as the yamlx readers do.
 */
#ifndef SLUICE_CONFIG_INT_H
#define SLUICE_CONFIG_INT_H

#include <stdbool.h>

#include "config.h"
#include "errmsg.h"
#include "yamlx.h"

/* config.c */
int parse_abs_path(const struct yamlx *y, const struct yamlx_val *v, char **out,
		   struct errmsg *err);
int parse_cgroup_path(const struct yamlx *y, const struct yamlx_val *v, bool abs_ok, char **out,
		      struct errmsg *err);

/* config_keys.c */
/* listen: (after identity:, which listen.http needs). */
int parse_listen(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		 struct errmsg *err);
int parse_node_name(const struct yamlx *y, const struct yamlx_val *v, char **out,
		    struct errmsg *err);
int resolve_path(const struct yamlx *y, const struct yamlx_val *v, const struct config *cfg,
		 char **out, struct errmsg *err);
/* yamlx_array() callbacks: elem is a workload_cfg or peer_cfg, ctx the config. */
int parse_workload(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
		   struct errmsg *err);
int parse_peer(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
	       struct errmsg *err);
int parse_identity(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		   struct errmsg *err);
/* A workload ID pattern (config_peer_vouches()); whose names the list. */
int parse_id_pattern(const struct yamlx *y, const struct yamlx_val *item,
		     const struct config *cfg, const char *whose, char **out, struct errmsg *err);
/* A group name of this host or a numeric gid, for key. */
int parse_group(const struct yamlx *y, const struct yamlx_val *v, const char *key,
		unsigned int *gid, struct errmsg *err);
/* config_control.c: control: (after run_dir:, its default's base). */
int parse_control(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		  struct errmsg *err);
void control_cfg_free(struct control_cfg *c);
/* config_http.c */
void config_http_defaults(struct http_cfg *h);
int parse_http(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
	       struct errmsg *err);
int parse_audit(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		struct errmsg *err);
void http_cfg_free(struct http_cfg *h);
/* config_otlp.c */
int parse_otlp(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
	       struct errmsg *err);
void otlp_cfg_free(struct otlp_cfg *o);
/* edge: (after identity:, which it needs). */
int parse_edge(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
	       struct errmsg *err);

#endif
