// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's HTTP side: libmicrohttpd daemons in the agent's epoll loop
 * (MHD_USE_EPOLL without a thread of their own; their epoll fds are
 * watched by the caller, MHD_run on events and on the tick), one per
 * listen socket, answering nginx's auth_request subrequests with
 * edge_decide() and serving the CA and the node's JWKS.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/pem.h>

#include "addr.h"
#include "assertion.h"
#include "edge_int.h"
#include "log.h"

/* nginx keeps a handful of connections per worker; anything past this is
 * not nginx. */
#define EDGE_CONN_LIMIT 1024
#define EDGE_CONN_TIMEOUT_S 30
/* A subrequest is headers only: a token and a URI of at most 8 KiB each
 * (nginx's longest header lines). At most 32 KiB, libmicrohttpd takes it
 * from malloc, not a fresh mmap per connection. */
#define EDGE_CONN_MEMORY (32 * 1024)
/* How long a request waits for the IdP's introspection answer. */
#define EDGE_PENDING_MAX_S 10

struct edge_conn {
	struct edge_daemon *d;
	struct MHD_Connection *c;
	bool suspended;
	time_t since;			/* CLOCK_MONOTONIC s, the first ask */
	struct edge_conn *prev, *next;	/* in e->waiting while suspended */
};

struct edge_daemon {
	struct edge *e;
	struct MHD_Daemon *mhd;
	int fd;				/* the listen socket, MHD's once started */
	struct edge_conn *waiting;
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	pr_debug("edge: %s", buf);
}

/* A response of body (copied) with its type and no-store, into *out. */
static enum MHD_Result queue(const char *type, const char *body, size_t len,
			     struct MHD_Response **out)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (type && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	*out = r;
	return MHD_YES;
}

