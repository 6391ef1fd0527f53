// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy file: policy_load() on a file holding the input, then what the
 * agent does with a policy it accepted: compile it for a fixed set of
 * workloads, decide a few connections and HTTP requests, route a few
 * paths at the edge and map IdP claims to roles. What policy_load() stores
 * is checked against what l7.h promises of it: a path pattern and a host
 * pattern match themselves, and an edge prefix comes back unchanged from
 * l7_path_normalize() and routes to its own route. (A pattern need not be
 * its own normal form: "/a%2541" is stored decoded, as "/a%41".)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "l7.h"
#include "policy.h"

static char *const etl_roles[] = { "etl" };

static const struct policy_identity ids[] = {
	{ .id = 1, .spiffe_id = "spiffe://acme.example/job/1234", .kind = WL_KIND_JOB,
	  .roles = etl_roles, .nr_roles = 1 },
	{ .id = 2, .spiffe_id = "spiffe://acme.example/notebook/77", .kind = WL_KIND_NOTEBOOK },
};

static void decide(const struct policy *pol)
{
	const uint32_t v4[4] = { htonl(0x0a4d0002) };	/* 10.77.0.2 */
	const uint32_t v6[4] = { htonl(0xfd770000), 0, 0, htonl(2) };	/* fd77::2 */
	struct decision d;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		policy_decide(pol, &ids[i], AF_INET, v4, 5432, IPPROTO_TCP, &d);
		policy_decide(pol, &ids[i], AF_INET6, v6, 80, IPPROTO_TCP, &d);
		policy_decide(pol, &ids[i], AF_INET, v4, 53, IPPROTO_UDP, &d);
	}
}

static const struct http_req reqs[] = {
	{ .method = "GET", .path = "/api/2.0/jobs/list", .host = "api.acme.example" },
	{ .method = "POST", .path = "/", .host = NULL },
	{ .method = "DELETE", .path = "/a/b/c/", .host = "x.edge.example" },
};

static void decide_http(const struct policy *pol)
{
	struct decision d;

	for (int s = 0; s < pol->nr_services; s++) {
		for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
			policy_decide_http(pol, &ids[r % 2], s, &reqs[r], &d);
			if (d.rule >= pol->nr_rules || (d.rule >= 0 && d.service != s))
				abort();
		}
	}
	for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
		if (policy_edge_route(pol, reqs[r].path) >= pol->edge.nr_routes)
			abort();
	}
}

/* An edge prefix is its own normal form: policy_load() refuses one that is
 * not, and its characters exclude '%'. */
static void check_prefix(const char *prefix)
{
	char out[L7_PATH_MAX];
	struct errmsg err;

	if (l7_path_normalize(prefix, strlen(prefix), out, sizeof(out), &err) ||
	    strcmp(out, prefix))
		abort();
}

static void check_l7(const struct policy *pol)
{
	for (int i = 0; i < pol->nr_rules; i++) {
		const struct policy_rule *r = &pol->rules[i];

		for (int j = 0; j < r->nr_paths; j++) {
			if (!l7_path_match(r->paths[j], r->paths[j]))
				abort();
		}
		for (int j = 0; j < r->nr_hosts; j++) {
			if (!l7_host_match(r->hosts[j], r->hosts[j]))
				abort();
		}
	}
	for (int i = 0; i < pol->edge.nr_routes; i++) {
		check_prefix(pol->edge.routes[i].prefix);
		if (policy_edge_route(pol, pol->edge.routes[i].prefix) != i)
			abort();
	}
}

static void compile(const struct policy *pol)
{
	struct policy_entry *entries = NULL;
	uint32_t *svc_ids;
	struct errmsg err;
	int nr;

	svc_ids = calloc(pol->nr_services ? pol->nr_services : 1, sizeof(*svc_ids));
	if (!svc_ids)
		return;
	for (int i = 0; i < pol->nr_services; i++)
		svc_ids[i] = i + 1;
	if (!policy_compile(pol, ids, sizeof(ids) / sizeof(ids[0]), svc_ids, 1, &entries, &nr,
			    &err))
		free(entries);
	free(svc_ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *roles[8];
	struct errmsg err;
	struct policy pol;
	json_t *claims;

	if (policy_load(fuzz_file(data, size), &pol, &err))
		return 0;
	compile(&pol);
	decide(&pol);
	decide_http(&pol);
	check_l7(&pol);
	claims = json_pack("{s:[s, s], s:s}", "groups", "etl-jobs", "admins", "sub", "job-1234");
	if (claims)
		policy_roles_from_claims(&pol, claims, roles, 8);
	json_decref(claims);
	policy_free(&pol);
	return 0;
}
