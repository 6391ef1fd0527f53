// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl policy: the compiled L4 policy in the maps, and file checks. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config.h"
#include "ctl.h"
#include "ctl_policy_apply.h"
#include "ctl_policy_explain.h"
#include "policy.h"

struct policy_row {
	__u32 slot;
	__u32 identity;
	int family;
	__u8 proto;
	__u16 port;			/* network order, 0 = any */
	__u32 addr[4];
	int prefixlen;			/* of the destination CIDR */
	struct sluice_policy_value v;
	char workload[SLUICE_NAME_LEN];
	char service[SLUICE_NAME_LEN];
};

/* Reads like the file: per workload, in rule order. */
static int row_cmp(const void *a, const void *b)
{
	const struct policy_row *x = a, *y = b;

	return cmp_u64(x->slot, y->slot) ?: cmp_u64(x->identity, y->identity) ?:
	       cmp_u64(x->v.rule, y->v.rule) ?: cmp_u64(x->family, y->family) ?:
	       cmp_u64(x->proto, y->proto) ?: memcmp(x->addr, y->addr, sizeof(x->addr)) ?:
	       cmp_u64(x->prefixlen, y->prefixlen) ?: cmp_u64(ntohs(x->port), ntohs(y->port));
}

/* The v4 and v6 keys share every field before the address. */
_Static_assert(offsetof(struct sluice_policy_key4, addr) ==
		       offsetof(struct sluice_policy_key6, addr),
	       "policy keys diverge before the address");

/* ctx: the slot to keep, or -1 for both. */
static bool policy_fill(const struct map_snap *s, size_t i, void *row, void *ctx)
{
	const struct sluice_policy_key4 *k = snap_key(s, i);
	size_t addr_len = s->def->key_size - offsetof(struct sluice_policy_key4, addr);
	int slot = *(int *)ctx, prefixlen = (int)k->prefixlen - SLUICE_POLICY_FIXED_BITS;
	struct policy_row *r = row;

	if (slot >= 0 && k->slot != slot)
		return false;
	r->family = addr_len == sizeof(r->addr) ? AF_INET6 : AF_INET;
	r->slot = k->slot;
	r->identity = k->identity;
	r->proto = k->proto;
	r->port = k->port;
	memcpy(r->addr, &k->addr, addr_len);
	r->prefixlen = prefixlen < 0 ? 0 : prefixlen;
	r->v = *(const struct sluice_policy_value *)snap_value(s, i, 0);
	ctl_name(SLUICE_NAME_IDENTITY, r->identity, r->workload, sizeof(r->workload));
	ctl_name(SLUICE_NAME_SERVICE, r->v.service, r->service, sizeof(r->service));
	return true;
}

static char *fmt_cidr(const struct policy_row *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%d", fmt_addr(r->family, r->addr, a, sizeof(a)), r->prefixlen);
	return buf;
}

/* A service directory entry (identity 0, abi.h) decides nothing: it names
 * the service of a default-deny. */
static const char *entry_action(const struct policy_row *r)
{
	return r->identity == SLUICE_IDENTITY_NONE ? "directory" : policy_action_name(r->v.action);
}

/* An audit-mode deny connects as its action says and is reported. */
static bool entry_would_deny(const struct policy_row *r)
{
	return r->identity != SLUICE_IDENTITY_NONE && (r->v.flags & SLUICE_POLICY_F_WOULD_DENY);
}

static json_t *entry_json(const struct policy_row *r)
{
	char cidr[64];

	return json_pack("{s:o, s:o, s:s, s:s, s:s, s:i, s:s, s:b, s:o, s:o, s:o}", "identity",
			 json_u64(r->identity), "workload",
			 json_name(SLUICE_NAME_IDENTITY, r->identity), "family",
			 family_name(r->family), "proto", proto_name(r->proto), "cidr",
			 fmt_cidr(r, cidr, sizeof(cidr)), "port", ntohs(r->port), "action",
			 entry_action(r), "would_deny", entry_would_deny(r), "service_id",
			 json_u64(r->v.service), "service",
			 json_name(SLUICE_NAME_SERVICE, r->v.service), "rule", json_u64(r->v.rule));
}

