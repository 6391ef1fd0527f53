// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "fileopen.h"
#include "spiffe.h"
#include "yamlx.h"
#include "yamlx_int.h"

static const char *node_type_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "scalar";
	case YAML_SEQUENCE_NODE:
		return "sequence";
	case YAML_MAPPING_NODE:
		return "mapping";
	default:
		return "empty node";
	}
}

int yamlx_error(const struct yamlx *y, const yaml_node_t *n, struct errmsg *err, const char *fmt,
		...)
{
	char reason[ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return errmsg_set(err, -EINVAL, "%s:%d: %s", y->path, yamlx_line(n), reason);
}

int yamlx_nomem(const struct yamlx *y, struct errmsg *err)
{
	return errmsg_set(err, -ENOMEM, "%s: out of memory", y->path);
}

static int too_large(const char *path, struct errmsg *err)
{
	return errmsg_set(err, -EFBIG, "%s: larger than %d MiB", path, YAMLX_MAX_FILE >> 20);
}

/* At most YAMLX_MAX_FILE bytes: a regular file is refused on its size, and
 * anything else (a pipe, a device) once it has said more. */
static int read_file(const char *path, char **bufp, size_t *lenp, struct errmsg *err)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *nbuf;
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = fileopen_read(path, &st);
	if (fd < 0)
		return errmsg_set(err, fd, "%s: %s", path, strerror(-fd));
	if (S_ISREG(st.st_mode) && st.st_size > YAMLX_MAX_FILE) {
		ret = too_large(path, err);
		goto fail;
	}
	for (;;) {
		if (len == cap) {
			if (cap > YAMLX_MAX_FILE) {
				ret = too_large(path, err);
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > YAMLX_MAX_FILE + 1)
				cap = YAMLX_MAX_FILE + 1;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				ret = errmsg_set(err, -ENOMEM, "%s: out of memory", path);
				goto fail;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			errmsg_set(err, ret, "%s: %s", path, strerror(-ret));
			goto fail;
		}
		if (!n)
			break;
		len += n;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return ret;
}

int syntax_error(const struct yamlx *y, const yaml_parser_t *p, const char *buf,
		 size_t len, struct errmsg *err)
{
	size_t line = 1, i;

	if (p->error == YAML_MEMORY_ERROR)
		return yamlx_nomem(y, err);
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		for (i = 0; i < p->problem_offset && i < len; i++)
			line += buf[i] == '\n';
		return errmsg_set(err, -EINVAL, "%s:%zu: YAML syntax error: %s", y->path, line,
				  p->problem);
	}
	if (p->context)
		return errmsg_set(err, -EINVAL,
				  "%s:%zu: YAML syntax error: %s (%s that started at line %zu)",
				  y->path, p->problem_mark.line + 1, p->problem, p->context,
				  p->context_mark.line + 1);
	return errmsg_set(err, -EINVAL, "%s:%zu: YAML syntax error: %s", y->path,
			  p->problem_mark.line + 1, p->problem);
}

int yamlx_load_buf(struct yamlx *y, const char *path, const char *buf, size_t len,
		   struct errmsg *err)
{
	yaml_parser_t parser;
	yaml_node_t *root;
	int ret;

	memset(y, 0, sizeof(*y));
	y->path = path;
	if (len > YAMLX_MAX_FILE)
		return too_large(path, err);
	ret = check_bounds(y, buf, len, err);
	if (ret)
		return ret;
	if (!yaml_parser_initialize(&parser))
		return yamlx_nomem(y, err);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		ret = syntax_error(y, &parser, buf, len, err);
		goto out;
	}
	y->loaded = true;
	/* A lone "---" loads as an empty scalar. */
	root = yaml_document_get_root_node(&y->doc);
	if (!root || (root->type == YAML_SCALAR_NODE && !root->data.scalar.length))
		ret = errmsg_set(err, -EINVAL, "%s:%zu: empty document", path,
				 y->doc.start_mark.line + 1);
out:
	yaml_parser_delete(&parser);
	if (ret)
		yamlx_free(y);
	return ret;
}

int yamlx_read(const char *path, char **buf, size_t *len, struct errmsg *err)
{
	return read_file(path, buf, len, err);
}

int yamlx_load(struct yamlx *y, const char *path, struct errmsg *err)
{
	size_t len = 0;
	char *buf = NULL;
	int ret;

	memset(y, 0, sizeof(*y));
	y->path = path;
	ret = read_file(path, &buf, &len, err);
	if (!ret)
		ret = yamlx_load_buf(y, path, buf, len, err);
	free(buf);
	return ret;
}

void yamlx_free(struct yamlx *y)
{
	if (y->loaded)
		yaml_document_delete(&y->doc);
	y->loaded = false;
}

