/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A hand-driven peer of an agent's tunnel listener: a blocking TLS 1.3
 * client that connects from inside a node's network namespace with the
 * certificate, key and CA it is given, sends exactly the bytes it is told
 * (a whole OPEN frame, garbage, half a header, a header announcing more than
 * any frame may hold), and reports the VERDICT that came back or how the
 * connection ended. Everything runs in a thread of its own, since setns()
 * moves only the calling thread.
 */
#ifndef SLUICE_INTEG_TUNNEL_CLIENT_H
#define SLUICE_INTEG_TUNNEL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct tc_req {
	const char *ns;	  /* network namespace to connect from */
	const char *addr; /* the listener, IP:PORT or [IP6]:PORT */
	const char *ca;	  /* PEM trust anchor for the server; NULL: not checked */
	const char *cert; /* PEM client certificate and its key; NULL: none */
	const char *key;
	const void *data; /* sent once the handshake is done */
	size_t len;
	size_t filler; /* then this many bytes of filler */
	enum tc_then {
		TC_THEN_READ,  /* read the VERDICT */
		TC_THEN_CLOSE, /* close_notify and FIN, then wait for the server's end */
		TC_THEN_RESET, /* vanish: close with SO_LINGER 0, which sends an RST */
	} then;
	int timeout_ms; /* for the connect and each read or write */
};

enum tc_end {
	TC_VERDICT,   /* a VERDICT frame arrived: res->verdict */
	TC_CLOSED,    /* TC_THEN_CLOSE or TC_THEN_RESET: we closed after sending */
	TC_ALERT,     /* the server sent a fatal TLS alert: res->alert */
	TC_EOF,	      /* the server closed without a VERDICT (close_notify or TCP) */
	TC_RESET,     /* ECONNRESET */
	TC_TIMEOUT,   /* nothing within timeout_ms */
	TC_BAD_FRAME, /* bytes came that are not a VERDICT frame: res->detail */
	TC_ERROR,     /* a local failure, or ours with TLS: res->detail */
};

struct tc_result {
	enum tc_end end;
	bool handshake_done; /* our side of it: TLS 1.3 servers judge the client after */
	struct frame_verdict verdict;
	/* TC_VERDICT with a deny: how the connection ended after it. */
	enum tc_end after_deny;
	char alert[64]; /* SSL_alert_desc_string_long() of the alert received */
	char detail[160];
};

/* Runs one connection as req says; 0 with res filled in, or a negative
 * errno when the thread could not be run at all. */
int tunnel_client_run(const struct tc_req *req, struct tc_result *res);
const char *tc_end_name(enum tc_end end);

/* A frame header of type announcing len payload bytes. */
void tc_frame_hdr(uint8_t hdr[FRAME_HDR_LEN], enum frame_type type, uint32_t len);

#endif