static json_t *slot_json(const struct sluice_config *c, int slot, const struct policy_row *rows,
			 size_t n)
{
	json_t *entries = json_array();

	for (size_t i = 0; i < n; i++)
		if (rows[i].slot == (__u32)slot)
			json_array_append_new(entries, entry_json(&rows[i]));
	return json_pack("{s:i, s:b, s:b, s:o, s:s, s:o}", "slot", slot, "active",
			 (int)(c->active_slot & 1) == slot, "loaded", c->slot_loaded[slot] != 0,
			 "generation", json_u64(c->slot_generation[slot]), "default",
			 policy_action_name(c->slot_default[slot]), "entries", entries);
}

static int slot_plain(const struct sluice_config *c, int slot, const struct policy_row *rows,
		      size_t n)
{
	static const struct table_col cols[] = {
		{ "WORKLOAD", false }, { "PROTO", false },   { "DESTINATION", false },
		{ "PORT", true },      { "ACTION", false },  { "SERVICE", false },
		{ "RULE", true },
	};
	char cidr[64], port[8], rule[12], action[32];
	size_t count = 0;
	struct table t;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	for (size_t i = 0; i < n && !ret; i++) {
		const struct policy_row *r = &rows[i];

		if (r->slot != (__u32)slot)
			continue;
		count++;
		if (r->port == SLUICE_PORT_ANY)
			snprintf(port, sizeof(port), "any");
		else
			snprintf(port, sizeof(port), "%u", ntohs(r->port));
		snprintf(rule, sizeof(rule), "%u", r->v.rule);
		snprintf(action, sizeof(action), "%s%s", entry_action(r),
			 entry_would_deny(r) ? ",would-deny" : "");
		ret = table_add(&t, r->workload, proto_name(r->proto),
				fmt_cidr(r, cidr, sizeof(cidr)), port, action, r->service, rule);
	}
	if (!ret) {
		printf("slot %d%s: ", slot, (int)(c->active_slot & 1) == slot ? " (active)" : "");
		if (c->slot_loaded[slot])
			printf("generation %u, default %s, %zu entr%s\n", c->slot_generation[slot],
			       policy_action_name(c->slot_default[slot]), count,
			       count == 1 ? "y" : "ies");
		else
			printf("empty\n");
		if (count)
			table_print(&t);
	}
	table_free(&t);
	return ret;
}

static int parse_slot(const char *s, int *slot)
{
	if (strcmp(s, "0") && strcmp(s, "1"))
		return errmsg_set(&ctl_err, -EINVAL, "slot is 0 or 1, not '%s'", s);
	*slot = s[0] - '0';
	return 0;
}

static int policy_show(int argc, char **argv)
{
	struct sluice_config cfg;
	struct policy_row *rows = NULL;
	int slot = -1, filter, ret;
	bool all = false;
	size_t n = 0;

	while (argc) {
		if (!strcmp(*argv, "--all")) {
			all = true;
			NEXT_ARG();
		} else if (!strcmp(*argv, "--slot")) {
			NEXT_ARG();
			ret = REQ_ARGS(1);
			if (!ret)
				ret = parse_slot(*argv, &slot);
			if (ret)
				return ret;
			NEXT_ARG();
		} else {
			return BAD_ARG();
		}
	}
	if (all && slot >= 0)
		return errmsg_set(&ctl_err, -EINVAL, "--slot and --all exclude each other");

	ret = sluice_cfg_read(&cfg);
	if (ret)
		return ret;
	if (slot < 0 && !all)
		slot = cfg.active_slot & 1;
	filter = all ? -1 : slot;
	ret = map_rows("policy4", sizeof(*rows), policy_fill, &filter, row_cmp, (void **)&rows,
		       &n);
	if (!ret)
		ret = map_rows("policy6", sizeof(*rows), policy_fill, &filter, row_cmp,
			       (void **)&rows, &n);
	if (ret)
		goto out;

	if (json_output && !all) {
		ret = print_json(slot_json(&cfg, slot, rows, n));
	} else if (json_output) {
		json_t *arr = json_array();

		for (int i = 0; i < SLUICE_SLOTS; i++)
			json_array_append_new(arr, slot_json(&cfg, i, rows, n));
		ret = print_json(arr);
	} else {
		for (int i = 0; i < SLUICE_SLOTS && !ret; i++) {
			if (!all && i != slot)
				continue;
			if (all && i)
				printf("\n");
			ret = slot_plain(&cfg, i, rows, n);
		}
	}
out:
	free(rows);
	return ret;
}