void yamlx_root(struct yamlx *y, struct yamlx_val *out)
{
	out->node = yaml_document_get_root_node(&y->doc);
	snprintf(out->what, sizeof(out->what), "the document");
}

static int expect_type(const struct yamlx *y, const struct yamlx_val *v, yaml_node_type_t type,
		       struct errmsg *err)
{
	static const char *const names[] = {
		[YAML_SCALAR_NODE] = "scalar",
		[YAML_SEQUENCE_NODE] = "sequence",
		[YAML_MAPPING_NODE] = "mapping",
	};

	if (v->node->type == type)
		return 0;
	if (v->node->type == YAML_SCALAR_NODE && !v->node->data.scalar.length)
		return yamlx_error(y, v->node, err, "missing value for %s", v->what);
	return yamlx_error(y, v->node, err, "expected a %s for %s, got a %s", names[type], v->what,
			   node_type_name(v->node));
}

int yamlx_str(const struct yamlx *y, const struct yamlx_val *v, const char **out,
	      struct errmsg *err)
{
	const yaml_node_t *n = v->node;
	int ret;

	ret = expect_type(y, v, YAML_SCALAR_NODE, err);
	if (ret)
		return ret;
	if (!n->data.scalar.length)
		return yamlx_error(y, n, err, "missing value for %s", v->what);
	/* A quoted "\0" would silently cut the C string short. */
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return yamlx_error(y, n, err, "NUL character in %s", v->what);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

int yamlx_strdup(const struct yamlx *y, const struct yamlx_val *v, char **out, struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	*out = strdup(s);
	return *out ? 0 : yamlx_nomem(y, err);
}

int yamlx_name(const struct yamlx *y, const struct yamlx_val *v, const char *kind,
	       const char *extra, char **out, struct errmsg *err)
{
	char chars[64] = "a-z, 0-9";
	size_t n = strlen(chars);
	int ret;

	ret = yamlx_strdup(y, v, out, err);
	if (ret || name_valid(*out, extra))
		return ret;
	for (const char *c = extra; *c && n < sizeof(chars) - 8; c++)
		n += snprintf(chars + n, sizeof(chars) - n, "%s'%c'", c[1] ? ", " : " and ", *c);
	return yamlx_error(y, v->node, err, "bad %s name \"%s\": expected 1-63 characters of %s",
			   kind, *out, chars);
}

int yamlx_bool(const struct yamlx *y, const struct yamlx_val *v, bool *out, struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	if (!strcmp(s, "true"))
		*out = true;
	else if (!strcmp(s, "false"))
		*out = false;
	else
		return yamlx_error(y, v->node, err,
				   "bad value \"%s\" for %s: expected true or false", s, v->what);
	return 0;
}

int yamlx_uint(const struct yamlx *y, const struct yamlx_val *v, unsigned int min,
	       unsigned int max, unsigned int *out, struct errmsg *err)
{
	unsigned long long n = 0;
	const char *s, *p;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	for (p = s; *p >= '0' && *p <= '9' && n <= max; p++)
		n = n * 10 + (*p - '0');
	if (p == s || *p || n < min || n > max)
		return yamlx_error(y, v->node, err,
				   "bad value \"%s\" for %s: expected a whole number from %u to %u",
				   s, v->what, min, max);
	*out = n;
	return 0;
}

int yamlx_size(const struct yamlx *y, const struct yamlx_val *v, uint64_t *out,
	       struct errmsg *err)
{
	uint64_t n = 0, mult = 1;
	const char *s, *p;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	for (p = s; *p >= '0' && *p <= '9' && n <= 1ull << 30; p++)
		n = n * 10 + (*p - '0');
	if (*p == 'k' || *p == 'K')
		mult = 1ull << 10;
	else if (*p == 'm' || *p == 'M')
		mult = 1ull << 20;
	else if (*p == 'g' || *p == 'G')
		mult = 1ull << 30;
	if (p == s || (mult > 1 && *++p) || (mult == 1 && *p))
		return yamlx_error(y, v->node, err, "bad size \"%s\" for %s: %s", s, v->what,
				   "expected a number with an optional k, m or g");
	if (!n || n > (1ull << 30) / mult)
		return yamlx_error(y, v->node, err, "size \"%s\" for %s: %s", s, v->what,
				   "expected 1 byte to 1g");
	*out = n * mult;
	return 0;
}

int yamlx_list(const struct yamlx *y, const struct yamlx_val *v, bool scalar_ok, int max,
	       struct yamlx_list *l, struct errmsg *err)
{
	yaml_node_t *n = v->node;
	int ret;

