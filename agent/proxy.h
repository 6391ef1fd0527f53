/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The outbound proxy: accepts connections the BPF redirect steered to the
 * agent's listener, recovers the original destination, connects upstream
 * and forwards bytes both ways. Single-threaded, epoll, non-blocking.
 *
 * Semantics a client sees:
 *  - bytes arrive in order and exactly once in both directions;
 *  - half-close is propagated: client shutdown(SHUT_WR) -> upstream sees
 *    EOF after all bytes, and the other direction keeps flowing;
 *  - an upstream that refuses, resets or cannot be reached resets the client
 *    (RST, not FIN), and vice versa;
 *  - a connection idle for idle_timeout_ms in both directions is reset;
 *  - at most PROXY_BUF_SIZE bytes are buffered per direction: a slow reader
 *    stops reading from the fast writer (backpressure).
 *
 * Idle flows are expired from a timer inside the proxy's epoll set, so the
 * caller needs no timer of its own: proxy_fd turns readable when one is due.
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stdint.h>
#include <sys/socket.h>

#include <sluice/maps.h>

#include "errmsg.h"

#define PROXY_BUF_SIZE (256 * 1024)

struct proxy;

struct proxy_ops {
	/* Finds the original destination of an accepted connection from its
	 * peer (the app socket's local address). Returns 0 or -ENOENT. */
	int (*lookup)(void *ctx, const struct sockaddr_storage *peer, struct sluice_orig_dst *out);
	/* Called with the upstream socket after socket() and before connect(),
	 * so the caller can link its cookie to the flow. May be NULL. */
	void (*upstream_created)(void *ctx, int fd, const struct sluice_orig_dst *dst);
	/* Called once per flow when both sides are closed. May be NULL.
	 * status: 0 clean, or the negative errno that ended the flow. */
	void (*flow_closed)(void *ctx, const struct sluice_orig_dst *dst, uint64_t bytes_up,
			    uint64_t bytes_down, uint64_t duration_ns, int status);
	void *ctx;
};

struct proxy_stats {
	uint64_t accepted;
	uint64_t active;
	uint64_t no_orig_dst;		/* accepted but not from a redirect */
	uint64_t upstream_failed;
	uint64_t idle_timeouts;
	uint64_t bytes_up;
	uint64_t bytes_down;
	uint64_t buffered;		/* bytes held in flow buffers now */
};

/*
 * Creates the proxy and binds its listeners (either address may be NULL, not
 * both). idle_timeout_ms 0 never expires flows.
 * Errors: -EADDRINUSE etc. with a message naming the address and the hint.
 */
int proxy_new(const struct sockaddr_storage *listen4, const struct sockaddr_storage *listen6,
	      unsigned int idle_timeout_ms, const struct proxy_ops *ops, struct proxy **out,
	      struct errmsg *err);

/* The epoll fd to wait on; call proxy_run_once when it is readable. The
 * caller may nest it in its own epoll instead of using proxy_run. */
int proxy_fd(const struct proxy *p);

/* The address a listener is bound to (its port when asked for port 0);
 * family is AF_INET or AF_INET6. -ENOENT when there is no such listener. */
int proxy_listen_addr(const struct proxy *p, int family, struct sockaddr_storage *out);

/* Handles every ready event without blocking, and expires idle flows. */
int proxy_run_once(struct proxy *p);
/* The same, first waiting up to timeout_ms (-1: until something happens).
 * An agent that has nothing else to wait on loops on this alone. */
int proxy_run(struct proxy *p, int timeout_ms);
/* Serves fd from the proxy's epoll: cb runs in proxy_run when fd is
 * readable. The fd stays the caller's; it must outlive the proxy or be
 * closed after proxy_free. */
int proxy_watch(struct proxy *p, int fd, void (*cb)(void *ctx), void *ctx);

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out);

/* Closes listeners and resets every open flow (flow_closed is called for
 * each with -ECONNABORTED). */
void proxy_free(struct proxy *p);

#endif