static json_t *strings_json(char *const *s, int nr)
{
	json_t *arr = json_array();

	for (int i = 0; i < nr; i++)
		json_array_append_new(arr, json_string(s[i]));
	return arr;
}

/* rule i (0-based) for -j; rules are numbered from 1 as `policy show` does. */
static json_t *l7_rule_json(const struct policy_rule *r, int i, const char *note)
{
	return json_pack("{s:i, s:o, s:i, s:o, s:o, s:o, s:s}", "rule", i + 1, "name",
			 r->name ? json_string(r->name) : json_null(), "line", r->line, "methods",
			 strings_json(r->methods, r->nr_methods), "paths",
			 strings_json(r->paths, r->nr_paths), "hosts",
			 strings_json(r->hosts, r->nr_hosts), "mesh", note);
}

/* What the mesh makes of each L7 rule, one line (or object) per rule: the
 * edge decides its requests, the datapath its connections by L4 alone. */
static int l7_notes(const struct policy *pol, const char *file, json_t *arr)
{
	const struct policy_rule *r;
	char *note;
	size_t n;

	for (int i = 0; i < pol->nr_rules; i++) {
		r = &pol->rules[i];
		if (!policy_rule_is_l7(r))
			continue;
		n = policy_rule_mesh_note(pol, r, NULL, 0);
		note = malloc(n + 1);
		if (!note)
			return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
		policy_rule_mesh_note(pol, r, note, n + 1);
		if (arr)
			json_array_append_new(arr, l7_rule_json(r, i, note));
		else if (r->name)
			printf("%s:%d: rule \"%s\": %s\n", file, r->line, r->name, note);
		else
			printf("%s:%d: rule %d: %s\n", file, r->line, i + 1, note);
		free(note);
	}
	return 0;
}

/* Audit mode, said where it holds: the policy, or only some rules. */
static void mode_note(const struct policy *pol, const char *file)
{
	int n = policy_audit_rules(pol);

	if (pol->audit) {
		printf("%s: mode audit: nothing is refused; every deny%s is a would-deny\n", file,
		       pol->default_allow ? "" : " and the default deny");
		return;
	}
	printf("%s: mode enforce", file);
	if (n)
		printf(" (%d rule%s in mode audit: their denies are would-denies)", n,
		       n == 1 ? "" : "s");
	printf("\n");
}

