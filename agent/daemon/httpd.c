// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libmicrohttpd daemons in the agent's epoll loop, one per listening
 * socket, and what both the edge and the local HTTP listener serve (the
 * CA bundle and the node's JWKS).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "addr.h"
#include "assertion.h"
#include "clock.h"
#include "httpd.h"
#include "log.h"

/* nginx keeps a handful of connections per worker, local clients fewer;
 * anything past this is not a client we serve. */
#define HTTPD_CONN_LIMIT 1024
#define HTTPD_CONN_TIMEOUT_S 30
/* Requests are headers only: a token and a URI of at most 8 KiB each
 * (nginx's longest header lines). At most 32 KiB, libmicrohttpd takes it
 * from malloc, not a fresh mmap per connection. */
#define HTTPD_CONN_MEMORY (32 * 1024)

struct httpd {
	struct MHD_Daemon *mhd;
	int fd;				/* the listen socket, MHD's once started */
	httpd_handler handler;
	void *ctx;
	struct httpd_conn *waiting;
	char what[64];
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	pr_debug("%s: %s", h->what, buf);
}

const char *httpd_header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum MHD_Result response(const char *type, struct MHD_Response *r,
			       struct MHD_Response **out)
{
	if (!r)
		return MHD_NO;
	if (type && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	/* The credentials rotate: a cached copy would outlive them. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	*out = r;
	return MHD_YES;
}

enum MHD_Result httpd_response(const char *type, const char *body, size_t len,
			       struct MHD_Response **out)
{
	return response(type,
			MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY),
			out);
}

enum MHD_Result httpd_response_take(const char *type, char *body, size_t len,
				    struct MHD_Response **out)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!r)
		free(body);
	return response(type, r, out);
}

enum MHD_Result httpd_send(struct MHD_Connection *c, int status, const char *type,
			   const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (httpd_response(type, body, strlen(body), &r) != MHD_YES)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result httpd_serve_ca(struct MHD_Connection *c, const struct pki_creds *creds)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	BIO *bio;
	char *pem;
	long len;

	bio = creds ? BIO_new(BIO_s_mem()) : NULL;
	if (!bio || !PEM_write_bio_X509(bio, creds->ca)) {
		BIO_free(bio);
		return httpd_send(c, 503, "text/plain", "no-credentials: the agent has no CA\n");
	}
	len = BIO_get_mem_data(bio, &pem);
	ret = httpd_response("application/x-pem-file", pem, len, &r);
	BIO_free(bio);
	if (ret != MHD_YES)
		return ret;
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result httpd_serve_jwks(struct MHD_Connection *c, const struct pki_creds *creds)
{
	struct errmsg err = {};
	enum MHD_Result ret;
	char *json;

	if (!creds || assertion_jwks(creds->cert, &json, &err)) {
		if (creds)
			pr_warn("/v1/jwks.json: %s", err.msg);
		return httpd_send(c, 503, "text/plain",
				  "no-credentials: no node key to publish\n");
	}
	ret = httpd_send(c, 200, "application/jwk-set+json", json);
	free(json);
	return ret;
}

void httpd_suspend(struct httpd_conn *hc)
{
	struct httpd *h = hc->h;

	MHD_suspend_connection(hc->c);
	hc->suspended = true;
	hc->prev = NULL;
	hc->next = h->waiting;
	if (h->waiting)
		h->waiting->prev = hc;
	h->waiting = hc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct httpd *h = cls;
	struct httpd_conn *hc = *con_cls;

	if (!hc) {
		hc = calloc(1, sizeof(*hc));
		if (!hc)
			return MHD_NO;
		hc->h = h;
		hc->c = c;
		hc->since_ms = mono_ms();
		*con_cls = hc;
		/* Answering on the first call, before MHD has looked for a
		 * body, makes it close the connection after the answer: nginx's
		 * keepalive to the agent would never reuse one. */
		return MHD_YES;
	}
	/* GET and HEAD have no body; one that is sent is read and dropped. */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return httpd_send(c, 405, "text/plain", "method-not-allowed: only GET and HEAD\n");
	return h->handler(h->ctx, hc, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd_conn *hc = *con_cls;

	if (hc && hc->release)
		hc->release(hc->data);
	free(hc);
	*con_cls = NULL;
}

void httpd_resume(struct httpd_conn *hc)
{
	if (!hc->suspended)
		return;
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		hc->h->waiting = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	hc->prev = hc->next = NULL;
	hc->suspended = false;
	MHD_resume_connection(hc->c);
}

static void resume_all(struct httpd *h)
{
	struct httpd_conn *hc = h->waiting, *next;

	h->waiting = NULL;
	for (; hc; hc = next) {
		next = hc->next;
		hc->suspended = false;
		MHD_resume_connection(hc->c);
	}
}

int httpd_start(int fd, const char *what, httpd_handler handler, void *ctx, struct httpd **out,
		struct errmsg *err)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		return errmsg_set(err, -ENOMEM, "%s: out of memory", what);
	}
	h->fd = fd;
	h->handler = handler;
	h->ctx = ctx;
	snprintf(h->what, sizeof(h->what), "%s", what);
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
				  NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPD_CONN_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_CONN_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONN_MEMORY,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
	if (!h->mhd) {
		close(fd);
		free(h);
		return errmsg_set(err, -EIO, "%s: libmicrohttpd refused to serve it", what);
	}
	*out = h;
	return 0;
}

int httpd_fd(const struct httpd *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

unsigned int httpd_port(const struct httpd *h)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(h->fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

void httpd_run(void *ctx)
{
	struct httpd *h = ctx;

	MHD_run(h->mhd);
}

void httpd_tick(struct httpd *h)
{
	resume_all(h);
	MHD_run(h->mhd);
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	/* MHD stops only with no connection suspended. */
	resume_all(h);
	MHD_stop_daemon(h->mhd);
	free(h);
}

int httpd_tcp_socket(const struct sockaddr_storage *ss, const char *key, const char *hint,
		     struct errmsg *err)
{
	char name[SOCKADDR_STR_LEN];
	socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);
	int fd, one = 1, ret;

	format_sockaddr(ss, name, sizeof(name));
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "%s %s: %s", key, name, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, SOMAXCONN)) {
		ret = errmsg_set(err, -errno, "%s %s: %s (%s)", key, name, strerror(errno), hint);
		close(fd);
		return ret;
	}
	return fd;
}
