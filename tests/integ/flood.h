/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A flood: N TCP connections from a namespace to one address, opened
 * non-blocking from a thread of their own (setns() moves only the calling
 * thread) and then held idle, or stopped partway into a message, for the
 * peer to time out or reset.
 */
#ifndef SL_FLOOD_H
#define SL_FLOOD_H

#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>

struct flood {
	const char *ns;			/* the namespace they connect from */
	struct sockaddr_storage dst;	/* AF_INET */
	int nr;				/* connections to open */
	/* Sent on connect by every other connection (odd indexes), so half
	 * of them stop inside a message; NULL: all stay silent. */
	const void *partial;
	size_t partial_len;
	int connect_ms;			/* how long the connects may take */
	int *fds;
	int opened;			/* sockets made */
	int connected;			/* whose connect() completed */
	int err;			/* the first failure, -errno */
	long long done_ms;		/* when the last connect completed */
	pthread_t th;
};

/* Starts opening the flood in a thread: -errno when it could not start.
 * flood_join() waits for it; then fl->err says whether every socket was
 * made and fl->connected how many connected. */
int flood_start(struct flood *fl);
void flood_join(struct flood *fl);
/* Its connections the peer has closed: EOF or reset. */
int flood_closed(const struct flood *fl);
/* Its connections the peer has reset. */
int flood_reset(const struct flood *fl);
/* Closes every connection and frees fds; fl itself stays the caller's. */
void flood_free(struct flood *fl);

#endif
