/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluicectl internals: global options, bpftool-style command dispatch, the
 * pinned-map registry and snapshots every object reads, and the formatting
 * shared by the plain and JSON printers.
 *
 * Commands return 0 or a negative errno with the message in ctl_err; main
 * prints it once, as `Error: ...` on stderr or `{"error": "..."}` on stdout.
 * JSON documents are built whole and printed at the end, so an error never
 * leaves half a document on stdout.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <jansson.h>
#include <linux/bpf.h>
#include <linux/types.h>

#include <sluice/abi.h>

#include "clock.h"
#include "ctlproto.h"
#include "errmsg.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

extern bool json_output;
extern bool pretty_output;
extern const char *pin_path;
/* The agent's control socket (-S, $SLUICE_CONTROL_SOCKET). */
#define CTL_DEFAULT_SOCKET "/run/sluice/ctl/control.sock"
extern const char *control_path;
extern const char *bin_name;
extern struct errmsg ctl_err;

struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
};

/* What a command returns after printing its whole answer when the exit
 * status must still say it failed (`policy test` with a failing case):
 * main exits 1 and prints no error. */
#define CTL_FAILED 1

/*
 * Runs the command argv[0] names, by exact name or unambiguous prefix, with
 * the arguments after it; no argument runs cmds[0]. obj names the object for
 * the hint in the error ("see 'sluicectl flow help'"), NULL at top level.
 */
int cmd_select(const struct cmd *cmds, int argc, char **argv, const char *obj);

#define NEXT_ARG() ({ argc--; argv++; })
#define BAD_ARG() errmsg_set(&ctl_err, -EINVAL, "what is '%s'?", *argv)
/* Fails unless cnt more arguments follow the keyword in argv[-1]. */
#define REQ_ARGS(cnt)                                                                              \
	({                                                                                         \
		int _cnt = (cnt);                                                                  \
		argc < _cnt ? errmsg_set(&ctl_err, -EINVAL, "'%s' needs %d argument%s", argv[-1],  \
					 _cnt, _cnt == 1 ? "" : "s")                               \
			    : 0;                                                                   \
	})

/* The arguments FILE [-c|--config CONFIG] of commands that read a policy
 * (and, optionally, the config it goes with): *config NULL when not
 * given. */
int parse_file_config(int argc, char **argv, const char **file, const char **config);

