// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The receiving agent's view of the requests on an allowed flow to a
 * protocol: http service: the edge (or anyone) may send requests with a
 * caller assertion, and the destination's audit names the caller it
 * vouches for beside the workload that sent it. Looking only: the bytes
 * flow whatever is heard (deciding per request is the HTTP-aware services'
 * issue), and a request without an assertion writes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "assertion.h"
#include "log.h"
#include "tunnel_int.h"

#define ASSERTION_HEADER "X-Sluice-Assertion"
#define SERVICE_ID_MAX (FRAME_ID_MAX + 64)

static void request_line(struct tflow *f, const struct http_head *h, const char *path,
			 const char *reason, const struct jwt_result *res)
{
	bool ok = !strcmp(reason, "ok");
	const char *orig = ok ? json_string_value(json_object_get(res->claims, "orig_jti")) : NULL;
	struct timespec ts;
	struct audit_rec r = {
		.direction = "request",
		.src_node = f->src_node,
		.src_workload = f->src_workload,
		.peer = f->peer_addr,
		.dst = f->dst,
		.service = f->service,
		.verdict = "allow",
		.reason = reason,
		.detail = ok || !res->err.msg[0] ? NULL : res->err.msg,
		.rule = f->rule[0] ? f->rule : NULL,
		.generation = f->generation,
		.jti = ok ? res->jti : NULL,
		.kid = res->kid,
		.trace_id = f->trace_id[0] ? f->trace_id : NULL,
		.caller = ok ? res->sub : NULL,
		.host = h->host,
		.method = h->method,
		.path = path,
		.orig_jti = orig,
	};

	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_write(f->t->audit, &r);
}

/* A reason code of the audit's: "assertion-" and what jwt_verify said. */
static void reason_of(enum jwt_reason why, char *buf, size_t len)
{
	if (why == JWT_OK)
		snprintf(buf, len, "ok");
	else
		snprintf(buf, len, "assertion-%s", jwt_reason_name(why));
}

static void request_heard(void *ctx, const struct http_head *h)
{
	struct tflow *f = ctx;
	struct tunnel *t = f->t;
	char aud[SERVICE_ID_MAX], path[HTTP_WATCH_TARGET_MAX + 1], reason[64];
	struct jwt_result res = {};

	if (!h->value || !t->audit)
		return;
	snprintf(path, sizeof(path), "%s", h->target);
	path[strcspn(path, "?")] = '\0';
	if (h->repeated) {
		request_line(f, h, path, "assertion-repeated", &res);
		return;
	}
	snprintf(aud, sizeof(aud), "spiffe://%s/service/%s", t->cfg->trust_domain, f->service);
	reason_of(assertion_verify(h->value, t->creds->store, t->cfg->trust_domain, aud, 0,
				   t->cfg->identity.clock_skew_s, &res),
		  reason, sizeof(reason));
	request_line(f, h, path, reason, &res);
	jwt_result_free(&res);
}

int requests_watch(struct tflow *f)
{
	f->watch = http_watch_new(ASSERTION_HEADER, request_heard, f);
	return f->watch ? 0 : -ENOMEM;
}

void requests_feed(struct tflow *f, const char *buf, size_t len)
{
	if (!f->watch || !http_watch_feed(f->watch, buf, len))
		return;
	pr_info("tunnel from %s: flow of %s to %s: requests no longer watched after %lu: %s",
		f->src_node, f->src_workload, f->service, http_watch_requests(f->watch),
		http_watch_error(f->watch));
	http_watch_free(f->watch);
	f->watch = NULL;
}