	memset(l, 0, sizeof(*l));
	if (scalar_ok && n->type == YAML_SCALAR_NODE && n->data.scalar.length) {
		l->single = n;
		l->nr = 1;
		snprintf(l->item_what, sizeof(l->item_what), "%s", v->what);
		return 0;
	}
	ret = expect_type(y, v, YAML_SEQUENCE_NODE, err);
	if (ret)
		return ret;
	l->items = n->data.sequence.items.start;
	l->nr = n->data.sequence.items.top - n->data.sequence.items.start;
	snprintf(l->item_what, sizeof(l->item_what), "an item of %.50s", v->what);
	if (l->nr > max)
		return yamlx_error(y, n, err, "too many items in %s (%d, max %d)", v->what, l->nr,
				   max);
	return 0;
}

void yamlx_list_get(struct yamlx *y, const struct yamlx_list *l, int i, struct yamlx_val *out)
{
	out->node = l->single ? l->single : yaml_document_get_node(&y->doc, l->items[i]);
	snprintf(out->what, sizeof(out->what), "%s", l->item_what);
}

int yamlx_list_str(struct yamlx *y, const struct yamlx_list *l, int i, struct yamlx_val *item,
		   const char **out, struct errmsg *err)
{
	yamlx_list_get(y, l, i, item);
	return yamlx_str(y, item, out, err);
}

int yamlx_array(struct yamlx *y, const struct yamlx_val *v, int max, size_t item_size,
		void **array, int *nr, yamlx_elem_fn fn, void *ctx, struct errmsg *err)
{
	struct yamlx_val item;
	struct yamlx_list l;
	int ret, i;

	ret = yamlx_list(y, v, false, max, &l, err);
	if (ret || !l.nr)
		return ret;
	*array = calloc(l.nr, item_size);
	if (!*array)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		yamlx_list_get(y, &l, i, &item);
		*nr = i + 1;
		ret = fn(y, &item, (char *)*array + i * item_size, ctx, err);
		if (ret)
			return ret;
	}
	return 0;
}

int yamlx_map(struct yamlx *y, const struct yamlx_val *v, struct yamlx_map *m,
	      struct errmsg *err)
{
	struct yamlx_val key;
	yaml_node_t *k, *prev;
	const char *s;
	int ret, i, j;

	ret = expect_type(y, v, YAML_MAPPING_NODE, err);
	if (ret)
		return ret;
	m->pairs = v->node->data.mapping.pairs.start;
	m->nr = v->node->data.mapping.pairs.top - m->pairs;
	snprintf(key.what, sizeof(key.what), "a key of %.50s", v->what);
	for (i = 0; i < m->nr; i++) {
		key.node = k = yaml_document_get_node(&y->doc, m->pairs[i].key);
		ret = yamlx_str(y, &key, &s, err);
		if (ret)
			return ret;
		/* libyaml keeps duplicate keys; the last one would win unseen. */
		for (j = 0; j < i; j++) {
			prev = yaml_document_get_node(&y->doc, m->pairs[j].key);
			if (!strcmp((const char *)prev->data.scalar.value, s))
				return yamlx_error(y, k, err,
						   "duplicate key \"%s\" (first at line %d)", s,
						   yamlx_line(prev));
		}
	}
	return 0;
}

const char *yamlx_map_get(struct yamlx *y, const struct yamlx_map *m, int i,
			  struct yamlx_val *value)
{
	yaml_node_t *k = yaml_document_get_node(&y->doc, m->pairs[i].key);
	const char *key = (const char *)k->data.scalar.value;

	value->node = yaml_document_get_node(&y->doc, m->pairs[i].value);
	snprintf(value->what, sizeof(value->what), "\"%s\"", key);
	return key;
}

int yamlx_fields(struct yamlx *y, const struct yamlx_val *v, struct yamlx_field *fields, int nr,
		 struct errmsg *err)
{
	struct yamlx_val value;
	struct yamlx_map m;
	const char *key;
	yaml_node_t *k;
	int ret, i, j;

	ret = yamlx_map(y, v, &m, err);
	if (ret)
		return ret;
	for (j = 0; j < nr; j++)
		fields[j].v.node = fields[j].key_node = NULL;
	for (i = 0; i < m.nr; i++) {
		key = yamlx_map_get(y, &m, i, &value);
		for (j = 0; j < nr && strcmp(fields[j].key, key); j++)
			;
		k = yaml_document_get_node(&y->doc, m.pairs[i].key);
		if (j == nr)
			return yamlx_error(y, k, err, "unknown key \"%s\"", key);
		fields[j].key_node = k;
		fields[j].v = value;
	}
	for (j = 0; j < nr; j++) {
		if (fields[j].required && !fields[j].v.node)
			return yamlx_error(y, v->node, err, "missing required key \"%s\"",
					   fields[j].key);
	}
	return 0;
}
