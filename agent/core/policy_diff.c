// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What a new policy changes against the live one: policy_diff.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "l7.h"
#include "policy_diff.h"
#include "policy_explain.h"
#include "spiffe.h"
#include "strbuf.h"

#define LABEL_MAX 256
#define VERDICT_MAX 16

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A list in one canonical order, joined by sep. */
static void put_sorted(struct strbuf *b, char *const *s, int nr, const char *sep)
{
	const char **copy = nr ? malloc(nr * sizeof(*copy)) : NULL;

	if (!nr)
		return;
	if (!copy) {
		b->oom = true;
		return;
	}
	memcpy(copy, s, nr * sizeof(*copy));
	qsort(copy, nr, sizeof(*copy), str_cmp);
	for (int i = 0; i < nr; i++)
		strbuf_printf(b, "%s%s", i ? sep : "", copy[i]);
	free(copy);
}

static void put_from(struct strbuf *b, const struct policy_rule *r)
{
	switch (r->from) {
	case FROM_WORKLOAD:
		strbuf_printf(b, "workload %s", r->from_value);
		break;
	case FROM_KIND:
		strbuf_printf(b, "kind %s", r->from_value);
		break;
	case FROM_ROLE:
		strbuf_printf(b, "role %s", r->from_value);
		break;
	case FROM_ANY:
		strbuf_printf(b, "any");
		break;
	}
}

/* "deny kind notebook -> api, web methods DELETE paths /x via edge" */
static char *rule_text(const struct policy *pol, const struct policy_rule *r)
{
	char **to = calloc(r->nr_to + 1, sizeof(*to));
	struct strbuf b;

	if (!to)
		return NULL;
	for (int i = 0; i < r->nr_to; i++)
		to[i] = pol->services[r->to[i]].name;
	strbuf_init(&b, NULL, 0);
	strbuf_printf(&b, "%s ", r->allow ? "allow" : "deny");
	put_from(&b, r);
	strbuf_printf(&b, " -> ");
	put_sorted(&b, to, r->nr_to, ", ");
	free(to);
	if (r->nr_methods) {
		strbuf_printf(&b, " methods ");
		put_sorted(&b, r->methods, r->nr_methods, ",");
	}
	if (r->nr_paths) {
		strbuf_printf(&b, " paths ");
		put_sorted(&b, r->paths, r->nr_paths, ",");
	}
	if (r->nr_hosts) {
		strbuf_printf(&b, " hosts ");
		put_sorted(&b, r->hosts, r->nr_hosts, ",");
	}
	if (r->via_edge)
		strbuf_printf(&b, " via edge");
	if (r->audit)
		strbuf_printf(&b, " mode audit");
	if (b.oom) {
		strbuf_release(&b);
		return NULL;
	}
	return strbuf_detach(&b, NULL);
}

/* The texts of every rule, in file order. */
static char **rule_texts(const struct policy *pol)
{
	char **t;

	if (!pol)
		return calloc(1, sizeof(*t));
	t = calloc(pol->nr_rules + 1, sizeof(*t));
	for (int i = 0; t && i < pol->nr_rules; i++) {
		t[i] = rule_text(pol, &pol->rules[i]);
		if (!t[i]) {
			for (int j = 0; j < i; j++)
				free(t[j]);
			free(t);
			return NULL;
		}
	}
	return t;
}

static void texts_free(char **t, int nr)
{
	for (int i = 0; t && i < nr; i++)
		free(t[i]);
	free(t);
}

static json_t *side_json(const struct policy_rule *r, int i, const char *text)
{
	return json_pack("{s:i, s:i, s:s}", "index", i + 1, "line", r->line, "text", text);
}

static json_t *rule_json(const struct policy_rule *r, int i, const char *text)
{
	json_t *o = side_json(r, i, text);

	json_object_set_new(o, "name", r->name ? json_string(r->name) : json_null());
	return o;
}

