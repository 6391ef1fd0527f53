/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's HTTP servers: libmicrohttpd daemons inside the agent's epoll
 * loop (MHD_USE_EPOLL without a thread of their own). The caller watches
 * httpd_fd() and calls httpd_run() when it is readable and httpd_tick()
 * once a second. Used by the edge (edge.c) and by the agent's local HTTP
 * listener (local_http.c); both serve GET and HEAD only, so a request
 * with another method is answered 405 here and never reaches the handler.
 */
#ifndef SLUICE_HTTPD_H
#define SLUICE_HTTPD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "errmsg.h"
#include "pki.h"

struct httpd;

/* One request in flight; valid from the handler's call until it is
 * answered (or its connection closes). */
struct httpd_conn {
	struct httpd *h;
	struct MHD_Connection *c;
	bool suspended;
	uint64_t since_ms;		/* CLOCK_MONOTONIC, the first call */
	struct httpd_conn *prev, *next;	/* in the waiting list while suspended */
	/* The handler's own state for this request, and what frees it when
	 * the request ends, answered or not. */
	void *data;
	void (*release)(void *data);
};

/* Answers the request (httpd_send() and friends, or MHD_queue_response)
 * or suspends it (httpd_suspend()); called again for a suspended request
 * once it is resumed. */
typedef enum MHD_Result (*httpd_handler)(void *ctx, struct httpd_conn *hc, const char *url);

/*
 * Serves the listening socket fd (taken over: closed on any error and by
 * httpd_free()) with handler. what names the listener in errors.
 * -ENOMEM, -EIO.
 */
int httpd_start(int fd, const char *what, httpd_handler handler, void *ctx, struct httpd **out,
		struct errmsg *err);

/* The epoll fd to watch for readability, -1 if libmicrohttpd has none. */
int httpd_fd(const struct httpd *h);
/* The bound port (host order), 0 if unknown: for listeners on port 0. */
unsigned int httpd_port(const struct httpd *h);
void httpd_run(void *h);
/* Resumes every suspended request (its handler is asked again), then
 * runs: connection timeouts and requests waiting on something else. */
void httpd_tick(struct httpd *h);
void httpd_suspend(struct httpd_conn *hc);
/* Resumes one suspended request now (its handler is asked again on the
 * next httpd_run()); no-op if it is not suspended. */
void httpd_resume(struct httpd_conn *hc);
/* Resumes suspended requests, stops the daemon, closes its socket.
 * NULL: no-op. */
void httpd_free(struct httpd *h);

/*
 * A listening TCP socket on ss, non-blocking. key names the config key for
 * errors, which end with the hint what to do when the address is in use.
 * The fd, or -errno.
 */
int httpd_tcp_socket(const struct sockaddr_storage *ss, const char *key, const char *hint,
		     struct errmsg *err);

const char *httpd_header(struct MHD_Connection *c, const char *name);
/* A response with body (copied) and Cache-Control: no-store; type NULL:
 * no Content-Type. MHD_NO on allocation failure. */
enum MHD_Result httpd_response(const char *type, const char *body, size_t len,
			       struct MHD_Response **out);
/* The same with body taken over (malloc'd; freed by the response, or here
 * on failure): for large bodies, which a copy would cost twice. */
enum MHD_Result httpd_response_take(const char *type, char *body, size_t len,
				    struct MHD_Response **out);
enum MHD_Result httpd_send(struct MHD_Connection *c, int status, const char *type,
			   const char *body);

/* GET /v1/ca.pem: the mesh CA of creds, PEM; 503 when creds is NULL. */
enum MHD_Result httpd_serve_ca(struct MHD_Connection *c, const struct pki_creds *creds);
/* GET /v1/jwks.json: assertion_jwks() of creds' certificate; 503 when
 * creds is NULL. */
enum MHD_Result httpd_serve_jwks(struct MHD_Connection *c, const struct pki_creds *creds);

#endif