/* Prints an object's help on stdout; JSON mode prints null, as bpftool. */
int print_help(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints doc (and drops the reference): compact, or indented with -p. */
int print_json(json_t *doc);
/* Integers above INT64_MAX do not occur in our counters; jansson is signed. */
json_t *json_u64(__u64 v);
/* null where there is no value yet (no samples, never started). */
json_t *json_u64_or_null(bool set, __u64 v);
/* A name from the names map: null for id 0, else the name or its fallback. */
json_t *json_name(__u32 kind, __u32 id);

/* Aligned plain tables: a header row, two spaces between columns. */
struct table_col {
	const char *header;
	bool right;
};

struct table {
	const struct table_col *cols;
	int nr_cols;
	char **cells;
	size_t nr_rows;
	size_t cap_rows;
};

void table_init(struct table *t, const struct table_col *cols, int nr_cols);
/* Adds one row: nr_cols strings, copied. */
int table_add(struct table *t, ...);
void table_print(const struct table *t);
void table_free(struct table *t);

/* Formatting. Addresses and ports are in network order as in the maps. */
char *fmt_addr(int family, const __u32 *addr, char *buf, size_t len);
char *fmt_endpoint(int family, const __u32 *addr, __u16 port, char *buf, size_t len);
char *fmt_duration(__u64 ns, char *buf, size_t len);
char *fmt_u64(__u64 v, char *buf, size_t len);
/* How long until not_after (wall clock), "expired 3m4s ago" once past. */
char *fmt_expires_in(time_t not_after, time_t now, char *buf, size_t len);
const char *family_name(int family);
const char *proto_name(__u8 proto);
const char *flow_state_name(__u32 state);
const char *fail_mode_name(__u32 mode);
const char *name_kind_name(__u32 kind);

/* Three-way comparison for qsort callbacks: -1, 0 or 1. */
int cmp_u64(__u64 a, __u64 b);

/* now - then, 0 for a timestamp in the future or never set. */
__u64 age_ns(__u64 now, __u64 then);

/* The maps sluiced pins, with the layouts this build expects. */
struct map_def {
	const char *name;
	enum bpf_map_type type;
	__u32 key_size;
	__u32 value_size;
	json_t *(*key_json)(const void *key);
	json_t *(*value_json)(const void *value);
};

/* Every map in bpf/lib/maps.h; the definition's size must match. */
#define NR_MAP_DEFS 15
extern const struct map_def map_defs[NR_MAP_DEFS];

const struct map_def *map_def_find(const char *name);
/* Appends the valid map names, comma separated, to buf. */
void map_names(char *buf, size_t len);
/*
 * Opens <pin_path>/<def->name> and checks its type and key/value sizes.
 * The error says what to do (is sluiced running, -P, run as root, ABI).
 */
int map_open(const struct map_def *def, int *fd);
int map_open_name(const char *name, int *fd);
/* Reads sluice_cfg[0]. */
int sluice_cfg_read(struct sluice_config *cfg);
/* Counts the entries by walking the keys; max_entries from the kernel. */
int map_count(int fd, const struct map_def *def, __u32 *count, __u32 *max_entries);

/*
 * A copy of every entry of a map, deduplicated by key (a hash walk restarts
 * when the key it stands on is deleted). Per-CPU maps hold nr_cpus values
 * per entry.
 */
struct map_snap {
	const struct map_def *def;
	unsigned char *recs;
	size_t nr;
	size_t rec_size;
	size_t val_off;
	size_t val_stride;
	bool percpu;
	int nr_cpus;			/* values per entry: 1 unless percpu */
};

int map_snapshot(const char *name, struct map_snap *snap);
void map_snap_free(struct map_snap *snap);

static inline const void *snap_key(const struct map_snap *s, size_t i)
{
	return s->recs + i * s->rec_size;
}

static inline const void *snap_value(const struct map_snap *s, size_t i, int cpu)
{
	return s->recs + i * s->rec_size + s->val_off + (size_t)cpu * s->val_stride;
}

/*
 * Turns a snapshot of map name into rows for a table: fill() decodes entry
 * i into a zeroed row of row_size bytes and returns false to skip it. Rows
 * are appended to *rows (realloc'd, free() them) and all are sorted with
 * cmp. Opens the names map too, so fill() can use ctl_name().
 */
typedef bool (*row_fill_fn)(const struct map_snap *s, size_t i, void *row, void *ctx);
int map_rows(const char *name, size_t row_size, row_fill_fn fill, void *ctx,
	     int (*cmp)(const void *, const void *), void **rows, size_t *nr);

/* The names map, opened once; names_lookup() through it. */
int ctl_names_open(void);
int ctl_name(__u32 kind, __u32 id, char *buf, size_t len);

/* The path of cgroup id relative to the cgroup2 mount ("/a/b"),
 * or -errno when it is gone or there is no cgroup2 mount. */
int cgroup_id_path(__u64 id, char *buf, size_t len);

/*
 * Sends one request over the control socket and waits for the answer:
 * 0 with *result (a new reference), or a negative errno with the message
 * in ctl_err: the agent's refusal, or why it could not be asked.
 */
int ctl_request(enum ctl_cmd cmd, json_t *args, json_t **result);

int do_status(int argc, char **argv);
int do_workload(int argc, char **argv);
int do_flow(int argc, char **argv);
int do_audit(int argc, char **argv);
int do_top(int argc, char **argv);
int do_violation(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_service(int argc, char **argv);
int do_policy(int argc, char **argv);
int do_map(int argc, char **argv);
int do_ca(int argc, char **argv);
int do_cred(int argc, char **argv);
int do_edge(int argc, char **argv);

#endif