/* The rule of other that is r's counterpart: by name, or (unnamed) by
 * text, each used once. */
static int match_rule(const struct policy *other, char **other_texts, bool *used,
		      const struct policy_rule *r, const char *text)
{
	for (int i = 0; other && i < other->nr_rules; i++) {
		const struct policy_rule *o = &other->rules[i];

		if (used[i])
			continue;
		if (r->name ? o->name && !strcmp(o->name, r->name)
			    : !o->name && !strcmp(other_texts[i], text))
			return i;
	}
	return -1;
}

static int diff_rules(const struct policy *old, const struct policy *new_, json_t *rules)
{
	char **ot = rule_texts(old), **nt = rule_texts(new_);
	int nr_old = old ? old->nr_rules : 0;
	bool *used = calloc(nr_old + 1, sizeof(*used));
	json_t *added = json_object_get(rules, "added"), *removed = json_object_get(rules, "removed");
	json_t *changed = json_object_get(rules, "changed");
	int ret = 0;

	if (!ot || !nt || !used) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < new_->nr_rules; i++) {
		const struct policy_rule *r = &new_->rules[i];
		int j = match_rule(old, ot, used, r, nt[i]);

		if (j < 0) {
			json_array_append_new(added, rule_json(r, i, nt[i]));
			continue;
		}
		used[j] = true;
		if (strcmp(ot[j], nt[i]))
			json_array_append_new(changed,
					      json_pack("{s:s?, s:o, s:o}", "name", r->name,
							"before", side_json(&old->rules[j], j, ot[j]),
							"after", side_json(r, i, nt[i])));
	}
	for (int j = 0; j < nr_old; j++) {
		if (!used[j])
			json_array_append_new(removed, rule_json(&old->rules[j], j, ot[j]));
	}
out:
	texts_free(ot, nr_old);
	texts_free(nt, new_->nr_rules);
	free(used);
	return ret;
}

/* One source of the verdict table. */
struct source {
	char label[SPIFFE_ID_MAX + 8];
	struct policy_identity id;
	char *role[1];
};

static int find_service(const struct policy *pol, const char *name)
{
	for (int i = 0; pol && i < pol->nr_services; i++) {
		if (!strcmp(pol->services[i].name, name))
			return i;
	}
	return -1;
}

/* Appends label to the ","-joined list in buf unless it is there. */
static void add_label(char *buf, size_t len, const char *label)
{
	size_t n = strlen(label), have = strlen(buf);

	for (const char *p = buf; *p;) {
		const char *end = strchr(p, ',');
		size_t l = end ? (size_t)(end - p) : strlen(p);

		if (l == n && !strncmp(p, label, n))
			return;
		p += l + (end ? 1 : 0);
	}
	snprintf(buf + have, len - have, "%s%s", have ? "," : "", label);
}

static void merge(char *verdict, const char *v, bool first)
{
	if (first)
		snprintf(verdict, VERDICT_MAX, "%s", v);
	else if (strcmp(verdict, v))
		snprintf(verdict, VERDICT_MAX, "mixed");
}

static const char *verdict_of(const struct decision *d)
{
	return !d->allow ? "deny" : d->would_deny ? "would-deny" : "allow";
}

/* What pol says of src connecting to service name, at every address and
 * port of it. */
static void connection_side(const struct policy *pol, const struct source *src,
			    const char *name, char *verdict, char *rule)
{
	int s = find_service(pol, name);
	const struct policy_service *svc;
	char label[LABEL_MAX];
	struct decision d;
	bool first = true;

	rule[0] = '\0';
	if (s < 0) {
		snprintf(verdict, VERDICT_MAX, "none");
		return;
	}
	svc = &pol->services[s];
	for (int a = 0; a < svc->nr_addrs; a++) {
		for (int p = 0; p < (svc->nr_ports ? svc->nr_ports : 1); p++) {
			uint16_t port = svc->nr_ports ? svc->ports[p] : 0;

			policy_decide(pol, &src->id, svc->addrs[a].family, svc->addrs[a].addr, port,
				      svc->proto, &d);
			merge(verdict, verdict_of(&d), first);
			first = false;
			add_label(rule, LABEL_MAX, policy_explain_rule(pol, d.rule, label,
								      sizeof(label)));
		}
	}
	if (first)
		snprintf(verdict, VERDICT_MAX, "none");
}