static enum MHD_Result send_simple(struct MHD_Connection *c, int status, const char *type,
				   const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (queue(type, body, strlen(body), &r) != MHD_YES)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The answer's headers; false when one could not be added. */
static bool add_headers(struct MHD_Response *r, const struct edge_answer *ans)
{
	bool ok = true;

	if (ans->status == 200) {
		ok &= MHD_add_response_header(r, "X-Sluice-Assertion", ans->assertion) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Caller", ans->caller) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Roles", ans->roles) == MHD_YES;
		ok &= MHD_add_response_header(r, "X-Sluice-Rule", ans->rule) == MHD_YES;
		return ok;
	}
	ok &= MHD_add_response_header(r, "X-Sluice-Reason", ans->reason) == MHD_YES;
	if (ans->rule[0])
		ok &= MHD_add_response_header(r, "X-Sluice-Rule", ans->rule) == MHD_YES;
	if (ans->status == 401)
		ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					      ans->www_authenticate) == MHD_YES;
	return ok;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, const struct edge_answer *ans)
{
	char body[EDGE_REASON_MAX + 1];
	struct MHD_Response *r;
	enum MHD_Result ret;
	int n = 0;

	/* nginx's error_page turns a 401/403 into the client's answer: the
	 * reason is its body. An allow has none. */
	if (ans->status != 200)
		n = snprintf(body, sizeof(body), "%s\n", ans->reason);
	if (queue(n ? "text/plain; charset=utf-8" : NULL, body, n, &r) != MHD_YES)
		return MHD_NO;
	if (!add_headers(r, ans)) {
		MHD_destroy_response(r);
		pr_warn("edge: an answer header was refused; answering 500");
		return send_simple(c, 500, "text/plain", "internal-error: answer not encodable\n");
	}
	ret = MHD_queue_response(c, ans->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void suspend(struct edge_daemon *d, struct edge_conn *ec)
{
	MHD_suspend_connection(ec->c);
	ec->suspended = true;
	ec->prev = NULL;
	ec->next = d->waiting;
	if (d->waiting)
		d->waiting->prev = ec;
	d->waiting = ec;
}

static enum MHD_Result serve_authz(struct edge_daemon *d, struct edge_conn *ec)
{
	struct MHD_Connection *c = ec->c;
	struct edge_req req = {
		.authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION),
		.method = header(c, "X-Original-Method"),
		.uri = header(c, "X-Original-URI"),
		.host = header(c, "X-Original-Host"),
		.remote_addr = header(c, "X-Original-Remote-Addr"),
		.service = header(c, "X-Sluice-Service"),
		.generation = header(c, "X-Sluice-Generation"),
	};
	struct edge_answer ans;
	enum MHD_Result ret;

	edge_decide(d->e, &req, &ans);
	if (ans.status == EDGE_PENDING) {
		if (mono_s() - ec->since < EDGE_PENDING_MAX_S) {
			suspend(d, ec);
			return MHD_YES;
		}
		ans.status = 503;
		snprintf(ans.reason, sizeof(ans.reason),
			 "introspection-timeout: the IdP did not answer in %d s",
			 EDGE_PENDING_MAX_S);
	}
	ret = send_answer(c, &ans);
	edge_answer_release(&ans);
	return ret;
}

static enum MHD_Result serve_ca(struct edge_daemon *d, struct MHD_Connection *c)
{
	const struct pki_creds *creds = d->e->deps.creds ? d->e->deps.creds(d->e->deps.ctx) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;
	BIO *bio;
	char *pem;
	long len;

	bio = creds ? BIO_new(BIO_s_mem()) : NULL;
	if (!bio || !PEM_write_bio_X509(bio, creds->ca)) {
		BIO_free(bio);
		return send_simple(c, 503, "text/plain", "no-credentials: the agent has no CA\n");
	}
	len = BIO_get_mem_data(bio, &pem);
	ret = queue("application/x-pem-file", pem, len, &r);
	BIO_free(bio);
	if (ret != MHD_YES)
		return ret;
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_jwks(struct edge_daemon *d, struct MHD_Connection *c)
{
	const struct pki_creds *creds = d->e->deps.creds ? d->e->deps.creds(d->e->deps.ctx) : NULL;
	struct errmsg err = {};
	enum MHD_Result ret;
	char *json;

	if (!creds || assertion_jwks(creds->cert, &json, &err)) {
		if (creds)
			pr_warn("edge: /v1/jwks.json: %s", err.msg);
		return send_simple(c, 503, "text/plain",
				   "no-credentials: no node key to publish\n");
	}
	ret = send_simple(c, 200, "application/jwk-set+json", json);
	free(json);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct edge_daemon *d = cls;
	struct edge_conn *ec = *con_cls;

	if (!ec) {
		ec = calloc(1, sizeof(*ec));
		if (!ec)
			return MHD_NO;
		ec->d = d;
		ec->c = c;
		ec->since = mono_s();
		*con_cls = ec;
		/* Answering on the first call, before MHD has looked for a
		 * body, makes it close the connection after the answer: nginx's
		 * keepalive to the agent would never reuse one. */
		return MHD_YES;
	}
	/* A subrequest has no body; one that sends one is read and dropped. */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return send_simple(c, 405, "text/plain", "method-not-allowed: only GET and HEAD\n");
	if (!strcmp(url, "/v1/authz"))
		return serve_authz(d, ec);
	if (!strcmp(url, "/v1/ca.pem"))
		return serve_ca(d, c);
	if (!strcmp(url, "/v1/jwks.json"))
		return serve_jwks(d, c);
	return send_simple(c, 404, "text/plain",
			   "not-found: this agent serves /v1/authz, /v1/ca.pem and "
			   "/v1/jwks.json\n");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

/* Resumes every waiting request: each asks edge_decide() again. */
static void resume_all(struct edge_daemon *d)
{
	struct edge_conn *ec = d->waiting, *next;

	d->waiting = NULL;
	for (; ec; ec = next) {
		next = ec->next;
		ec->suspended = false;
		MHD_resume_connection(ec->c);
	}
}

static int daemon_start(struct edge *e, int fd, const char *what, struct errmsg *err)
{
	struct edge_daemon *d = calloc(1, sizeof(*d));

	if (!d) {
		close(fd);
		return errmsg_set(err, -ENOMEM, "edge: out of memory");
	}
	d->e = e;
	d->fd = fd;
	d->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
				  NULL, NULL, on_request, d, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)EDGE_CONN_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)EDGE_CONN_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)EDGE_CONN_MEMORY,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d, MHD_OPTION_END);
	if (!d->mhd) {
		close(fd);
		free(d);
		return errmsg_set(err, -EIO, "edge: libmicrohttpd refused to serve %s", what);
	}
	e->daemons[e->nr_daemons++] = d;
	return 0;
}

/* Refuses a directory others may write: they could replace the socket
 * with their own and answer nginx in the agent's name. */
