/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Typed access to one YAML document (libyaml's document API) for the config
 * and policy parsers. Every check reports `FILE:LINE: reason`, LINE being
 * the 1-based line of the offending node, so each parser only states what
 * it expects.
 *
 * A value is carried with a description of where it came from (`"node"`,
 * `an item of "workloads"`) so type errors read naturally without every
 * caller composing them.
 */
#ifndef SLUICE_YAMLX_H
#define SLUICE_YAMLX_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "errmsg.h"

struct yamlx {
	const char *path;		/* as given, for messages; not copied */
	yaml_document_t doc;
	bool loaded;
};

struct yamlx_val {
	yaml_node_t *node;		/* NULL: the key was absent */
	char what[64];			/* e.g. `"listen"`, `an item of "roles"` */
};

/* One key of a mapping with a fixed set of keys; filled by yamlx_fields(). */
struct yamlx_field {
	const char *key;
	bool required;
	yaml_node_t *key_node;		/* NULL: absent */
	struct yamlx_val v;
};

/* A sequence, or a lone scalar standing for a one-item list. */
struct yamlx_list {
	yaml_node_t *single;
	yaml_node_item_t *items;
	int nr;
	char item_what[64];
};

/* A mapping with free-form scalar keys. */
struct yamlx_map {
	yaml_node_pair_t *pairs;
	int nr;
};

/*
 * What one file may hold. Each bound stops work that grows faster than the
 * file, so that no file the agent reads on SIGHUP stalls its event loop:
 * libyaml's scanner is quadratic in the nesting depth, its loader in
 * anchors times aliases, the duplicate-key check in the keys of a mapping,
 * and an alias is walked by the parsers once per use, so it counts as the
 * nodes it names. Files and scalars are bounded for memory.
 */
#define YAMLX_MAX_FILE (1 << 20)	/* bytes; a Kubernetes ConfigMap's limit */
#define YAMLX_MAX_DEPTH 64		/* mappings and sequences inside each other */
#define YAMLX_MAX_NODES 262144		/* an alias counting as the nodes it names */
#define YAMLX_MAX_KEYS 256		/* in one mapping */
#define YAMLX_MAX_SCALAR 4096		/* bytes in one scalar, as PATH_MAX */
#define YAMLX_MAX_ANCHORS 256

/* Reads and parses the single document in path. Errors: the file cannot be
 * read (`path: strerror`), a bound above (`path:line: nesting deeper than
 * 64 levels`), YAML syntax, an empty file, several documents. */
int yamlx_load(struct yamlx *y, const char *path, struct errmsg *err);
/* The same from len bytes at buf (kept by the caller), which name names in
 * errors: a file sent over the control socket. */
int yamlx_load_buf(struct yamlx *y, const char *name, const char *buf, size_t len,
		   struct errmsg *err);
/* Reads a whole file of at most YAMLX_MAX_FILE bytes into *buf (malloc'd),
 * so that what is parsed is what is hashed. */
int yamlx_read(const char *path, char **buf, size_t *len, struct errmsg *err);
void yamlx_free(struct yamlx *y);
void yamlx_root(struct yamlx *y, struct yamlx_val *out);

static inline int yamlx_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

/* `path:line: reason`; returns -EINVAL. */
int yamlx_error(const struct yamlx *y, const yaml_node_t *n, struct errmsg *err, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
/* `path: out of memory`; returns -ENOMEM. */
int yamlx_nomem(const struct yamlx *y, struct errmsg *err);

/* Matches the keys of mapping v against fields[]: unknown and duplicate
 * keys are errors, a missing required key is reported at the mapping. */
int yamlx_fields(struct yamlx *y, const struct yamlx_val *v, struct yamlx_field *fields, int nr,
		 struct errmsg *err);

/* A non-empty scalar; *out points into the document. */
int yamlx_str(const struct yamlx *y, const struct yamlx_val *v, const char **out,
	      struct errmsg *err);
/* A non-empty scalar, copied: free *out. */
int yamlx_strdup(const struct yamlx *y, const struct yamlx_val *v, char **out, struct errmsg *err);
/* A copied name that name_valid(extra) accepts (spiffe.h); otherwise
 * `bad <kind> name "...": expected 1-63 characters of a-z, 0-9 and ...`. */
int yamlx_name(const struct yamlx *y, const struct yamlx_val *v, const char *kind,
	       const char *extra, char **out, struct errmsg *err);
/* true or false. */
int yamlx_bool(const struct yamlx *y, const struct yamlx_val *v, bool *out, struct errmsg *err);
/* A decimal number from min to max. */
int yamlx_uint(const struct yamlx *y, const struct yamlx_val *v, unsigned int min,
	       unsigned int max, unsigned int *out, struct errmsg *err);
/* "512", "64k", "10m", "1g" as nginx writes sizes; 1 byte to 1 GiB. */
int yamlx_size(const struct yamlx *y, const struct yamlx_val *v, uint64_t *out,
	       struct errmsg *err);

/* A list of at most max items. */
int yamlx_list(const struct yamlx *y, const struct yamlx_val *v, bool scalar_ok, int max,
	       struct yamlx_list *l, struct errmsg *err);
void yamlx_list_get(struct yamlx *y, const struct yamlx_list *l, int i, struct yamlx_val *out);
/* yamlx_list_get(), then yamlx_str() on the item. */
int yamlx_list_str(struct yamlx *y, const struct yamlx_list *l, int i, struct yamlx_val *item,
		   const char **out, struct errmsg *err);

/* Fills one element of an array yamlx_array() allocated. */
typedef int (*yamlx_elem_fn)(struct yamlx *y, const struct yamlx_val *item, void *elem, void *ctx,
			     struct errmsg *err);

/* Parses sequence v (at most max items) into a new zeroed array of item_size
 * elements, calling fn for each. *nr counts the element being parsed, so
 * the owner's free function also releases a half-filled one on error. */
int yamlx_array(struct yamlx *y, const struct yamlx_val *v, int max, size_t item_size,
		void **array, int *nr, yamlx_elem_fn fn, void *ctx, struct errmsg *err);

/* A mapping whose keys are non-empty, distinct scalars. */
int yamlx_map(struct yamlx *y, const struct yamlx_val *v, struct yamlx_map *m,
	      struct errmsg *err);
/* The i-th pair: returns the key, fills the value. */
const char *yamlx_map_get(struct yamlx *y, const struct yamlx_map *m, int i,
			  struct yamlx_val *value);

#endif