struct probe {
	const char *method;
	char path[L7_PATH_MAX];
	bool via_edge;
};

/* A path pattern made a path it matches: wildcard segments become "x". */
static void sample_path(const char *pattern, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = pattern; *p && n + 2 < len; p++) {
		if (*p == '*') {
			while (p[1] == '*')
				p++;
			out[n++] = 'x';
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

static void request_side(const struct policy *pol, const struct source *src, const char *name,
			 const struct probe *pr, char *verdict, char *rule)
{
	struct http_req req = { .method = pr->method, .path = pr->path, .via_edge = pr->via_edge };
	int s = find_service(pol, name);
	char label[LABEL_MAX];
	struct decision d;

	connection_side(pol, src, name, verdict, rule);
	/* Refused at connect(), or not HTTP: no request is decided on its own. */
	if (s < 0 || !pol->services[s].http || strcmp(verdict, "allow"))
		return;
	policy_decide_http(pol, &src->id, s, &req, &d);
	snprintf(verdict, VERDICT_MAX, "%s", verdict_of(&d));
	snprintf(rule, LABEL_MAX, "%s", policy_explain_rule(pol, d.rule, label, sizeof(label)));
}

static json_t *row_json(const struct source *src, const char *to, const struct probe *pr,
			const char *before, const char *rb, const char *after, const char *ra)
{
	return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:s?}", "from", src->label,
			 "to", to, "method", pr ? pr->method : NULL, "path", pr ? pr->path : NULL,
			 "via", pr && pr->via_edge ? "edge" : NULL, "before", before, "after",
			 after, "rule_before", strcmp(before, "none") ? rb : NULL, "rule_after",
			 strcmp(after, "none") ? ra : NULL);
}

static bool rule_targets(const struct policy *pol, const struct policy_rule *r, const char *name)
{
	for (int i = 0; i < r->nr_to; i++) {
		if (!strcmp(pol->services[r->to[i]].name, name))
			return true;
	}
	return false;
}

