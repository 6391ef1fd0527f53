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
 *  - a connection idle for idle_timeout_ms in both directions is reset, if
 *    that is set; otherwise idle connections live as long as TCP keepalive
 *    (proxy_set_keepalive) finds both peers there;
 *  - at most PROXY_BUF_SIZE bytes are buffered per direction: a slow reader
 *    stops reading from the fast writer (backpressure).
 *
 * Idle flows are expired from a timer inside the proxy's epoll set, so the
 * caller needs no timer of its own: proxy_fd turns readable when one is due.
 *
 * Tunnels (docs/tunnel.md): ops->route may send an outbound flow through a
 * TLS connection to a peer agent instead. The proxy connects, completes the
 * handshake, lets ops->tunnel_ready check the peer, sends the OPEN frame
 * route gave it and reads the VERDICT; only an allow lets the client's
 * bytes through (they wait in the ring until then), a deny resets the
 * client. On the inbound side the proxy accepts on the tunnel listener,
 * completes the handshake, reads one OPEN frame and asks ops->authorize;
 * an allow connects to the local destination and answers the VERDICT once
 * that connection is up, a deny (or a refused local connection) answers a
 * deny VERDICT and closes. Frames that cannot be read are refused with a
 * reason (frame.h) through ops->tunnel_refused, never read past
 * FRAME_MAX_PAYLOAD. Each inbound connection is told to the ops once, for
 * one audit line: refused (tunnel_refused), denied (authorize), or allowed
 * and then closed (flow_closed, after setup_failed when its bytes never
 * got to flow); a VERDICT that cannot be sent after that adds nothing.
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include <sluice/abi.h>

#include "addr.h"
#include "errmsg.h"
#include "frame.h"
#include "keepalive.h"

#define PROXY_BUF_SIZE (256 * 1024)

struct proxy;
struct http_gate;

/* Where an outbound flow goes: ssl NULL means straight to its original
 * destination. */
struct proxy_route {
	SSL *ssl;			/* client SSL for the tunnel, owned by the proxy */
	struct sockaddr_storage peer;	/* the peer agent's tunnel address */
	uint8_t *open;			/* the OPEN frame, malloc'd; the proxy wipes */
	size_t open_len;		/* and frees it */
	void *flow_ctx;			/* handed back to the callbacks below */
	/* The requests' gate, to a protocol: http service (the proxy owns
	 * it); NULL: bytes only. */
	struct http_gate *gate;
};

/* The inbound decision on an OPEN frame. */
struct proxy_authz {
	bool allow;
	struct sockaddr_storage dst;	/* allow: the local destination */
	struct frame_verdict verdict;	/* deny: sent as is; allow: reason and
					 * rule, sent once dst is connected */
	/* allow, to a protocol: http service: the gate its requests go
	 * through (the proxy owns it); NULL: bytes only. */
	struct http_gate *gate;
	void *flow_ctx;
};

/* How a proxied flow ended, for its audit line and span. */
struct flow_end {
	uint64_t bytes_up, bytes_down, duration_ns;
	int status;			/* 0, or the negative errno that ended it */
	uint32_t connect_us;		/* its upstream's, from sockops; 0: unknown */
	uint32_t srtt_us;		/* its upstream's smoothed RTT (TCP_INFO) */
};

/* How a tunnel's TLS handshake ended, for proxy_ops.handshake_done. */
enum proxy_hs_result {
	PROXY_HS_OK,
	PROXY_HS_FAILED,		/* TLS said no (certificate, protocol) */
	PROXY_HS_TIMEOUT,		/* tunnel.handshake_timeout passed */
	PROXY_HS_DROPPED,		/* the oldest, dropped at the in-flight cap */
	PROXY_HS_ABORTED,		/* the flow ended for another reason first */
	PROXY_HS_NR,
};

