/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the proxy's files share and nothing outside them sees: the flow and
 * endpoint structs, and the calls between the byte pump (proxy.c), the
 * tunnel handshakes (proxy_tunnel.c) and the event loop with its listeners
 * (proxy_loop.c).
 */
#ifndef SLUICE_PROXY_INT_H
#define SLUICE_PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "addrcount.h"
#include "http_gate.h"
#include "proxy.h"

/* Freed ring buffers kept for the next flows: one connection per request
 * would otherwise fault in and zero 512 KiB of fresh pages each time. */
#define RING_POOL_MAX 64

struct list_node {
	struct list_node *prev, *next;
};

enum ep_kind {
	EP_LISTEN,
	EP_TUNNEL_LISTEN,
	EP_TIMER,
	EP_CLIENT,
	EP_UPSTREAM,
	EP_WATCH,
};

struct flow;

/* What an epoll event points at. */
struct endpoint {
	int fd;
	enum ep_kind kind;
	bool readable;
	bool writable;
	/* FIN seen: a short read no longer proves the queue is drained, so
	 * keep reading until read() returns 0. */
	bool rdhup;
	bool connecting;
	SSL *ssl;			/* a tunnel endpoint; NULL for plain TCP */
	struct flow *flow;
};

/* Bytes read from src wait here until written to dst. */
struct ring {
	char *data;			/* PROXY_BUF_SIZE, allocated on first read */
	size_t head;
	size_t len;
};

/* One direction of a flow. */
struct relay {
	struct ring ring;
	struct endpoint *src, *dst;
	uint64_t *stat_bytes;
	uint64_t bytes;			/* written to dst */
	bool eof;			/* src returned EOF */
	bool shut;			/* dst got our FIN */
	/* A protocol: http flow: the gate decides what of the ring is
	 * written (HTTP_GATE_REQ up, HTTP_GATE_RES down); fed counts the
	 * ring's bytes it has seen, from head. */
	struct http_gate *gate;
	int gate_dir;
	size_t fed;
	bool gate_eof;			/* the gate heard of src's EOF */
};

/* Where a tunnel flow is before its bytes may flow. */
enum phase {
	PH_PUMP,			/* bytes flow (every plain flow) */
	PH_CONNECT,			/* outbound: TCP to the peer agent */
	PH_TLS,				/* the TLS handshake */
	PH_SEND,			/* writing f->hs (OPEN or VERDICT) */
	PH_RECV,			/* reading a frame into f->hs */
	PH_LOCAL,			/* inbound: connecting to the destination */
};

struct flow {
	struct endpoint client, upstream;
	struct relay up, down;		/* client -> upstream, upstream -> client */
	struct sluice_orig_dst dst;
	/* Tunnel flows: tun is the TLS endpoint (upstream outbound, client
	 * inbound); NULL for plain flows. */
	struct endpoint *tun;
	enum phase phase;
	bool inbound;
	bool hs_body;			/* PH_RECV: header read, reading payload */
	bool close_after_send;		/* inbound deny: close once sent */
	/* Inbound: the tunnel ops heard how the flow ends (tunnel_refused,
	 * authorize's deny or setup_failed), so one decision is one line. */
	bool told;
	uint8_t *hs;			/* the frame being sent or received */
	size_t hs_len, hs_off;
	struct frame_verdict verdict;	/* inbound allow: sent when connected */
	/* The peer agent: inbound, where it connected from; outbound, its
	 * tunnel listener. */
	struct sockaddr_storage peer;
	void *ctx;			/* the caller's, see proxy_ops */
	uint64_t start_ns;
	uint64_t tls_ns;		/* its handshake began; 0: none under way */
	uint32_t connect_us;		/* upstream_connected's */
	uint64_t last_ns;		/* last byte moved either way */
	/* On p->idle (oldest first) while open, on p->handshakes while a
	 * tunnel is set up, on p->dead once closed. */
	struct list_node idle_node;
	/* On p->busy while a direction has budget-limited work left. */
	struct list_node busy_node;
	bool dead;
	bool in_flight;			/* counted in p->in_flight[inbound] */
	struct http_gate *gate;		/* the relays', owned; NULL: bytes only */
};

/* Tunnel handshakes in flight one way: outbound to peers, inbound accepted
 * and not pumping yet; in total and per host address (the source inbound,
 * the peer outbound). */
struct in_flight {
	unsigned int max, per_addr;	/* max 0: no cap */
	unsigned int nr;
	struct addr_count *by_addr;
};

/* A caller's fd served from the proxy's own epoll_wait. */
struct watch {
	struct endpoint ep;		/* first: events point here */
	void (*cb)(void *ctx);
	void *ctx;
	struct watch *next;
};

struct proxy {
	int epfd;
	struct watch *watches;
	struct endpoint listen[3];	/* AF_INET, AF_INET6, tunnel; fd -1 unused */
	struct endpoint timer;
	uint64_t timer_at;		/* armed deadline, 0 when disarmed */
	uint64_t idle_ns;
	uint64_t hs_timeout_ns;		/* proxy_set_handshake_timeout */
	uint64_t now;			/* CLOCK_MONOTONIC at the start of the round */
	bool accept_paused;
	bool accept_err_logged;
	uint64_t accept_resume_ns;
	struct proxy_ops ops;
	struct keepalive_cfg keepalive;
	struct proxy_stats stats;
	struct list_node idle;
	struct list_node handshakes;	/* tunnel flows not yet pumping, oldest first */
	struct in_flight in_flight[2];	/* [0] outbound, [1] inbound */
	struct list_node busy;
	struct list_node dead;
	char *ring_pool[RING_POOL_MAX];
	int ring_pool_len;
};

#define node_flow(node, member) \
	((struct flow *)((char *)(node) - __builtin_offsetof(struct flow, member)))

static inline void list_init(struct list_node *n)
{
	n->prev = n->next = n;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

static inline void list_add_tail(struct list_node *n, struct list_node *head)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* proxy.c: flows and the byte pump. */
void close_reset(int fd);
void sock_tune(const struct proxy *p, int fd);
void endpoint_close(struct endpoint *e, int status);
void flow_close(struct proxy *p, struct flow *f, int status);
void flow_free(struct proxy *p, struct flow *f);
int tls_error(struct endpoint *e, int ret, bool reading);
void flow_pump(struct proxy *p, struct flow *f);
void flow_gate(struct flow *f, struct http_gate *gate);
int endpoint_add(struct proxy *p, struct endpoint *e);
void flow_event(struct proxy *p, struct endpoint *e, uint32_t ev);
void flow_open(struct proxy *p, int cfd, const struct sockaddr_storage *peer);

/* proxy_tunnel.c: tunnel handshakes and their caps. */
void ssl_take(struct endpoint *e, SSL *ssl);
void hs_release(struct flow *f);
void tunnel_fail(struct proxy *p, struct flow *f, const char *reason, const char *detail,
		 int status);
void in_flight_put(struct proxy *p, struct flow *f);
void in_flight_take(struct proxy *p, struct flow *f);
void local_connected(struct proxy *p, struct flow *f);
void local_failed(struct proxy *p, struct flow *f, int err);
void tunnel_advance(struct proxy *p, struct flow *f);
void tls_begin(struct flow *f);
void hs_report(struct proxy *p, struct flow *f, enum proxy_hs_result result);
void tunnel_open(struct proxy *p, int fd, const struct sockaddr_storage *peer);
const char *deadline_reason(const struct flow *f, const char **detail);

#endif
