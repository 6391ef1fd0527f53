/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every flow and tunnel handshake holds descriptors, and the soft limit is
 * often 1024 where the hard one allows far more: the agent raises it to
 * the hard limit at start and sizes its handshake caps from the result.
 */
#ifndef SLUICE_FDLIMIT_H
#define SLUICE_FDLIMIT_H

/* Raises RLIMIT_NOFILE's soft limit to the hard one, logging what it did;
 * returns the soft limit now (1024 when it cannot be read). */
unsigned long fd_limit_raise(void);

#endif
