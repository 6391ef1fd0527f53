// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config's otlp: section. Defaults follow OpenTelemetry's batch span
 * processor (queue 2048, batch 512) except the interval: 1 s rather than
 * 5 s, so that a refused flow is in the collector while someone is still
 * looking at it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "yamlx.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_QUEUE 2048
#define DEFAULT_BATCH 512
#define DEFAULT_INTERVAL_MS 1000
#define MAX_QUEUE (1u << 20)

static int parse_endpoint(const struct yamlx *y, const struct yamlx_val *v, struct otlp_cfg *o,
			  struct errmsg *err)
{
	size_t len;
	int ret;

	ret = yamlx_strdup(y, v, &o->endpoint, err);
	if (ret)
		return ret;
	if (strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8))
		return yamlx_error(y, v->node, err,
				   "bad otlp.endpoint \"%s\": expected an http:// or https:// URL "
				   "such as http://127.0.0.1:4318",
				   o->endpoint);
	if (strpbrk(o->endpoint, "?# \t"))
		return yamlx_error(y, v->node, err,
				   "bad otlp.endpoint \"%s\": no query, fragment or space; the "
				   "agent appends /v1/traces",
				   o->endpoint);
	len = strlen(o->endpoint);
	while (len && o->endpoint[len - 1] == '/')
		o->endpoint[--len] = '\0';
	if (asprintf(&o->traces_url, "%s/v1/traces", o->endpoint) < 0) {
		o->traces_url = NULL;
		return yamlx_nomem(y, err);
	}
	return 0;
}

static int parse_ms(const struct yamlx *y, const struct yamlx_val *v, const char *name,
		    unsigned int min, unsigned int max, unsigned int *out, struct errmsg *err)
{
	int ret;

	if (!v->node)
		return 0;
	ret = parse_duration(y, v, out, err);
	if (ret)
		return ret;
	if (*out < min || *out > max)
		return yamlx_error(y, v->node, err, "otlp.%s must be %ums to %us", name, min,
				   max / 1000);
	return 0;
}

int parse_otlp(struct yamlx *y, const struct yamlx_val *v, struct config *cfg, struct errmsg *err)
{
	enum { O_ENDPOINT, O_CA_FILE, O_TIMEOUT, O_QUEUE, O_BATCH, O_INTERVAL, NR_O };
	struct yamlx_field f[NR_O] = {
		[O_ENDPOINT] = { .key = "endpoint", .required = true },
		[O_CA_FILE] = { .key = "ca_file" },
		[O_TIMEOUT] = { .key = "timeout" },
		[O_QUEUE] = { .key = "queue" },
		[O_BATCH] = { .key = "batch" },
		[O_INTERVAL] = { .key = "interval" },
	};
	struct otlp_cfg *o = &cfg->otlp;
	int ret;

	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->queue = DEFAULT_QUEUE;
	o->batch = DEFAULT_BATCH;
	o->interval_ms = DEFAULT_INTERVAL_MS;
	ret = yamlx_fields(y, v, f, NR_O, err);
	if (!ret)
		ret = parse_endpoint(y, &f[O_ENDPOINT].v, o, err);
	if (!ret && f[O_CA_FILE].v.node)
		ret = resolve_path(y, &f[O_CA_FILE].v, cfg, &o->ca_file, err);
	if (!ret)
		ret = parse_ms(y, &f[O_TIMEOUT].v, "timeout", 100, 300000, &o->timeout_ms, err);
	if (!ret)
		ret = parse_ms(y, &f[O_INTERVAL].v, "interval", 100, 60000, &o->interval_ms, err);
	if (!ret && f[O_QUEUE].v.node)
		ret = yamlx_uint(y, &f[O_QUEUE].v, 16, MAX_QUEUE, &o->queue, err);
	if (!ret && f[O_BATCH].v.node)
		ret = yamlx_uint(y, &f[O_BATCH].v, 1, MAX_QUEUE, &o->batch, err);
	if (ret)
		return ret;
	if (o->batch > o->queue)
		return yamlx_error(y, f[O_BATCH].v.node ? f[O_BATCH].v.node : f[O_QUEUE].v.node,
				   err, "otlp.batch (%u) is larger than otlp.queue (%u)", o->batch,
				   o->queue);
	return 0;
}

void otlp_cfg_free(struct otlp_cfg *o)
{
	free(o->endpoint);
	free(o->traces_url);
	free(o->ca_file);
}
