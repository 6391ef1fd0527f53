// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl map: raw dumps of the pinned maps, decoded by layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define DUMP_WIDTH 100

struct dump_line {
	int col;
	bool fresh;			/* nothing after the label or indent yet */
};

static void dump_token(struct dump_line *l, const char *tok)
{
	int n = strlen(tok);

	if (!l->fresh && l->col + 1 + n > DUMP_WIDTH) {
		fputs("\n   ", stdout);
		l->col = 3;
	}
	printf(" %s", tok);
	l->col += n + 1;
	l->fresh = false;
}

/* Scalars as plain text; strings quoted only when they would not read as
 * one token. */
static void scalar_text(json_t *v, char *buf, size_t len)
{
	const char *s;
	char *quoted;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		if (*s && !strpbrk(s, " \t\n\"=")) {
			snprintf(buf, len, "%s", s);
			break;
		}
		quoted = json_dumps(v, JSON_ENCODE_ANY);
		snprintf(buf, len, "%s", quoted ? quoted : "?");
		free(quoted);
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_TRUE:
		snprintf(buf, len, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "false");
		break;
	default:
		snprintf(buf, len, "-");
		break;
	}
}

/* name=value tokens; nested objects as dst.addr=..., arrays as [a b c]. */
static void dump_fields(struct dump_line *l, json_t *obj, const char *prefix)
{
	char tok[1024], val[512];
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (json_is_object(v)) {
			char sub[128];

			snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
			dump_fields(l, v, sub);
			continue;
		}
		if (json_is_array(v)) {
			size_t i, off = 0;
			json_t *e;

			val[off++] = '[';
			json_array_foreach(v, i, e) {
				if (i && off < sizeof(val) - 1)
					val[off++] = ' ';
				scalar_text(e, val + off, sizeof(val) - off);
				off += strlen(val + off);
			}
			snprintf(val + off, sizeof(val) - off, "]");
		} else {
			scalar_text(v, val, sizeof(val));
		}
		snprintf(tok, sizeof(tok), "%s%s=%s", prefix, key, val);
		dump_token(l, tok);
	}
}

static void dump_plain_line(const char *label, json_t *obj)
{
	struct dump_line l = { .col = strlen(label), .fresh = true };

	fputs(label, stdout);
	dump_fields(&l, obj, "");
	putchar('\n');
}

static json_t *entry_json(const struct map_snap *s, size_t i)
{
	const struct map_def *def = s->def;
	json_t *values;

	if (!s->percpu)
		return json_pack("{s:o, s:o}", "key", def->key_json(snap_key(s, i)), "value",
				 def->value_json(snap_value(s, i, 0)));
	values = json_array();
	for (int cpu = 0; cpu < s->nr_cpus; cpu++)
		json_array_append_new(values,
				      json_pack("{s:i, s:o}", "cpu", cpu, "value",
						def->value_json(snap_value(s, i, cpu))));
	return json_pack("{s:o, s:o}", "key", def->key_json(snap_key(s, i)), "values", values);
}

static void entry_plain(json_t *entry)
{
	char label[48];
	json_t *values = json_object_get(entry, "values"), *v;
	size_t i;

	dump_plain_line("key:", json_object_get(entry, "key"));
	if (!values) {
		dump_plain_line("value:", json_object_get(entry, "value"));
		return;
	}
	json_array_foreach(values, i, v) {
		snprintf(label, sizeof(label), "value (CPU %02zu):", i);
		dump_plain_line(label, json_object_get(v, "value"));
	}
}

static int map_dump(int argc, char **argv)
{
	const struct map_def *def;
	struct map_snap snap;
	char names[256] = "";
	json_t *arr;
	int ret;

	ret = REQ_ARGS(1);
	if (ret)
		return ret;
	def = map_def_find(*argv);
	if (!def) {
		map_names(names, sizeof(names));
		return errmsg_set(&ctl_err, -ENOENT,
				  "no sluice map is called '%s'; valid names: %s", *argv, names);
	}
	NEXT_ARG();
	if (argc)
		return BAD_ARG();
	ret = map_snapshot(def->name, &snap);
	if (ret)
		return ret;

	arr = json_array();
	for (size_t i = 0; i < snap.nr; i++)
		json_array_append_new(arr, entry_json(&snap, i));
	if (json_output) {
		ret = print_json(arr);
	} else {
		size_t i;
		json_t *e;

		json_array_foreach(arr, i, e)
			entry_plain(e);
		printf("Found %zu element%s\n", snap.nr, snap.nr == 1 ? "" : "s");
		json_decref(arr);
	}
	map_snap_free(&snap);
	return ret;
}

static int map_help(int argc, char **argv)
{
	int col;

	if (json_output)
		return print_json(json_null());
	printf("Usage: %1$s map dump MAP\n"
	       "       %1$s map help\n"
	       "\n",
	       bin_name);
	col = printf("       MAP := {");
	for (int i = 0; i < NR_MAP_DEFS; i++) {
		const char *sep = i + 1 < NR_MAP_DEFS ? " |" : " }";

		if (col + 1 + (int)strlen(map_defs[i].name) + 2 > 78) {
			printf("\n%15s", "");
			col = 15;
		}
		col += printf(" %s%s", map_defs[i].name, sep);
	}
	printf("\n"
	       "\n"
	       "Dumps every entry of a pinned sluice map, decoded with the layout of\n"
	       "include/sluice/abi.h: addresses as text, ports in host order, enums by\n"
	       "name, padding left out. Per-CPU maps (violations) show one value per\n"
	       "possible CPU.\n");
	return 0;
}

static const struct cmd cmds[] = {
	{ "help", map_help },
	{ "dump", map_dump },
	{ 0 }
};

int do_map(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "map");
}
