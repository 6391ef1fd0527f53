// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What a loaded policy decides, both ways it is asked: policy_compile()
 * turns rules and identities into the entries BPF looks up at connect(),
 * and policy_decide() answers one flow in userspace. They live together
 * because they must rank rules identically (the precedence in policy.h),
 * which policy_rule_specificity() and the SPEC_ order make one definition
 * of (policy_decide_http() in l7.c ranks sources with it too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

/* Source specificity of a rule, for precedence step (3). */
enum {
	SPEC_NONE = 0,
	SPEC_ANY,
	SPEC_GROUP,			/* role or kind */
	SPEC_WORKLOAD,
};

/* Compiler working set: one candidate per distinct map key; a rule that
 * produces an existing key replaces it only if it takes precedence. */
struct cand {
	struct policy_entry e;
	int spec;
};

struct cand_table {
	struct cand *c;
	int nr, cap;
	int *slots;			/* index + 1 into c; 0 = free */
	unsigned int nr_slots;		/* power of two */
	int per_family[2];
};

static uint32_t entry_hash(const struct policy_entry *e)
{
	const unsigned char *p = (const unsigned char *)&e->key6;
	uint32_t h = 2166136261u ^ e->family;

	/* FNV-1a; key4 entries are zero-padded to the size of key6. */
	for (size_t i = 0; i < sizeof(e->key6); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static bool entry_key_eq(const struct policy_entry *a, const struct policy_entry *b)
{
	return a->family == b->family && !memcmp(&a->key6, &b->key6, sizeof(a->key6));
}

/* policy_rule_deny_level() of the rule an entry was compiled from. */
static int value_deny_level(const struct sluice_policy_value *v)
{
	if (v->action == SLUICE_ACT_DENY)
		return 2;
	return v->flags & SLUICE_POLICY_F_WOULD_DENY ? 1 : 0;
}

static bool cand_beats(const struct cand *a, const struct cand *b)
{
	if (a->spec != b->spec)
		return a->spec > b->spec;
	return value_deny_level(&a->e.value) > value_deny_level(&b->e.value);
}

static int *cand_slot(const struct cand_table *t, const struct policy_entry *e)
{
	unsigned int i = entry_hash(e) & (t->nr_slots - 1);

	while (t->slots[i] && !entry_key_eq(&t->c[t->slots[i] - 1].e, e))
		i = (i + 1) & (t->nr_slots - 1);
	return &t->slots[i];
}

static int cand_table_grow(struct cand_table *t)
{
	unsigned int n = t->nr_slots ? t->nr_slots * 2 : 1024;
	struct cand *c;
	int *old = t->slots;

	if (t->nr == t->cap) {
		c = reallocarray(t->c, t->cap ? t->cap * 2 : 512, sizeof(*c));
		if (!c)
			return -ENOMEM;
		t->c = c;
		t->cap = t->cap ? t->cap * 2 : 512;
	}
	/* Keep the load factor at or under one half. */
	if ((unsigned int)t->nr * 2 < t->nr_slots)
		return 0;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->nr_slots = n;
	for (int i = 0; i < t->nr; i++)
		*cand_slot(t, &t->c[i].e) = i + 1;
	free(old);
	return 0;
}

static int cand_add(struct cand_table *t, const struct cand *c)
{
	int *slot, fam = c->e.family == AF_INET6, ret;

	ret = cand_table_grow(t);
	if (ret)
		return ret;
	slot = cand_slot(t, &c->e);
	if (*slot) {
		if (cand_beats(c, &t->c[*slot - 1]))
			t->c[*slot - 1] = *c;
		return 0;
	}
	if (++t->per_family[fam] > POLICY_MAX_ENTRIES)
		return -E2BIG;
	t->c[t->nr++] = *c;
	*slot = t->nr;
	return 0;
}

int policy_rule_specificity(const struct policy_rule *r, const struct policy_identity *id)
{
	switch (r->from) {
	case FROM_WORKLOAD:
		return id->spiffe_id && !strcmp(r->from_value, id->spiffe_id) ? SPEC_WORKLOAD
									      : SPEC_NONE;
	case FROM_KIND:
		return workload_kind_parse(r->from_value) == id->kind ? SPEC_GROUP : SPEC_NONE;
	case FROM_ROLE:
		for (int i = 0; i < id->nr_roles; i++) {
			if (!strcmp(r->from_value, id->roles[i]))
				return SPEC_GROUP;
		}
		return SPEC_NONE;
	case FROM_ANY:
		return SPEC_ANY;
	}
	return SPEC_NONE;
}

/* An audit-mode deny connects as an allow of the same destination would,
 * flagged so that BPF reports it. */
static void rule_value(const struct policy_rule *r, const struct policy_service *svc,
		       struct sluice_policy_value *v)
{
	v->flags = !r->allow && r->audit ? SLUICE_POLICY_F_WOULD_DENY : 0;
	if (!r->allow && !r->audit)
		v->action = SLUICE_ACT_DENY;
	/* BPF steers only TCP; anything else allowed goes direct. */
	else if (svc->mesh && svc->proto == IPPROTO_TCP)
		v->action = SLUICE_ACT_REDIRECT;
	else
		v->action = SLUICE_ACT_ALLOW;
}

/* Candidates for one (identity, rule, service) triple: every address times
 * every port, or the any-port wildcard. */
static int add_service(struct cand_table *t, const struct policy_service *svc, uint32_t identity,
		       uint8_t slot, const struct cand *tmpl)
{
	int nr_ports = svc->nr_ports ? svc->nr_ports : 1, ret;
	const struct cidr *a;
	struct cand c;

	for (a = svc->addrs; a < svc->addrs + svc->nr_addrs; a++) {
		for (int p = 0; p < nr_ports; p++) {
			c = *tmpl;
			c.e.family = a->family;
			/* key4 and key6 share their leading fields. */
			c.e.key4.identity = identity;
			c.e.key4.slot = slot;
			c.e.key4.proto = svc->proto;
			c.e.key4.port = svc->nr_ports ? htons(svc->ports[p]) : SLUICE_PORT_ANY;
			c.e.key4.prefixlen = SLUICE_POLICY_FIXED_BITS + a->prefixlen;
			if (a->family == AF_INET)
				c.e.key4.addr = a->addr[0];
			else
				memcpy(c.e.key6.addr, a->addr, sizeof(c.e.key6.addr));
			ret = cand_add(t, &c);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct policy_entry *a = pa, *b = pb;
	int r;

	r = CMP(a->family, b->family);
	if (!r)
		r = CMP(a->key4.identity, b->key4.identity);
	if (!r)
		r = CMP(a->key4.proto, b->key4.proto);
	if (!r)
		r = CMP(ntohs(a->key4.port), ntohs(b->key4.port));
	if (!r && a->family == AF_INET)
		r = memcmp(&a->key4.addr, &b->key4.addr, sizeof(a->key4.addr));
	else if (!r)
		r = memcmp(a->key6.addr, b->key6.addr, sizeof(a->key6.addr));
	if (!r)
		r = CMP(a->key4.prefixlen, b->key4.prefixlen);
	return r;
}

/* The table's entries, sorted, into a new array. */
static int table_output(const struct cand_table *t, const struct policy *pol,
			struct policy_entry **entries, int *nr_entries, struct errmsg *err)
{
	if (!t->nr)
		return 0;
	*entries = malloc(t->nr * sizeof(**entries));
	if (!*entries)
		return errmsg_set(err, -ENOMEM, "%s: out of memory compiling the policy",
				  pol->path);
	for (int i = 0; i < t->nr; i++)
		(*entries)[i] = t->c[i].e;
	qsort(*entries, t->nr, sizeof(**entries), entry_cmp);
	*nr_entries = t->nr;
	return 0;
}

int policy_compile(const struct policy *pol, const struct policy_identity *ids, int nr_ids,
		   const uint32_t *service_ids, uint8_t slot, struct policy_entry **entries,
		   int *nr_entries, struct errmsg *err)
{
	const struct policy_service *svc;
	struct cand_table t = {};
	const struct policy_rule *r;
	unsigned long work = 0;
	struct cand tmpl;
	int ret = 0, i, j, k;

	*entries = NULL;
	*nr_entries = 0;
	if (slot >= SLUICE_SLOTS)
		return errmsg_set(err, -EINVAL, "policy slot %u out of range", slot);
	for (i = 0; i < nr_ids; i++) {
		if (ids[i].id == SLUICE_IDENTITY_NONE)
			return errmsg_set(err, -EINVAL, "identity of %s is 0, which is reserved",
					  ids[i].spiffe_id ? ids[i].spiffe_id : "a workload");
	}
	for (i = 0; i < nr_ids && !ret; i++) {
		/* Indexed: a policy without rules has a NULL array, and NULL + 0
		 * is undefined behaviour. */
		for (k = 0; k < pol->nr_rules && !ret; k++) {
			r = &pol->rules[k];
			if (!policy_rule_per_connection(r))
				continue;
			memset(&tmpl, 0, sizeof(tmpl));
			tmpl.spec = policy_rule_specificity(r, &ids[i]);
			if (!tmpl.spec)
				continue;
			tmpl.e.value.rule = k + 1;
			for (j = 0; j < r->nr_to && !ret; j++) {
				svc = &pol->services[r->to[j]];
				/* Overlapping rules land on the same entries: only
				 * the work they cost grows, and it is done on reload,
				 * in the agent's event loop. */
				work += svc->nr_addrs * (svc->nr_ports ? svc->nr_ports : 1);
				if (work > POLICY_MAX_CANDIDATES) {
					ret = -EOVERFLOW;
					break;
				}
				rule_value(r, svc, &tmpl.e.value);
				tmpl.e.value.service = service_ids[r->to[j]];
				ret = add_service(&t, svc, ids[i].id, slot, &tmpl);
			}
		}
	}
	if (ret == -E2BIG)
		errmsg_set(err, ret, "%s: policy compiles to more than %d entries of one family",
			   pol->path, POLICY_MAX_ENTRIES);
	else if (ret == -EOVERFLOW)
		errmsg_set(err, ret,
			   "%s: rules overlap too much: compiling them for %d workloads weighs "
			   "more than %d candidate entries (workloads x rules x addresses x ports)",
			   pol->path, nr_ids, POLICY_MAX_CANDIDATES);
	else if (ret)
		errmsg_set(err, ret, "%s: out of memory compiling the policy", pol->path);
	if (!ret)
		ret = table_output(&t, pol, entries, nr_entries, err);
	free(t.c);
	free(t.slots);
	return ret;
}

int policy_compile_directory(const struct policy *pol, const uint32_t *service_ids, uint8_t slot,
			     struct policy_entry **entries, int *nr_entries, struct errmsg *err)
{
	struct cand_table t = {};
	struct cand tmpl;
	int ret = 0;

	*entries = NULL;
	*nr_entries = 0;
	for (int i = 0; i < pol->nr_services && !ret; i++) {
		memset(&tmpl, 0, sizeof(tmpl));
		tmpl.spec = SPEC_ANY;
		tmpl.e.value.action = SLUICE_ACT_DENY;
		tmpl.e.value.service = service_ids[i];
		ret = add_service(&t, &pol->services[i], SLUICE_IDENTITY_NONE, slot, &tmpl);
	}
	if (ret == -E2BIG)
		errmsg_set(err, ret, "%s: the services' addresses and ports make more than %d "
			   "entries of one family", pol->path, POLICY_MAX_ENTRIES);
	else if (ret)
		errmsg_set(err, ret, "%s: out of memory compiling the policy", pol->path);
	if (!ret)
		ret = table_output(&t, pol, entries, nr_entries, err);
	free(t.c);
	free(t.slots);
	return ret;
}

/* Precedence as a number: port class, then prefix, then source
 * specificity, then deny over an audit-mode deny over allow. */
static uint32_t decide_rank(bool port_specific, int prefixlen, int spec, int deny_level)
{
	return (uint32_t)port_specific << 16 | (uint32_t)prefixlen << 8 | (uint32_t)spec << 2 |
	       (uint32_t)deny_level;
}

/* How specifically svc holds addr:port over proto, as decide_rank()'s
 * port class and prefix; 0: not at all. */
static uint32_t service_rank(const struct policy_service *svc, int family, const uint32_t *addr,
			     uint16_t port, uint8_t proto)
{
	bool specific = false;
	int plen = -1;

	if (svc->proto != proto)
		return 0;
	for (int p = 0; p < svc->nr_ports && !specific; p++)
		specific = svc->ports[p] == port;
	if (svc->nr_ports && !specific)
		return 0;
	for (int a = 0; a < svc->nr_addrs; a++) {
		if (svc->addrs[a].prefixlen > plen && cidr_contains(&svc->addrs[a], family, addr))
			plen = svc->addrs[a].prefixlen;
	}
	/* +1: a /0 match still outranks no match. */
	return plen < 0 ? 0 : decide_rank(specific, plen + 1, 0, 0);
}

int policy_service_at(const struct policy *pol, int family, const uint32_t *addr, uint16_t port,
		      uint8_t proto)
{
	uint32_t best = 0, rank;
	int found = -1;

	for (int i = 0; i < pol->nr_services; i++) {
		rank = service_rank(&pol->services[i], family, addr, port, proto);
		if (rank > best) {
			best = rank;
			found = i;
		}
	}
	return found;
}

void policy_decision_of(const struct policy *pol, int r, struct decision *out)
{
	bool allow = r < 0 ? pol->default_allow : pol->rules[r].allow;
	bool audit = r < 0 ? pol->audit : pol->rules[r].audit;

	out->rule = r;
	out->allow = allow || audit;
	out->would_deny = !allow && audit;
	if (allow)
		out->reason = SLUICE_REASON_NONE;
	else if (audit)
		out->reason = SLUICE_REASON_WOULD_DENY;
	else
		out->reason = r < 0 ? SLUICE_REASON_DEFAULT_DENY : SLUICE_REASON_POLICY_DENY;
}

uint32_t policy_default_action(const struct policy *pol)
{
	if (pol->default_allow)
		return SLUICE_ACT_ALLOW;
	return pol->audit ? SLUICE_ACT_ALLOW_WOULD_DENY : SLUICE_ACT_DENY;
}

void policy_decide(const struct policy *pol, const struct policy_identity *src, int family,
		   const uint32_t *addr, uint16_t port, uint8_t proto, struct decision *out)
{
	uint32_t best = 0, rank;
	int spec;

	out->service = -1;
	policy_decision_of(pol, -1, out);
	for (int r = 0; r < pol->nr_rules; r++) {
		const struct policy_rule *rule = &pol->rules[r];

		if (!policy_rule_per_connection(rule))
			continue;
		spec = policy_rule_specificity(rule, src);
		if (!spec)
			continue;
		for (int j = 0; j < rule->nr_to; j++) {
			rank = service_rank(&pol->services[rule->to[j]], family, addr, port, proto);
			if (!rank)
				continue;
			rank |= (uint32_t)spec << 2 | (uint32_t)policy_rule_deny_level(rule);
			if (rank <= best)
				continue;
			best = rank;
			policy_decision_of(pol, r, out);
			out->service = rule->to[j];
		}
	}
	/* Decided by the default: still the service the destination is, for
	 * the audit line and for an http service's gate. */
	if (out->service < 0)
		out->service = policy_service_at(pol, family, addr, port, proto);
}