struct proxy_ops {
	/* Finds the original destination of an accepted connection from its
	 * peer (the app socket's local address). Returns 0 or -ENOENT. */
	int (*lookup)(void *ctx, const struct sockaddr_storage *peer, struct sluice_orig_dst *out);
	/* Called with the upstream socket after socket() and before connect(),
	 * so the caller can link its cookie to the flow. May be NULL. */
	void (*upstream_created)(void *ctx, int fd, const struct sluice_orig_dst *dst);
	/* Called once per flow as it ends, just before both sides are
	 * closed: the sockets' BPF records (sockops' flow) are still there
	 * for an application that has not closed yet. May be NULL.
	 * status: 0 clean, or the negative errno that ended the flow.
	 * flow_ctx is what route or authorize set (NULL otherwise); the
	 * callee owns it from here. */
	void (*flow_closed)(void *ctx, void *flow_ctx, const struct sluice_orig_dst *dst,
			    const struct flow_end *e);
	/* Outbound: the upstream connect completed; may set *connect_us
	 * (sockops' SYN to established), which flow_end then carries. May
	 * be NULL. */
	void (*upstream_connected)(void *ctx, const struct sluice_orig_dst *dst,
				   uint32_t *connect_us);
	/* Outbound: fills *out (zeroed) for a new flow. A negative errno
	 * refuses the flow: the client is reset (the callee audits why).
	 * NULL: every flow goes direct. */
	int (*route)(void *ctx, const struct sluice_orig_dst *dst, struct proxy_route *out);
	/* Outbound: the tunnel's TLS handshake completed; 0 to go on, or a
	 * negative errno to reset the client (e.g. the peer is not the node
	 * route meant). */
	int (*tunnel_ready)(void *ctx, void *flow_ctx, SSL *ssl);
	/* Outbound: the peer's VERDICT (or a reason the proxy made up when
	 * none could be read: verdict->allow false). */
	void (*verdict)(void *ctx, void *flow_ctx, const struct frame_verdict *v);
	/* Either way: a tunnel's TLS handshake ended, duration_ns after it
	 * began (outbound: the TCP connect to the peer completed; inbound:
	 * accept). Once per handshake; ssl is the flow's, complete when
	 * result is PROXY_HS_OK. flow_ctx is route's outbound and NULL
	 * inbound. May be NULL. */
	void (*handshake_done)(void *ctx, void *flow_ctx, SSL *ssl,
			       const struct sockaddr_storage *peer, bool inbound,
			       enum proxy_hs_result result, uint64_t duration_ns);
	/* Inbound: a server SSL for a connection accepted on the tunnel
	 * listener, or NULL to refuse it. */
	SSL *(*tunnel_accept)(void *ctx);
	/* Inbound: decides on an OPEN frame (payload of len bytes, not
	 * NUL-terminated) from the verified TLS peer behind ssl. */
	void (*authorize)(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			  const uint8_t *payload, size_t len, struct proxy_authz *out);
	/* Inbound: a connection refused before authorize could decide
	 * (handshake failure, unreadable frame): reason is a stable code,
	 * detail says more. ssl may be NULL. For the audit log. */
	void (*tunnel_refused)(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			       const char *reason, const char *detail);
	/* Inbound: a flow authorize allowed ends before its bytes could flow,
	 * why: "upstream-refused" (the peer hears a deny VERDICT),
	 * "upstream-connect-timeout" or "verdict-not-sent" (the peer left, or
	 * did not take it, in time). Once, before flow_closed. May be NULL. */
	void (*setup_failed)(void *ctx, void *flow_ctx, const char *why, const char *detail);
	/* A flow that goes straight to its destination (no tunnel): *out is
	 * the gate its requests go through when the destination is a
	 * protocol: http service (the proxy owns it), or NULL. A negative
	 * errno refuses the flow (the client is reset): a gate that could
	 * not be made must not let requests through undecided. May be NULL. */
	int (*gate)(void *ctx, const struct sluice_orig_dst *dst, struct http_gate **out);
	void *ctx;			/* for lookup, upstream_created, flow_closed,
					 * gate */
	void *tunnel_ctx;		/* for route ... tunnel_refused */
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
	uint64_t tunnels_out;		/* outbound flows sent through a tunnel */
	uint64_t tunnels_in;		/* tunnel connections accepted */
	uint64_t tunnels_refused;	/* refused on either side */
	uint64_t handshakes_out;	/* tunnel handshakes in flight now, to peers */
	uint64_t handshakes_in;		/* and accepted from anyone */
	uint64_t handshakes_refused_out; /* dropped at a cap of */
	uint64_t handshakes_refused_in;	/* proxy_set_handshake_limit */
};

/*
 * Creates the proxy and binds its listeners (either address may be NULL, not
 * both). idle_timeout_ms 0 never expires flows.
 * Errors: -EADDRINUSE etc. with a message naming the address and the hint.
 */
int proxy_new(const struct sockaddr_storage *listen4, const struct sockaddr_storage *listen6,
	      unsigned int idle_timeout_ms, const struct proxy_ops *ops, struct proxy **out,
	      struct errmsg *err);

/* Opens the inbound tunnel listener (ops->tunnel_accept and ->authorize
 * must be set). Errors as proxy_new, naming listen.tunnel. */
int proxy_listen_tunnel(struct proxy *p, const struct sockaddr_storage *addr, struct errmsg *err);

/* The epoll fd to wait on; call proxy_run_once when it is readable. The
 * caller may nest it in its own epoll instead of using proxy_run. */
int proxy_fd(const struct proxy *p);

/* The address a listener is bound to (its port when asked for port 0);
 * family is AF_INET or AF_INET6, or 0 for the tunnel listener. -ENOENT
 * when there is no such listener. */
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

/* TCP keepalive for the sockets of flows opened from now on (all legs:
 * app, upstream, tunnel); ka->idle_s 0 turns it off, the default. */
void proxy_set_keepalive(struct proxy *p, const struct keepalive_cfg *ka);

/*
 * Caps tunnel handshakes in flight (from accept or connect until bytes
 * flow, at most the handshake timeout each) at max each way, and at per_addr (at most max)
 * from one source address inbound or to one peer outbound; max 0, the
 * default, caps nothing. At a cap the oldest such handshake is dropped:
 * an inbound one reset and counted (handshakes_refused_in), an outbound
 * one ended through ops->verdict with the reason "handshake-limit". Call
 * before the first flow. -ENOMEM.
 */
int proxy_set_handshake_limit(struct proxy *p, unsigned int max, unsigned int per_addr);
/* How long a tunnel has from accept or connect until bytes flow (TLS,
 * OPEN, VERDICT, and inbound the destination's connect) before it is
 * ended: 10 s unless set. */
void proxy_set_handshake_timeout(struct proxy *p, unsigned int timeout_ms);

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out);

/* Closes listeners and resets every open flow (flow_closed is called for
 * each with -ECONNABORTED). */
void proxy_free(struct proxy *p);

#endif
