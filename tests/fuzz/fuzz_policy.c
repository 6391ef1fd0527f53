// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy file: policy_load() on a file holding the input, then what the
 * agent does with a policy it accepted: compile it for a fixed set of
 * workloads, decide a few connections and map IdP claims to roles.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
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
	claims = json_pack("{s:[s, s], s:s}", "groups", "etl-jobs", "admins", "sub", "job-1234");
	if (claims)
		policy_roles_from_claims(&pol, claims, roles, 8);
	json_decref(claims);
	policy_free(&pol);
	return 0;
}
