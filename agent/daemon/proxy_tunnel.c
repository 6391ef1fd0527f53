// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tunnel flows before their bytes flow (docs/tunnel.md): the TCP connect to
 * the peer, the TLS handshake, the OPEN and VERDICT frames either way, the
 * inbound decision and local connect, and the caps on handshakes in flight.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "addr.h"
#include "clock.h"
#include "frame.h"
#include "proxy_int.h"

void ssl_take(struct endpoint *e, SSL *ssl)
{
	e->ssl = ssl;
	/* The ring hands SSL_write the same bytes at a different address
	 * after it wraps, and one record per call keeps other flows going.
	 * RELEASE_BUFFERS: an idle connection gives back its ~34 KiB of
	 * record buffers, the most of what a held tunnel flow costs. */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	SSL_set_fd(ssl, e->fd);
}

void hs_release(struct flow *f)
{
	/* An OPEN frame holds a bearer token. */
	if (f->hs) {
		OPENSSL_cleanse(f->hs, f->hs_len);
		free(f->hs);
	}
	f->hs = NULL;
	f->hs_len = f->hs_off = 0;
}

void tls_begin(struct flow *f)
{
	f->phase = PH_TLS;
	f->tls_ns = mono_ns();
}

/* Tells the ops how f's handshake ended, once: later calls (flow_close
 * after a failure) find none under way. */
void hs_report(struct proxy *p, struct flow *f, enum proxy_hs_result result)
{
	uint64_t began = f->tls_ns;

	if (!began)
		return;
	f->tls_ns = 0;
	if (p->ops.handshake_done)
		p->ops.handshake_done(p->ops.tunnel_ctx, f->inbound ? NULL : f->ctx, f->tun->ssl,
				      &f->peer, f->inbound, result, mono_ns() - began);
}

/* From the handshake deadline to the idle timeout. */
static void tunnel_pumping(struct proxy *p, struct flow *f)
{
	in_flight_put(p, f);
	f->phase = PH_PUMP;
	f->last_ns = p->now;
	list_del(&f->idle_node);
	list_add_tail(&f->idle_node, &p->idle);
}

/* Inbound: tells the tunnel ops, once, why a flow that never reached
 * PH_PUMP ends: refused before authorize could decide, or allowed and then
 * failed. */
static void inbound_failed(struct proxy *p, struct flow *f, const char *reason,
			   const char *detail)
{
	if (f->told)
		return;
	f->told = true;
	if (f->ctx && p->ops.setup_failed)
		p->ops.setup_failed(p->ops.tunnel_ctx, f->ctx, reason, detail);
	else if (!f->ctx && p->ops.tunnel_refused)
		p->ops.tunnel_refused(p->ops.tunnel_ctx, f->tun->ssl, &f->peer, reason, detail);
}

/* Ends a tunnel flow that never reached PH_PUMP. */
void tunnel_fail(struct proxy *p, struct flow *f, const char *reason, const char *detail,
		 int status)
{
	struct frame_verdict v = { .allow = 0 };

	p->stats.tunnels_refused++;
	if (f->inbound) {
		inbound_failed(p, f, reason, detail);
	} else if (p->ops.verdict) {
		snprintf(v.reason, sizeof(v.reason), "%s", reason);
		p->ops.verdict(p->ops.tunnel_ctx, f->ctx, &v);
	}
	flow_close(p, f, status);
}

void in_flight_put(struct proxy *p, struct flow *f)
{
	struct in_flight *l = &p->in_flight[f->inbound];

	if (!f->in_flight)
		return;
	f->in_flight = false;
	l->nr--;
	addr_count_dec(l->by_addr, &f->peer);
}

/* The oldest handshake one way, from or to addr's host (NULL: any). */
static struct flow *in_flight_oldest(struct proxy *p, bool inbound,
				     const struct sockaddr_storage *addr)
{
	struct list_node *n;
	struct flow *f;

	for (n = p->handshakes.next; n != &p->handshakes; n = n->next) {
		f = node_flow(n, idle_node);
		if (f->in_flight && f->inbound == inbound &&
		    (!addr || addr_same_host(&f->peer, addr)))
			return f;
	}
	return NULL;
}

static void in_flight_drop(struct proxy *p, struct flow *f)
{
	hs_report(p, f, PROXY_HS_DROPPED);
	if (!f->inbound) {
		p->stats.handshakes_refused_out++;
		tunnel_fail(p, f, "handshake-limit", "too many tunnel handshakes in flight",
			    -ECONNRESET);
		return;
	}
	/* Counted, not audited: a flood would write a line per connection.
	 * The agent logs the count, rate-limited. */
	p->stats.handshakes_refused_in++;
	p->stats.tunnels_refused++;
	flow_close(p, f, -ECONNRESET);
}

