/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* An error message composed where the error is found and printed once, at
 * the edge (main), e.g. `policy.yaml:14: unknown service "warehous"`. */
#ifndef SLUICE_ERRMSG_H
#define SLUICE_ERRMSG_H

#define ERRMSG_LEN 512

struct errmsg {
	char msg[ERRMSG_LEN];
};

/* Formats the message into e (if non-NULL) and returns err, which must be
 * a negative errno, so callers can `return errmsg_set(e, -EINVAL, ...)`. */
int errmsg_set(struct errmsg *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