/* The request probes the L7 rules of pol toward service name add. */
static int add_probes(const struct policy *pol, const char *name, struct probe **probes, int *nr)
{
	static const char *const get[] = { "GET" };

	for (int i = 0; pol && i < pol->nr_rules; i++) {
		const struct policy_rule *r = &pol->rules[i];
		int nm = r->nr_methods ? r->nr_methods : 1, np = r->nr_paths ? r->nr_paths : 1;
		struct probe *n;

		if (!policy_rule_is_l7(r) || !rule_targets(pol, r, name))
			continue;
		n = realloc(*probes, (*nr + nm * np) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		*probes = n;
		for (int m = 0; m < nm; m++) {
			for (int p = 0; p < np; p++) {
				struct probe *pr = &n[(*nr)++];

				pr->method = r->nr_methods ? r->methods[m] : get[0];
				sample_path(r->nr_paths ? r->paths[p] : "/", pr->path,
					    sizeof(pr->path));
				pr->via_edge = r->via_edge;
			}
		}
	}
	return 0;
}

static int probe_cmp(const void *a, const void *b)
{
	const struct probe *x = a, *y = b;

	return strcmp(x->method, y->method) ?: strcmp(x->path, y->path) ?:
	       (int)x->via_edge - (int)y->via_edge;
}

static int diff_pair(const struct policy *old, const struct policy *new_,
		     const struct source *src, const char *name, json_t *rows)
{
	char vb[VERDICT_MAX], va[VERDICT_MAX], rb[LABEL_MAX], ra[LABEL_MAX];
	struct probe *probes = NULL;
	int nr = 0, ret;

	connection_side(old, src, name, vb, rb);
	connection_side(new_, src, name, va, ra);
	if (strcmp(vb, va))
		json_array_append_new(rows, row_json(src, name, NULL, vb, rb, va, ra));
	ret = add_probes(old, name, &probes, &nr);
	if (!ret)
		ret = add_probes(new_, name, &probes, &nr);
	if (ret) {
		free(probes);
		return ret;
	}
	if (nr)
		qsort(probes, nr, sizeof(*probes), probe_cmp);
	for (int i = 0; i < nr; i++) {
		if (i && !probe_cmp(&probes[i], &probes[i - 1]))
			continue;
		if (old)
			request_side(old, src, name, &probes[i], vb, rb);
		else
			snprintf(vb, sizeof(vb), "none");
		request_side(new_, src, name, &probes[i], va, ra);
		if (strcmp(vb, va))
			json_array_append_new(rows, row_json(src, name, &probes[i], vb, rb, va, ra));
	}
	free(probes);
	return 0;
}

static int source_cmp(const void *a, const void *b)
{
	return strcmp(((const struct source *)a)->label, ((const struct source *)b)->label);
}

/* The sources: workloads, then roles (sorted), then kinds (enum order). */
static struct source *sources(const struct policy *old, const struct policy *new_,
			      const struct policy_identity *ids, int nr_ids, int *nr)
{
	const struct policy *pols[2] = { old, new_ };
	int cap = nr_ids + 4 + (old ? old->nr_rules : 0) + new_->nr_rules, n = 0, first_role;
	struct source *s = calloc(cap, sizeof(*s));

	if (!s)
		return NULL;
	for (int i = 0; i < nr_ids; i++, n++) {
		s[n].id = ids[i];
		snprintf(s[n].label, sizeof(s[n].label), "%s", ids[i].spiffe_id);
	}
	first_role = n;
	for (int p = 0; p < 2; p++) {
		for (int i = 0; pols[p] && i < pols[p]->nr_rules; i++) {
			const struct policy_rule *r = &pols[p]->rules[i];
			char label[sizeof(s->label)];
			bool seen = false;

			if (r->from != FROM_ROLE)
				continue;
			snprintf(label, sizeof(label), "role:%s", r->from_value);
			for (int j = first_role; j < n && !seen; j++)
				seen = !strcmp(s[j].label, label);
			if (seen)
				continue;
			memcpy(s[n].label, label, sizeof(label));
			s[n].role[0] = r->from_value;
			n++;
		}
	}
	qsort(s + first_role, n - first_role, sizeof(*s), source_cmp);
	for (int i = first_role; i < n; i++) {
		s[i].id.roles = s[i].role;
		s[i].id.nr_roles = 1;
	}
	for (int k = WL_KIND_JOB; k <= WL_KIND_SERVICE; k++) {
		bool named = false;

		for (int p = 0; p < 2 && !named; p++) {
			for (int i = 0; pols[p] && i < pols[p]->nr_rules && !named; i++)
				named = pols[p]->rules[i].from == FROM_KIND &&
					workload_kind_parse(pols[p]->rules[i].from_value) ==
						(enum workload_kind)k;
		}
		if (!named)
			continue;
		s[n].id.kind = k;
		snprintf(s[n].label, sizeof(s[n].label), "kind:%s", workload_kind_name(k));
		n++;
	}
	*nr = n;
	return s;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every service name of either policy, sorted, once. */
static const char **service_names(const struct policy *old, const struct policy *new_, int *nr)
{
	int cap = (old ? old->nr_services : 0) + new_->nr_services, n = 0;
	const char **names = calloc(cap + 1, sizeof(*names));

	if (!names)
		return NULL;
	for (int i = 0; old && i < old->nr_services; i++)
		names[n++] = old->services[i].name;
	for (int i = 0; i < new_->nr_services; i++)
		names[n++] = new_->services[i].name;
	qsort(names, n, sizeof(*names), name_cmp);
	*nr = 0;
	for (int i = 0; i < n; i++) {
		if (!*nr || strcmp(names[*nr - 1], names[i]))
			names[(*nr)++] = names[i];
	}
	return names;
}

static int diff_verdicts(const struct policy *old, const struct policy *new_,
			 const struct policy_identity *ids, int nr_ids, json_t *rows)
{
	int nr_src = 0, nr_svc = 0, ret = 0;
	struct source *src = sources(old, new_, ids, nr_ids, &nr_src);
	const char **svc = service_names(old, new_, &nr_svc);

	if (!src || !svc)
		ret = -ENOMEM;
	for (int i = 0; !ret && i < nr_src; i++) {
		for (int j = 0; !ret && j < nr_svc; j++)
			ret = diff_pair(old, new_, &src[i], svc[j], rows);
	}
	free(src);
	free(svc);
	return ret;
}

static const char *default_name(const struct policy *pol)
{
	if (!pol)
		return "none";
	return pol->default_allow ? "allow" : pol->audit ? "would-deny" : "deny";
}

int policy_diff(const struct policy *old, const struct policy *new_,
		const struct policy_identity *ids, int nr_ids, json_t **out, struct errmsg *err)
{
	json_t *doc, *rules, *verdicts;
	int ret;

	rules = json_pack("{s:[], s:[], s:[]}", "added", "removed", "changed");
	verdicts = json_array();
	if (!rules || !verdicts) {
		json_decref(rules);
		json_decref(verdicts);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	ret = diff_rules(old, new_, rules);
	if (!ret)
		ret = diff_verdicts(old, new_, ids, nr_ids, verdicts);
	if (ret) {
		json_decref(rules);
		json_decref(verdicts);
		return errmsg_set(err, ret, "policy diff: %s", strerror(-ret));
	}
	doc = json_pack("{s:{s:s?, s:s}, s:o, s:{s:s, s:s}, s:o, s:{s:I, s:I, s:I, s:I, s:b}}",
			"file", "before", old ? old->path : NULL, "after", new_->path, "rules",
			rules, "default", "before", default_name(old), "after",
			default_name(new_), "verdicts", verdicts, "summary", "rules_added",
			(json_int_t)json_array_size(json_object_get(rules, "added")),
			"rules_removed",
			(json_int_t)json_array_size(json_object_get(rules, "removed")),
			"rules_changed",
			(json_int_t)json_array_size(json_object_get(rules, "changed")),
			"verdicts_changed", (json_int_t)json_array_size(verdicts),
			"default_changed", strcmp(default_name(old), default_name(new_)) != 0);
	if (!doc)
		return errmsg_set(err, -ENOMEM, "out of memory");
	*out = doc;
	return 0;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static long long int_of(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void print_rule(FILE *f, char op, const json_t *r, const json_t *side, const char *file)
{
	char idx[24];

	snprintf(idx, sizeof(idx), "#%lld", int_of(side, "index"));
	fprintf(f, "  %c %s (%s:%lld): %s\n", op, str_or(r, "name", idx), file,
		int_of(side, "line"), str_or(side, "text", "-"));
}

static void print_rules(const json_t *diff, FILE *f)
{
	const json_t *rules = json_object_get(diff, "rules"), *file = json_object_get(diff, "file");
	const char *before = str_or(file, "before", "-"), *after = str_or(file, "after", "-");
	const json_t *r;
	size_t i;

	fprintf(f, "rules: %zu added, %zu removed, %zu changed\n",
		json_array_size(json_object_get(rules, "added")),
		json_array_size(json_object_get(rules, "removed")),
		json_array_size(json_object_get(rules, "changed")));
	json_array_foreach(json_object_get(rules, "added"), i, r)
		print_rule(f, '+', r, r, after);
	json_array_foreach(json_object_get(rules, "removed"), i, r)
		print_rule(f, '-', r, r, before);
	json_array_foreach(json_object_get(rules, "changed"), i, r) {
		print_rule(f, '~', r, json_object_get(r, "before"), before);
		fprintf(f, "    now (%s:%lld): %s\n", after,
			int_of(json_object_get(r, "after"), "line"),
			str_or(json_object_get(r, "after"), "text", "-"));
	}
}

enum { C_FROM, C_TO, C_METHOD, C_PATH, C_BEFORE, C_AFTER, C_RULE, NR_COLS };

static void row_cells(const json_t *v, const char **c)
{
	const char *rb = str_or(v, "rule_before", "-"), *ra = str_or(v, "rule_after", "-");

	c[C_FROM] = str_or(v, "from", "-");
	c[C_TO] = str_or(v, "to", "-");
	c[C_METHOD] = str_or(v, "method", "-");
	c[C_PATH] = str_or(v, "path", "-");
	c[C_BEFORE] = str_or(v, "before", "-");
	c[C_AFTER] = str_or(v, "after", "-");
	/* The rule that decides now; the one before when the pair is gone. */
	c[C_RULE] = strcmp(c[C_AFTER], "none") ? ra : rb;
}

static void print_verdicts(const json_t *diff, FILE *f)
{
	static const char *const head[NR_COLS] = { "FROM", "TO", "METHOD", "PATH",
						   "BEFORE", "AFTER", "RULE" };
	const json_t *rows = json_object_get(diff, "verdicts"), *v;
	int w[NR_COLS];
	const char *c[NR_COLS];
	size_t i;

	if (!json_array_size(rows)) {
		fprintf(f, "verdicts: none change\n");
		return;
	}
	for (int k = 0; k < NR_COLS; k++)
		w[k] = strlen(head[k]);
	json_array_foreach(rows, i, v) {
		row_cells(v, c);
		for (int k = 0; k < NR_COLS; k++)
			if ((int)strlen(c[k]) > w[k])
				w[k] = strlen(c[k]);
	}
	fprintf(f, "verdicts: %zu change\n", json_array_size(rows));
	fprintf(f, "  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2],
		head[2], w[3], head[3], w[4], head[4], w[5], head[5], head[6]);
	json_array_foreach(rows, i, v) {
		row_cells(v, c);
		fprintf(f, "  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], c[0], w[1], c[1], w[2],
			c[2], w[3], c[3], w[4], c[4], w[5], c[5], c[6]);
	}
}

void policy_diff_print(const json_t *diff, FILE *f)
{
	const json_t *def = json_object_get(diff, "default");
	const char *b = str_or(def, "before", "-"), *a = str_or(def, "after", "-");

	print_rules(diff, f);
	if (!strcmp(a, b))
		fprintf(f, "default: %s (unchanged)\n", a);
	else
		fprintf(f, "default: %s -> %s\n", b, a);
	print_verdicts(diff, f);
}

size_t policy_diff_summary(const json_t *diff, char *buf, size_t len)
{
	const json_t *s = json_object_get(diff, "summary"), *def = json_object_get(diff, "default");
	int n;

	n = snprintf(buf, len, "+%lld -%lld ~%lld rules, %lld verdict%s change",
		     int_of(s, "rules_added"), int_of(s, "rules_removed"),
		     int_of(s, "rules_changed"), int_of(s, "verdicts_changed"),
		     int_of(s, "verdicts_changed") == 1 ? "" : "s");
	if (json_is_true(json_object_get(s, "default_changed")) && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, ", default %s -> %s", str_or(def, "before", "-"),
			      str_or(def, "after", "-"));
	return n < 0 ? 0 : n;
}