static int check_socket_dir(const char *path, struct errmsg *err)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", path);
	if (stat(dirname(buf), &st))
		return errmsg_set(err, -errno, "edge.socket %s: directory %s: %s", path, buf,
				  strerror(errno));
	if (st.st_mode & S_IWOTH)
		return errmsg_set(err, -EPERM,
				  "edge.socket %s: directory %s is writable by others; put the "
				  "socket in a directory only root and the socket group write",
				  path, buf);
	return 0;
}

static int unlink_stale(const char *path, struct errmsg *err)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : errmsg_set(err, -errno, "edge.socket %s: %s", path,
							 strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errmsg_set(err, -EEXIST,
				  "edge.socket %s exists and is no socket; remove it or choose "
				  "another path",
				  path);
	if (unlink(path))
		return errmsg_set(err, -errno, "edge.socket %s: cannot remove the stale socket: %s",
				  path, strerror(errno));
	return 0;
}

static int unix_socket(struct edge *e, const char *path, struct errmsg *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sun.sun_path))
		return errmsg_set(err, -ENAMETOOLONG, "edge.socket %s: longer than %zu bytes",
				  path, sizeof(sun.sun_path) - 1);
	ret = check_socket_dir(path, err);
	if (!ret)
		ret = unlink_stale(path, err);
	if (ret)
		return ret;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "edge.socket %s: %s", path, strerror(errno));
	/* Nobody connects before listen(): the modes are set first. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = errmsg_set(err, -errno, "edge.socket %s: bind: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	e->socket_path = strdup(path);
	if (chmod(path, 0660) ||
	    (!geteuid() && chown(path, 0, e->cfg->edge.socket_gid)) || listen(fd, SOMAXCONN)) {
		ret = errmsg_set(err, -errno, "edge.socket %s: %s (socket_group %u)", path,
				 strerror(errno), e->cfg->edge.socket_gid);
		close(fd);
		return ret;
	}
	return fd;
}

static int tcp_socket(const struct sockaddr_storage *ss, struct errmsg *err)
{
	char name[INET6_ADDRSTRLEN + 8];
	socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);
	int fd, one = 1, ret;

	format_sockaddr(ss, name, sizeof(name));
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "edge.listen %s: %s", name, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, SOMAXCONN)) {
		ret = errmsg_set(err, -errno, "edge.listen %s: %s (is another agent running?)",
				 name, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

int edge_new(const struct config *cfg, const struct edge_deps *deps, struct edge **out,
	     struct errmsg *err)
{
	struct edge *e;
	int fd, ret;

	ret = edge_core_new(cfg, deps, &e, err);
	if (ret)
		return ret;
	fd = unix_socket(e, cfg->edge.socket, err);
	ret = fd < 0 ? fd : daemon_start(e, fd, cfg->edge.socket, err);
	if (!ret && cfg->edge.has_listen) {
		fd = tcp_socket(&cfg->edge.listen, err);
		ret = fd < 0 ? fd : daemon_start(e, fd, "edge.listen", err);
	}
	if (ret) {
		edge_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

int edge_fds(const struct edge *e, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < e->nr_daemons && n < max; i++) {
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(e->daemons[i]->mhd, MHD_DAEMON_INFO_EPOLL_FD);

		if (info)
			fds[n++] = info->epoll_fd;
	}
	return n;
}

void edge_run(void *ctx)
{
	struct edge *e = ctx;

	for (int i = 0; i < e->nr_daemons; i++)
		MHD_run(e->daemons[i]->mhd);
}

void edge_tick(struct edge *e)
{
	/* Waiting requests look again once a second, so a lost wake-up or
	 * an IdP that never answers costs at most EDGE_PENDING_MAX_S. */
	for (int i = 0; i < e->nr_daemons; i++)
		resume_all(e->daemons[i]);
	edge_run(e);
}

void edge_oidc_event(struct edge *e)
{
	edge_tick(e);
}

void edge_free(struct edge *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nr_daemons; i++) {
		/* MHD stops only with no connection suspended. */
		resume_all(e->daemons[i]);
		MHD_stop_daemon(e->daemons[i]->mhd);
		free(e->daemons[i]);
	}
	if (e->socket_path) {
		unlink(e->socket_path);
		free(e->socket_path);
	}
	edge_core_free(e);
}
