// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The bounds pre-check: one pass over a file's YAML events that refuses
 * more depth, nodes, keys, scalar bytes, anchors or documents than yamlx.h
 * allows, before libyaml's loader spends memory building the document.
 * Apart from yamlx.c because it walks events, not the loaded nodes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamlx.h"
#include "yamlx_int.h"

/* An anchor seen by the bounds check, and how many nodes an alias of it
 * stands for. */
struct anchor {
	char *name;
	unsigned long nodes;		/* 0 while its node is still open */
};

/* A mapping or sequence not closed yet. */
struct open_node {
	bool mapping;
	unsigned long children;
	unsigned long nodes_before;	/* the count when it started */
	int anchor;			/* index into anchors, or -1 */
};

struct bounds {
	const struct yamlx *y;
	const yaml_event_t *ev;		/* the event being checked, for its line */
	unsigned long nodes;
	int documents;
	int depth;
	struct open_node open[YAMLX_MAX_DEPTH];
	struct anchor anchors[YAMLX_MAX_ANCHORS];
	int nr_anchors;
};

static int bound_error(const struct bounds *b, struct errmsg *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bound_error(const struct bounds *b, struct errmsg *err, const char *fmt, ...)
{
	char reason[ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return errmsg_set(err, -EINVAL, "%s:%zu: %s", b->y->path, b->ev->start_mark.line + 1,
			  reason);
}

/* Remembers the anchor of a node of that many nodes (0: still open) in
 * *idx, or -1 when the node has none. */
static int anchor_add(struct bounds *b, const yaml_char_t *name, unsigned long nodes, int *idx,
		      struct errmsg *err)
{
	struct anchor *a;

	*idx = -1;
	if (!name)
		return 0;
	if (b->nr_anchors == YAMLX_MAX_ANCHORS)
		return bound_error(b, err, "more than %d anchors", YAMLX_MAX_ANCHORS);
	a = &b->anchors[b->nr_anchors];
	a->name = strdup((const char *)name);
	if (!a->name)
		return yamlx_nomem(b->y, err);
	a->nodes = nodes;
	*idx = b->nr_anchors++;
	return 0;
}

/* A redefined anchor names its latest node, as in the loader. */
static const struct anchor *anchor_find(const struct bounds *b, const yaml_char_t *name)
{
	for (int i = b->nr_anchors - 1; i >= 0; i--) {
		if (!strcmp(b->anchors[i].name, (const char *)name))
			return &b->anchors[i];
	}
	return NULL;
}

/* A node of n nodes (more than one for an alias) inside the open one. */
static int count_node(struct bounds *b, unsigned long n, struct errmsg *err)
{
	struct open_node *parent = b->depth ? &b->open[b->depth - 1] : NULL;

	b->nodes += n;
	if (b->nodes > YAMLX_MAX_NODES)
		return bound_error(b, err,
				   "more than %d nodes (an alias counts as the nodes it names)",
				   YAMLX_MAX_NODES);
	if (parent && parent->mapping && ++parent->children > 2 * YAMLX_MAX_KEYS)
		return bound_error(b, err, "more than %d keys in one mapping", YAMLX_MAX_KEYS);
	return 0;
}

static int open_collection(struct bounds *b, bool mapping, const yaml_char_t *anchor,
			   struct errmsg *err)
{
	struct open_node *o;
	int ret;

	if (b->depth == YAMLX_MAX_DEPTH)
		return bound_error(b, err, "nesting deeper than %d levels", YAMLX_MAX_DEPTH);
	o = &b->open[b->depth];
	*o = (struct open_node){ .mapping = mapping, .nodes_before = b->nodes };
	ret = count_node(b, 1, err);
	if (!ret)
		ret = anchor_add(b, anchor, 0, &o->anchor, err);
	if (!ret)
		b->depth++;
	return ret;
}

static void close_collection(struct bounds *b)
{
	struct open_node *o = &b->open[--b->depth];

	if (o->anchor >= 0)
		b->anchors[o->anchor].nodes = b->nodes - o->nodes_before;
}

static int scalar_event(struct bounds *b, struct errmsg *err)
{
	const yaml_event_t *ev = b->ev;
	int ret, idx;

	if (ev->data.scalar.length > YAMLX_MAX_SCALAR)
		return bound_error(b, err, "scalar longer than %d bytes", YAMLX_MAX_SCALAR);
	ret = count_node(b, 1, err);
	return ret ? ret : anchor_add(b, ev->data.scalar.anchor, 1, &idx, err);
}

/* An undefined alias counts as one node: the loader reports it. */
static int alias_event(struct bounds *b, struct errmsg *err)
{
	const yaml_char_t *name = b->ev->data.alias.anchor;
	const struct anchor *a = anchor_find(b, name);

	if (a && !a->nodes)
		return bound_error(b, err, "alias *%s inside the node it names",
				   (const char *)name);
	return count_node(b, a ? a->nodes : 1, err);
}

static int bounds_event(struct bounds *b, struct errmsg *err)
{
	const yaml_event_t *ev = b->ev;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		/* A second document would otherwise be ignored without a word. */
		if (++b->documents > 1)
			return bound_error(b, err, "more than one YAML document");
		return 0;
	case YAML_SCALAR_EVENT:
		return scalar_event(b, err);
	case YAML_ALIAS_EVENT:
		return alias_event(b, err);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(b, false, ev->data.sequence_start.anchor, err);
	case YAML_MAPPING_START_EVENT:
		return open_collection(b, true, ev->data.mapping_start.anchor, err);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		close_collection(b);
		return 0;
	default:
		return 0;
	}
}

/* One pass over the events, stopping at the first bound crossed, before the
 * loader builds anything: the events come as the scanner gets that far, so
 * a file 40,000 levels deep costs its first 65. */
int check_bounds(const struct yamlx *y, const char *buf, size_t len, struct errmsg *err)
{
	struct bounds *b;
	yaml_event_type_t type;
	yaml_parser_t parser;
	yaml_event_t ev;
	int ret = 0;

	b = calloc(1, sizeof(*b));
	if (!b || !yaml_parser_initialize(&parser)) {
		free(b);
		return yamlx_nomem(y, err);
	}
	b->y = y;
	b->ev = &ev;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	do {
		if (!yaml_parser_parse(&parser, &ev)) {
			ret = syntax_error(y, &parser, buf, len, err);
			break;
		}
		ret = bounds_event(b, err);
		type = ev.type;
		yaml_event_delete(&ev);
	} while (!ret && type != YAML_STREAM_END_EVENT);
	yaml_parser_delete(&parser);
	for (int i = 0; i < b->nr_anchors; i++)
		free(b->anchors[i].name);
	free(b);
	return ret;
}
