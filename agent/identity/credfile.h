/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The credential view: sluiced rewrites <run_dir>/credentials.json whenever
 * one of its credentials changes (loaded, refreshed, expired, failed), and
 * `sluicectl cred list` reads it, so each credential's expiry can be seen
 * without talking to the agent. It holds no secrets: names, sources, times
 * and states only, and error texts with anything token-shaped cut out. Mode
 * 0644: reading it needs no privileges.
 *
 *   {
 *     "version": 1,
 *     "node": "node-a",
 *     "written": 1764003600,
 *     "credentials": [
 *       {
 *         "kind": "node-cert",
 *         "name": "spiffe://acme.example/node/node-a",
 *         "source": "file",
 *         "state": "valid",
 *         "not_after": 1764090000,
 *         "updated": 1764003600,
 *         "error": null
 *       },
 *       ...
 *     ],
 *     "audit": {
 *       "log": "/run/sluice/audit.jsonl",
 *       "lines_lost": 0,
 *       "error": null
 *     }
 *   }
 *
 * kind      "ca", "node-cert", "token" (a workload's), "jwks" (an IdP's)
 * name      a SPIFFE ID (the CA's is spiffe://TD), or the JWKS URL
 * source    "file" (read from disk), "embedded" (minted by the agent),
 *           "oidc" (from the IdP)
 * state     "valid", "expired", "pending" (not obtained yet), "failed"
 *           (the last refresh failed; a cached credential may still be in
 *           use until not_after: see error)
 * not_after when it stops being usable, wall-clock seconds since the epoch;
 *           null when it has no expiry (a JWKS)
 * updated   when it was last obtained or refreshed; null if never
 * error     the last failure, or null
 * written   when the agent wrote the file
 * audit     the audit log (docs/audit.md): its path, the decisions that could
 *           not be written to it since the agent started, and why the last
 *           one could not (null: none was lost); absent without one
 *
 * Entries keep the agent's order. A reader ignores members it does not know;
 * a new version number means an incompatible change.
 */
#ifndef SLUICE_CREDFILE_H
#define SLUICE_CREDFILE_H

#include <stdint.h>
#include <jansson.h>

#include "errmsg.h"

#define CREDFILE_VERSION 1
#define CREDFILE_NAME "credentials.json"
/* The agent's default run_dir (config.h), where the file is. */
#define CREDFILE_DEFAULT_DIR "/run/sluice"
/* Larger files are refused by the reader. */
#define CREDFILE_MAX_SIZE (1 << 20)
/* Times are Unix seconds up to 9999-12-31T23:59:59Z: readers subtract them
 * from the clock, which must not overflow. */
#define CREDFILE_TIME_MAX 253402300799LL

enum cred_kind {
	CRED_CA = 1,
	CRED_NODE_CERT,
	CRED_TOKEN,
	CRED_JWKS,
};

struct cred_entry {
	enum cred_kind kind;
	const char *name;	/* SPIFFE ID or URL, not empty */
	const char *source;	/* "file", "embedded", "oidc" */
	const char *state;	/* "valid", "expired", "pending", "failed" */
	int64_t not_after;	/* wall-clock seconds; 0: no expiry */
	int64_t updated;	/* wall-clock seconds of the last refresh; 0: never */
	const char *error;	/* the last failure; NULL or "": none */
};

/* The audit log, as the "audit" member says it. */
struct cred_audit {
	const char *log;
	uint64_t lines_lost;
	const char *error;	/* NULL: no line was lost */
};

/* "ca", "node-cert", "token", "jwks"; NULL for anything else. */
const char *cred_kind_name(enum cred_kind kind);

/*
 * Writes the nr entries of node, and audit unless it is NULL, as the file at
 * path: to a temporary file beside it, flushed to disk, then renamed over
 * path, so a reader sees the old document or the new one and never half of
 * one. now is the "written" time (0: time(NULL)). -EINVAL, with the entry
 * named, for an unknown kind, source or state or an empty name; -errno when
 * the file cannot be written.
 */
int credfile_write(const char *path, const char *node, const struct cred_entry *e, int nr,
		   const struct cred_audit *audit, int64_t now, struct errmsg *err);

/*
 * Reads and checks the file at path: version CREDFILE_VERSION, a "node"
 * string and a "credentials" array of objects, each with the string members
 * kind, name, source and state, and an "audit" member, when there is one,
 * with a "log" string and a "lines_lost" number. Returns 0 with *out the document (release it
 * with json_decref()), -ENOENT when there is no file, -EINVAL for a file that
 * is not such a document, -EFBIG beyond CREDFILE_MAX_SIZE, -errno otherwise.
 */
int credfile_read(const char *path, json_t **out, struct errmsg *err);

#endif
