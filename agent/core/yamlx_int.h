/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What yamlx.c (the loader and typed access) and yamlx_bounds.c (the bounds
 * pre-check) share and nothing outside them sees.
 */
#ifndef SLUICE_YAMLX_INT_H
#define SLUICE_YAMLX_INT_H

#include <stddef.h>
#include <yaml.h>

#include "errmsg.h"
#include "yamlx.h"

/* yamlx.c: a libyaml parser's error as `FILE:LINE: YAML syntax error: ...`. */
int syntax_error(const struct yamlx *y, const yaml_parser_t *p, const char *buf, size_t len,
		 struct errmsg *err);

/* yamlx_bounds.c: 0 when buf is within the YAMLX_MAX_* bounds. */
int check_bounds(const struct yamlx *y, const char *buf, size_t len, struct errmsg *err);

#endif
