// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "spiffe.h"

#define SPIFFE_SCHEME "spiffe://"
#define SPIFFE_FORMAT "expected spiffe://<trust-domain>/<kind>/<name>"

static const char *const kind_names[] = {
	[WL_KIND_JOB] = "job",
	[WL_KIND_NOTEBOOK] = "notebook",
	[WL_KIND_CLUSTER] = "cluster",
	[WL_KIND_SERVICE] = "service",
};

static enum workload_kind kind_parse_n(const char *s, size_t len)
{
	for (int k = WL_KIND_JOB; k <= WL_KIND_SERVICE; k++) {
		if (strlen(kind_names[k]) == len && !strncmp(s, kind_names[k], len))
			return k;
	}
	return 0;
}

enum workload_kind workload_kind_parse(const char *s)
{
	return kind_parse_n(s, strlen(s));
}

const char *workload_kind_name(enum workload_kind kind)
{
	if (kind < WL_KIND_JOB || kind > WL_KIND_SERVICE)
		return "unknown";
	return kind_names[kind];
}

static bool lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool name_valid(const char *s, const char *extra)
{
	size_t len = strlen(s);

	if (!len || len > 63)
		return false;
	for (; *s; s++) {
		if (!lower_or_digit(*s) && !strchr(extra, *s))
			return false;
	}
	return true;
}

bool node_name_valid(const char *s)
{
	return name_valid(s, NODE_NAME_CHARS) && strcmp(s, ".") && strcmp(s, "..");
}

/* Labels counted as they go, so one pass checks both lengths. */
bool trust_domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (!len || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!lower_or_digit(s[i]) && (s[i] != '-' || !label))
			return false;
		if (++label > 63)
			return false;
	}
	return label && s[len - 1] != '-';
}

static bool spiffe_name_char(char c)
{
	return lower_or_digit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
}

int spiffe_id_parse(const char *s, struct spiffe_id *out, const char **why)
{
	const char *td, *kind, *name, *slash;

	*why = SPIFFE_FORMAT;
	if (strlen(s) >= SPIFFE_ID_MAX) {
		*why = "longer than 127 characters";
		return -EINVAL;
	}
	if (strncmp(s, SPIFFE_SCHEME, strlen(SPIFFE_SCHEME)))
		return -EINVAL;
	td = s + strlen(SPIFFE_SCHEME);
	slash = strchr(td, '/');
	if (!slash)
		return -EINVAL;
	if (!trust_domain_valid(td, slash - td)) {
		*why = "bad trust domain";
		return -EINVAL;
	}
	kind = slash + 1;
	slash = strchr(kind, '/');
	if (!slash)
		return -EINVAL;
	out->kind = kind_parse_n(kind, slash - kind);
	if (!out->kind) {
		*why = "kind must be job, notebook, cluster or service";
		return -EINVAL;
	}
	name = slash + 1;
	if (!*name || strchr(name, '/'))
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		*why = "name cannot be \".\" or \"..\"";
		return -EINVAL;
	}
	for (const char *p = name; *p; p++) {
		if (!spiffe_name_char(*p)) {
			*why = "name may only use A-Z, a-z, 0-9, '.', '-' and '_'";
			return -EINVAL;
		}
	}
	out->trust_domain = td;
	out->trust_domain_len = kind - 1 - td;
	return 0;
}

bool spiffe_id_in_domain(const struct spiffe_id *sid, const char *trust_domain)
{
	return (size_t)sid->trust_domain_len == strlen(trust_domain) &&
	       !strncmp(sid->trust_domain, trust_domain, sid->trust_domain_len);
}