static int policy_check(int argc, char **argv)
{
	struct policy pol = {};
	struct config cfg = {};
	struct errmsg err = {};
	const char *file, *config;
	int ret;

	ret = parse_file_config(argc, argv, &file, &config);
	if (ret)
		return ret;

	ret = policy_load(file, &pol, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	if (config) {
		ret = config_load(config, &cfg, &err);
		if (!ret) {
			ret = policy_check_config(&pol, &cfg, &err);
			config_free(&cfg);
		}
		if (ret) {
			policy_free(&pol);
			return errmsg_set(&ctl_err, ret, "%s", err.msg);
		}
	}
	if (json_output) {
		json_t *l7 = json_array();

		ret = l7_notes(&pol, file, l7);
		if (!ret)
			ret = print_json(json_pack("{s:s, s:o, s:b, s:i, s:i, s:i, s:o, s:s, s:i}",
						   "file", file, "config",
						   config ? json_string(config) : json_null(), "ok",
						   1, "services", pol.nr_services, "roles",
						   pol.nr_roles, "rules", pol.nr_rules, "l7_rules",
						   l7, "mode", pol.audit ? "audit" : "enforce",
						   "audit_rules", policy_audit_rules(&pol)));
		else
			json_decref(l7);
	} else {
		printf("%s: ok (%d services, %d rules)\n", file, pol.nr_services, pol.nr_rules);
		mode_note(&pol, file);
		ret = l7_notes(&pol, file, NULL);
	}
	policy_free(&pol);
	return ret;
}

static int policy_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s policy { show | list } [--slot SLOT | --all]\n"
		"       %1$s policy check FILE [-c|--config CONFIG]\n"
		"       %1$s policy apply FILE [-n|--dry-run]\n"
		"       %1$s policy rollback\n"
		"       %1$s policy history\n"
		"       %1$s policy explain [--policy FILE] [-c|--config CONFIG] --from SRC --to DST\n"
		"                          [--method METHOD --path PATH]\n"
		"       %1$s policy test FILE CASES [-c|--config CONFIG]\n"
		"       %1$s policy help\n"
		"\n"
		"       SLOT := { 0 | 1 }\n"
		"\n"
		"show: the compiled L4 policy in policy4/policy6, by default of the active\n"
		"slot: generation, default action, then one line per entry: workload,\n"
		"protocol, destination CIDR, port (any), action (deny, allow: direct,\n"
		"redirect: through the agent), service and rule number (1-based, in file\n"
		"order). Entries of workload - and action directory are the service\n"
		"directory: one per service address and port, which names the service\n"
		"of a default-deny; they decide nothing. --slot shows one slot, --all both: the inactive slot holds the\n"
		"previous generation, the rollback target.\n"
		"\n"
		"check: validates a policy file the way sluiced would load it, without\n"
		"touching the datapath; with -c also against an agent config (workload\n"
		"roles, trust domain). Prints 'FILE: ok (N services, N rules)' or the first\n"
		"error as FILE:LINE: reason, and exits 1. Then one line per rule with\n"
		"methods, paths, hosts or via: those are decided per request (at the edge,\n"
		"and by the agent in front of the service); at connect() an allow lets\n"
		"connections through and a deny refuses none.\n"
		"\n"
		"apply, rollback and history go through the agent's control socket (-S;\n"
		"docs/control.md); apply and rollback need root or control.admin_group.\n"
		"apply: sends FILE; the agent validates it (errors as FILE:LINE: reason,\n"
		"and the live generation stays), compiles it into the inactive slot and\n"
		"switches to it in one write. It prints the new generation, the file's\n"
		"SHA-256 and the diff against the generation that was live: rules added\n"
		"(+), removed (-) and changed (~), and every (workload, role or kind;\n"
		"service[, method, path]) pair whose verdict changes. --dry-run prints the\n"
		"same diff and changes nothing.\n"
		"rollback: makes the previous generation live again in one write; the one\n"
		"it replaced becomes the rollback target (SIGUSR2 does the same).\n"
		"history: the generations the agent keeps under run_dir (control.history,\n"
		"default 10), newest first: which is live and which is the rollback target,\n"
		"when each went live, where it came from (file: the config's policy: at\n"
		"start or SIGHUP when its content changed; socket: policy apply, with the\n"
		"sender's uid and pid; config: the live policy recompiled for a changed\n"
		"config), its SHA-256, file name and the diff's summary.\n"
		"\n"
		"explain and test read files, never the maps (docs/policy-explain-test.md);\n"
		"explain without --policy asks the agent for its live policy (policy.get).\n"
		"explain: the verdict for SRC connecting to DST (and, with --method and\n"
		"--path, for that request on the connection), the deciding rule (name or #N,\n"
		"FILE:LINE) or default, then the precedence steps that led there. SRC is a\n"
		"SPIFFE ID (roles from CONFIG's workload of that ID), role:NAME, a role's\n"
		"bare NAME, or kind:KIND. DST is a service name or ADDR:PORT (a.b.c.d:p,\n"
		"[v6]:p) with an optional /tcp or /udp.\n"
		"test: runs each case of the CASES file (from, to, optional method and\n"
		"path, expect: allow|deny|would-deny, optional rule) and prints 'ok   NAME'\n"
		"or 'FAIL NAME: expected ..., got ...', then 'N passed, N failed'; exits 1\n"
		"when any case fails.\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "show", policy_show },
	{ "list", policy_show },
	{ "check", policy_check },
	{ "apply", do_policy_apply },
	{ "rollback", do_policy_rollback },
	{ "history", do_policy_history },
	{ "explain", do_policy_explain },
	{ "test", do_policy_test },
	{ "help", policy_help },
	{ 0 }
};

int do_policy(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "policy");
}
