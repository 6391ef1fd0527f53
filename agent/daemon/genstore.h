/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy generations the agent keeps on disk, so that which policy is
 * live survives a restart and rollback still has its target:
 *
 *   <run_dir>/policies/            mode 0700
 *     index.json                   the generations, the live and previous
 *                                  one, and the hashes below
 *     <generation>.yaml            each kept generation's policy, as sent
 *
 * Every change writes a new file beside the old and renames it over (after
 * fsync), so a crash leaves the old index or the new one, never half. The
 * last `control.history` generations are kept, and always the live and the
 * previous one.
 */
#ifndef SLUICE_GENSTORE_H
#define SLUICE_GENSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "errmsg.h"

#define SHA256_HEX_LEN 65		/* 64 hex digits and a NUL */

enum gen_source {
	GEN_FILE,			/* the config's policy: file, at start or SIGHUP */
	GEN_SOCKET,			/* policy apply over the control socket */
	GEN_CONFIG,			/* the live policy again, for a changed config */
};

struct gen_entry {
	uint32_t generation;
	int64_t time_ns;		/* wall clock, when it was first made live */
	enum gen_source source;
	bool has_peer;			/* source socket: who sent it */
	uint32_t uid, gid, pid;
	char *name;			/* the policy's file name, as errors call it */
	char sha256[SHA256_HEX_LEN];	/* of the content */
	char *summary;			/* policy_diff_summary() against the live one */
	char *content;			/* the policy; NULL when its file was lost */
	size_t len;
};

struct genstore {
	char *dir;
	unsigned int keep;
	struct gen_entry *gens;		/* oldest first */
	int nr;
	uint32_t live, previous;	/* 0: none */
	/* The content of the policy: file and of the config when a
	 * generation was last made from them: start and SIGHUP make a new
	 * generation only when these change. */
	char file_sha256[SHA256_HEX_LEN];
	char config_sha256[SHA256_HEX_LEN];
};

void sha256_hex(const void *buf, size_t len, char out[SHA256_HEX_LEN]);
const char *gen_source_name(enum gen_source s);

/* Opens (creating) <run_dir>/policies and reads its index if there is one.
 * A damaged index is -EINVAL, naming it and what to do. Any other error
 * leaves s usable in memory only (s->dir NULL): generations then do not
 * survive a restart. */
int genstore_open(struct genstore *s, const char *run_dir, unsigned int keep,
		  struct errmsg *err);
void genstore_free(struct genstore *s);

const struct gen_entry *genstore_find(const struct genstore *s, uint32_t generation);
/* The highest generation ever kept; 0 for none. */
uint32_t genstore_max(const struct genstore *s);
/* The content of a kept generation (owned by s). */
int genstore_content(const struct genstore *s, uint32_t generation, const char **buf,
		     size_t *len, struct errmsg *err);

/* Records e (copied) with its content as the live generation, the live one
 * before it as previous, and the hashes (NULL: unchanged); prunes. */
int genstore_add(struct genstore *s, const struct gen_entry *e, const char *content, size_t len,
		 const char *file_sha256, const char *config_sha256, struct errmsg *err);
/* A rollback: live and previous trade places. */
int genstore_swap(struct genstore *s, struct errmsg *err);

/* {"live": N, "previous": N|null, "generations": [newest first]} */
json_t *genstore_json(const struct genstore *s);
json_t *gen_entry_json(const struct gen_entry *e);

#endif