/*
 * Counts f, a tunnel flow starting its handshake, first dropping the oldest
 * handshake that way (of f's host, if that is the cap met). Dropping the
 * oldest costs no more than refusing the newest, and under a flood of idle
 * connections a real handshake, done in milliseconds, completes as long as
 * the cap holds more than arrive meanwhile; refusing new ones (or leaving
 * them in the listen backlog, first come first served) would lock a real
 * peer out until the flood timed out.
 */
void in_flight_take(struct proxy *p, struct flow *f)
{
	struct in_flight *l = &p->in_flight[f->inbound];
	struct flow *old = NULL;

	if (!l->max)
		return;
	if (addr_count_get(l->by_addr, &f->peer) >= l->per_addr)
		old = in_flight_oldest(p, f->inbound, &f->peer);
	else if (l->nr >= l->max)
		old = in_flight_oldest(p, f->inbound, NULL);
	if (old)
		in_flight_drop(p, old);
	/* Room was made: fewer hosts are counted than the table holds. */
	if (addr_count_inc(l->by_addr, &f->peer))
		return;
	l->nr++;
	f->in_flight = true;
}

/* Why a handshake failed, in words a user can act on. */
static const char *tls_failure(SSL *ssl, char *buf, size_t len)
{
	long vr = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();

	/* Leaves are issued by the mesh CA itself (depth 0): a peer that
	 * sends a chain of its own was issued by another CA, which OpenSSL
	 * words as the chain being too long. */
	if (vr == X509_V_ERR_CERT_CHAIN_TOO_LONG)
		snprintf(buf, len, "certificate: not issued by this mesh's CA (the peer sent "
				   "a chain through another issuer)");
	else if (vr != X509_V_OK)
		snprintf(buf, len, "certificate: %s", X509_verify_cert_error_string(vr));
	else if (e && ERR_reason_error_string(e))
		snprintf(buf, len, "%s", ERR_reason_error_string(e));
	else
		snprintf(buf, len, "connection closed during the handshake");
	ERR_clear_error();
	return buf;
}

static int hs_expect(struct flow *f, size_t len)
{
	hs_release(f);
	f->hs = malloc(len);
	if (!f->hs)
		return -ENOMEM;
	f->hs_len = len;
	f->phase = PH_RECV;
	return 0;
}

/* Sends v and, for a deny, closes once it is out. */
static void send_verdict(struct proxy *p, struct flow *f, const struct frame_verdict *v)
{
	hs_release(f);
	if (frame_verdict_encode(v, &f->hs, &f->hs_len)) {
		flow_close(p, f, -ENOMEM);
		return;
	}
	f->close_after_send = !v->allow;
	f->phase = PH_SEND;
}

void local_connected(struct proxy *p, struct flow *f)
{
	send_verdict(p, f, &f->verdict);
}

/* Inbound: the destination refused; the peer hears it as a deny. */
void local_failed(struct proxy *p, struct flow *f, int err)
{
	struct frame_verdict v = { .allow = 0, .reason = "upstream-refused" };

	p->stats.upstream_failed++;
	p->stats.tunnels_refused++;
	endpoint_close(&f->upstream, err);
	inbound_failed(p, f, v.reason, strerror(-err));
	send_verdict(p, f, &v);
}

/* Inbound: a whole OPEN payload is in f->hs. */
static void open_received(struct proxy *p, struct flow *f)
{
	struct proxy_authz az = { .allow = false };
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd;

	p->ops.authorize(p->ops.tunnel_ctx, f->tun->ssl, &f->peer, f->hs, f->hs_len, &az);
	f->ctx = az.flow_ctx;
	f->verdict = az.verdict;
	if (az.allow)
		flow_gate(f, az.gate);
	else
		http_gate_free(az.gate);
	/* authorize audited a deny; an allow is audited when it ends. */
	f->told = !az.allow;
	hs_release(f);
	if (!az.allow) {
		p->stats.tunnels_refused++;
		send_verdict(p, f, &az.verdict);
		return;
	}
	ss = az.dst;
	sslen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	sockaddr_orig_dst(&ss, &f->dst);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		tunnel_fail(p, f, "upstream-refused", strerror(errno), -errno);
		return;
	}
	f->upstream.fd = fd;
	sock_tune(p, fd);
	f->phase = PH_LOCAL;
	if (connect(fd, (struct sockaddr *)&ss, sslen) && errno != EINPROGRESS) {
		local_failed(p, f, -errno);
		return;
	}
	f->upstream.connecting = true;
	if (endpoint_add(p, &f->upstream))
		flow_close(p, f, -errno);
}

