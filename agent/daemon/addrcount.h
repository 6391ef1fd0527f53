/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A count per host address (the port ignored), for limits per source or
 * per peer: the proxy's tunnel handshakes in flight. The table is sized
 * once for at most max addresses counted at a time and never grows, so
 * nothing allocates on the accept path; slots are found by a hash seeded
 * at random, so a sender choosing its addresses cannot make them collide.
 */
#ifndef SLUICE_ADDRCOUNT_H
#define SLUICE_ADDRCOUNT_H

#include <stdbool.h>
#include <sys/socket.h>

struct addr_count;

/* A table for at most max addresses with a count above zero. -ENOMEM. */
int addr_count_new(unsigned int max, struct addr_count **out);
void addr_count_free(struct addr_count *c);

/* The count of ss's host address; 0 when it has none. */
unsigned int addr_count_get(const struct addr_count *c, const struct sockaddr_storage *ss);
/* One more for ss; -ENOSPC when max addresses are counted already. */
int addr_count_inc(struct addr_count *c, const struct sockaddr_storage *ss);
/* One less; an address that drops to zero frees its slot. */
void addr_count_dec(struct addr_count *c, const struct sockaddr_storage *ss);

/* Whether a and b (AF_INET or AF_INET6) name the same host. */
bool addr_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
