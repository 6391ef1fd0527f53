/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Opening a file, then checking what was opened: the checks read the open
 * descriptor (fstat), never the path again, so a file renamed or replaced
 * between a check and the read (a Secret's swapped ..data link, or someone
 * racing the agent) is never read under another file's checks. Used for
 * the node key (pki.c), the workloads' OIDC secrets and keys (oidc.c) and
 * the config and policy files (yamlx.c).
 */
#ifndef SLUICE_FILEOPEN_H
#define SLUICE_FILEOPEN_H

#include <sys/stat.h>

#include "errmsg.h"

/* Opens path read-only and close-on-exec, and fills *st from the
 * descriptor. Returns the descriptor, or a negative errno. */
int fileopen_read(const char *path, struct stat *st);

/* Whether the file st describes may hold a key or a secret: a regular file
 * that neither its group nor others may read or write. 0, or -EINVAL (not a
 * regular file) or -EPERM, with the message "<what><path>: <why>", e.g.
 * "client secret file /s: mode 0640 is readable by its group: chmod 600 /s". */
int fileopen_private(const char *what, const char *path, const struct stat *st,
		     struct errmsg *err);

#endif