/* Outbound: a whole VERDICT payload is in f->hs. */
static void verdict_received(struct proxy *p, struct flow *f)
{
	struct frame_verdict v;
	const char *detail;

	if (frame_verdict_decode(f->hs, f->hs_len, &v, &detail)) {
		memset(&v, 0, sizeof(v));
		snprintf(v.reason, sizeof(v.reason), "%s", FRAME_MALFORMED);
	}
	hs_release(f);
	if (p->ops.verdict)
		p->ops.verdict(p->ops.tunnel_ctx, f->ctx, &v);
	if (!v.allow) {
		p->stats.tunnels_refused++;
		flow_close(p, f, -ECONNREFUSED);
		return;
	}
	tunnel_pumping(p, f);
	/* The verdict's record may have carried the first response bytes. */
	f->tun->readable = f->tun->writable = true;
}

/* A frame (header, then payload) is complete in f->hs. */
static void frame_received(struct proxy *p, struct flow *f)
{
	struct frame_verdict v = { .allow = 0 };
	const char *why;
	int len;

	if (f->hs_body) {
		if (f->inbound)
			open_received(p, f);
		else
			verdict_received(p, f);
		return;
	}
	len = frame_hdr_parse(f->hs, f->inbound ? FRAME_OPEN : FRAME_VERDICT, &why);
	if (len < 0) {
		if (!f->inbound) {
			tunnel_fail(p, f, why, "bad VERDICT frame", -ECONNREFUSED);
			return;
		}
		p->stats.tunnels_refused++;
		inbound_failed(p, f, why, "bad OPEN frame header");
		/* The rest is never read: a 1 MiB frame costs its header. */
		snprintf(v.reason, sizeof(v.reason), "%s", why);
		send_verdict(p, f, &v);
		return;
	}
	if (hs_expect(f, len)) {
		flow_close(p, f, -ENOMEM);
		return;
	}
	f->hs_body = true;
}

/*
 * Moves the rest of f->hs over the tunnel, out (PH_SEND) or in (PH_RECV):
 * 1 when the frame is through, 0 when it waits for an edge, -1 when the
 * tunnel broke. Either way SSL moves at most a record per call (partial
 * writes are on, SSL_read returns one record), and with edge-triggered
 * sockets no new event comes for what could still move, so go on until
 * the frame is through or the socket would block.
 */
static int hs_move(struct flow *f, bool reading)
{
	SSL *ssl = f->tun->ssl;
	uint8_t *at;
	size_t left, n;
	int ret;

	for (;;) {
		at = f->hs + f->hs_off;
		left = f->hs_len - f->hs_off;
		ret = reading ? SSL_read_ex(ssl, at, left, &n) : SSL_write_ex(ssl, at, left, &n);
		if (ret <= 0)
			break;
		f->hs_off += n;
		if (f->hs_off == f->hs_len)
			return 1;
	}
	ret = tls_error(f->tun, ret, reading);
	return ret == -EAGAIN || ret == -EINPROGRESS ? 0 : -1;
}

/* One step of PH_TLS, PH_SEND or PH_RECV: 1 when it completed, 0 when it
 * waits for an edge, -1 when the flow is gone. */
static int tunnel_step(struct proxy *p, struct flow *f)
{
	SSL *ssl = f->tun->ssl;
	char buf[160];
	int ret;

	switch (f->phase) {
	case PH_TLS:
		ret = SSL_do_handshake(ssl);
		if (ret == 1)
			return 1;
		/* Not tls_error(): the error queue says why, keep it. */
		ret = SSL_get_error(ssl, ret);
		if (ret == SSL_ERROR_WANT_READ || ret == SSL_ERROR_WANT_WRITE)
			return 0;
		hs_report(p, f, PROXY_HS_FAILED);
		tunnel_fail(p, f, "tls-handshake-failed", tls_failure(ssl, buf, sizeof(buf)),
			    -ECONNRESET);
		return -1;
	case PH_SEND:
		ret = hs_move(f, false);
		if (ret >= 0)
			return ret;
		/* Inbound, only a VERDICT is ever sent. */
		tunnel_fail(p, f, f->inbound ? "verdict-not-sent" : "tunnel-broken",
			    strerror(EPIPE), -ECONNRESET);
		return -1;
	case PH_RECV:
		ret = hs_move(f, true);
		if (ret >= 0)
			return ret;
		snprintf(buf, sizeof(buf), "closed after %zu of %zu %s bytes", f->hs_off,
			 f->hs_len, f->hs_body ? "payload" : "header");
		tunnel_fail(p, f, f->inbound ? FRAME_TRUNCATED : "no-verdict", buf,
			    -ECONNRESET);
		return -1;
	default:
		return 0;
	}
}

