// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config's http: and audit: sections. The head limits default to what
 * nginx takes by default (large_client_header_buffers 4 8k: a request line
 * of 8k, 32k of headers) and Apache's LimitRequestFields (100 fields).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "yamlx.h"

#define DEFAULT_REQUEST_LINE 8192
#define DEFAULT_HEADER_SIZE 32768
#define DEFAULT_HEADERS 100
/* Under the proxy's buffer per direction, so that a head at its limit
 * always fits what the agent holds while it decides. */
#define MAX_HEAD (64 * 1024)

void config_http_defaults(struct http_cfg *h)
{
	h->max_request_line = DEFAULT_REQUEST_LINE;
	h->max_header_size = DEFAULT_HEADER_SIZE;
	h->max_headers = DEFAULT_HEADERS;
}

static int parse_head_size(const struct yamlx *y, const struct yamlx_val *v, const char *name,
			   unsigned int min, unsigned int *out, struct errmsg *err)
{
	uint64_t n;
	int ret;

	if (!v->node)
		return 0;
	ret = yamlx_size(y, v, &n, err);
	if (ret)
		return ret;
	if (n < min || n > MAX_HEAD)
		return yamlx_error(y, v->node, err, "http.%s must be %u bytes to 64k", name, min);
	*out = n;
	return 0;
}

static int parse_edge_workloads(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
				struct errmsg *err)
{
	struct http_cfg *h = &cfg->http_svc;
	struct yamlx_val item;
	struct yamlx_list l;
	int ret;

	ret = yamlx_list(y, v, true, SLUICE_MAX_WORKLOADS, &l, err);
	if (ret)
		return ret;
	h->edge_workloads = calloc(l.nr, sizeof(*h->edge_workloads));
	if (l.nr && !h->edge_workloads)
		return yamlx_nomem(y, err);
	for (int i = 0; i < l.nr; i++) {
		yamlx_list_get(y, &l, i, &item);
		/* Counted first so that config_free() releases it on error. */
		ret = parse_id_pattern(y, &item, cfg, "http.edge_workloads",
				       &h->edge_workloads[h->nr_edge_workloads++], err);
		if (ret)
			return ret;
	}
	return 0;
}

int parse_http(struct yamlx *y, const struct yamlx_val *v, struct config *cfg, struct errmsg *err)
{
	enum { H_LINE, H_SIZE, H_HEADERS, H_EDGE, NR_H };
	struct yamlx_field f[NR_H] = {
		[H_LINE] = { .key = "max_request_line" },
		[H_SIZE] = { .key = "max_header_size" },
		[H_HEADERS] = { .key = "max_headers" },
		[H_EDGE] = { .key = "edge_workloads" },
	};
	struct http_cfg *h = &cfg->http_svc;
	int ret;

	ret = yamlx_fields(y, v, f, NR_H, err);
	if (!ret)
		ret = parse_head_size(y, &f[H_LINE].v, "max_request_line", 64, &h->max_request_line, err);
	if (!ret)
		ret = parse_head_size(y, &f[H_SIZE].v, "max_header_size", 256, &h->max_header_size, err);
	if (!ret && f[H_HEADERS].v.node)
		ret = yamlx_uint(y, &f[H_HEADERS].v, 1, 10000, &h->max_headers, err);
	if (!ret && f[H_EDGE].v.node)
		ret = parse_edge_workloads(y, &f[H_EDGE].v, cfg, err);
	if (ret)
		return ret;
	if (h->max_request_line > h->max_header_size)
		return yamlx_error(y, f[H_LINE].v.node ? f[H_LINE].v.node : f[H_SIZE].v.node, err,
				   "http.max_request_line (%u) is larger than http.max_header_size "
				   "(%u)",
				   h->max_request_line, h->max_header_size);
	return 0;
}

int parse_audit(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		struct errmsg *err)
{
	struct yamlx_field f[] = { { .key = "http_allows" } };
	int ret;

	ret = yamlx_fields(y, v, f, 1, err);
	if (!ret && f[0].v.node)
		ret = yamlx_bool(y, &f[0].v, &cfg->audit_http_allows, err);
	return ret;
}

void http_cfg_free(struct http_cfg *h)
{
	for (int i = 0; i < h->nr_edge_workloads; i++)
		free(h->edge_workloads[i]);
	free(h->edge_workloads);
}