/* Moves a tunnel flow through its phases as far as its sockets allow. */
void tunnel_advance(struct proxy *p, struct flow *f)
{
	int ret;

	while (f->phase != PH_PUMP && f->phase != PH_CONNECT && f->phase != PH_LOCAL) {
		ret = tunnel_step(p, f);
		if (ret <= 0)
			return;
		switch (f->phase) {
		case PH_TLS:
			hs_report(p, f, PROXY_HS_OK);
			if (f->inbound) {
				if (hs_expect(f, FRAME_HDR_LEN)) {
					flow_close(p, f, -ENOMEM);
					return;
				}
				f->hs_body = false;
			} else if (p->ops.tunnel_ready &&
				   (ret = p->ops.tunnel_ready(p->ops.tunnel_ctx, f->ctx, f->tun->ssl))) {
				p->stats.tunnels_refused++;
				flow_close(p, f, ret);
				return;
			} else {
				f->phase = PH_SEND;
			}
			break;
		case PH_SEND:
			hs_release(f);
			if (f->close_after_send) {
				SSL_shutdown(f->tun->ssl);
				flow_close(p, f, 0);
				return;
			}
			if (f->inbound) {
				tunnel_pumping(p, f);
				f->tun->readable = f->tun->writable = true;
			} else if (hs_expect(f, FRAME_HDR_LEN)) {
				flow_close(p, f, -ENOMEM);
				return;
			} else {
				f->hs_body = false;
			}
			break;
		case PH_RECV:
			frame_received(p, f);
			if (f->dead)
				return;
			break;
		default:
			return;
		}
	}
	if (f->phase == PH_PUMP) {
		f->upstream.writable = f->client.writable = true;
		flow_pump(p, f);
	}
}

/* Inbound: a peer agent connected to the tunnel listener. */
void tunnel_open(struct proxy *p, int fd, const struct sockaddr_storage *peer)
{
	struct flow *f;
	SSL *ssl;

	ssl = p->ops.tunnel_accept(p->ops.tunnel_ctx);
	f = ssl ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		SSL_free(ssl);
		p->stats.tunnels_refused++;
		close_reset(fd);
		return;
	}
	p->stats.tunnels_in++;
	f->inbound = true;
	f->peer = *peer;
	f->start_ns = mono_ns();
	f->last_ns = p->now;
	f->client = (struct endpoint){ .fd = fd, .kind = EP_CLIENT, .flow = f };
	f->upstream = (struct endpoint){ .fd = -1, .kind = EP_UPSTREAM, .flow = f };
	f->up = (struct relay){ .src = &f->client, .dst = &f->upstream,
				.stat_bytes = &p->stats.bytes_up };
	f->down = (struct relay){ .src = &f->upstream, .dst = &f->client,
				  .stat_bytes = &p->stats.bytes_down };
	list_init(&f->busy_node);
	in_flight_take(p, f);
	list_add_tail(&f->idle_node, &p->handshakes);
	p->stats.active++;
	f->tun = &f->client;
	ssl_take(f->tun, ssl);
	SSL_set_accept_state(ssl);
	tls_begin(f);
	sock_tune(p, fd);
	if (endpoint_add(p, &f->client)) {
		flow_close(p, f, -errno);
		return;
	}
	tunnel_advance(p, f);
}

/* What a flow that the handshake deadline ends was waiting for. */
const char *deadline_reason(const struct flow *f, const char **detail)
{
	*detail = "tunnel not set up in time";
	if (!f->inbound)
		return "no-verdict";
	if (f->phase == PH_LOCAL) {
		*detail = "the destination did not answer in time";
		return "upstream-connect-timeout";
	}
	/* Allowed, connected, and the peer does not take the VERDICT. */
	return f->ctx ? "verdict-not-sent" : "handshake-timeout";
}

int proxy_set_handshake_limit(struct proxy *p, unsigned int max, unsigned int per_addr)
{
	for (int i = 0; i < 2; i++) {
		struct in_flight *l = &p->in_flight[i];

		addr_count_free(l->by_addr);
		*l = (struct in_flight){ .max = max,
					 .per_addr = per_addr && per_addr < max ? per_addr : max };
		if (max && addr_count_new(max, &l->by_addr)) {
			l->max = 0;
			return -ENOMEM;
		}
	}
	return 0;
}
