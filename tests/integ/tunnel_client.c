// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "env.h"
#include "tunnel_client.h"

#define FILLER_CHUNK 16384

struct tc_run {
	const struct tc_req *req;
	struct tc_result *res;
};

static const char *const end_names[] = {
    [TC_VERDICT] = "verdict",	  [TC_CLOSED] = "closed",
    [TC_ALERT] = "tls-alert",	  [TC_EOF] = "eof",
    [TC_RESET] = "reset",	  [TC_TIMEOUT] = "timeout",
    [TC_BAD_FRAME] = "bad-frame", [TC_ERROR] = "error",
};

const char *tc_end_name(enum tc_end end)
{
	if ((unsigned int)end < sizeof(end_names) / sizeof(end_names[0]))
		return end_names[end];
	return "unknown";
}

void tc_frame_hdr(uint8_t hdr[FRAME_HDR_LEN], enum frame_type type, uint32_t len)
{
	uint32_t be = htonl(len);

	memcpy(hdr, FRAME_MAGIC, 4);
	hdr[4] = FRAME_VERSION;
	hdr[5] = type;
	hdr[6] = hdr[7] = 0;
	memcpy(hdr + 8, &be, sizeof(be));
}

static void on_info(const SSL *ssl, int where, int ret)
{
	struct tc_result *res = SSL_get_app_data(ssl);

	/* close_notify is a warning alert: an orderly end, not a refusal. */
	if ((where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL && !res->alert[0])
		snprintf(res->alert, sizeof(res->alert), "%s", SSL_alert_desc_string_long(ret));
}

static void fail(struct tc_result *res, enum tc_end end, const char *what, const char *why)
{
	res->end = end;
	snprintf(res->detail, sizeof(res->detail), "%s: %s", what, why);
}

/* How an SSL call that returned ret ended the connection; sys_errno is
 * errno right after it. */
static void tls_ended(SSL *ssl, int ret, int sys_errno, struct tc_result *res, const char *what)
{
	int e = SSL_get_error(ssl, ret);
	unsigned long code = ERR_peek_last_error();
	char buf[128];

	if (res->alert[0]) {
		fail(res, TC_ALERT, what, res->alert);
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		fail(res, TC_EOF, what, "close_notify");
	} else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		fail(res, TC_TIMEOUT, what, "no answer in time");
	} else if (e == SSL_ERROR_SYSCALL && (sys_errno == ECONNRESET || sys_errno == EPIPE)) {
		fail(res, TC_RESET, what, strerror(sys_errno));
	} else if ((e == SSL_ERROR_SYSCALL && !sys_errno) ||
		   (e == SSL_ERROR_SSL &&
		    ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		fail(res, TC_EOF, what, "EOF without close_notify");
	} else {
		ERR_error_string_n(code, buf, sizeof(buf));
		fail(res, TC_ERROR, what, e == SSL_ERROR_SYSCALL ? strerror(sys_errno) : buf);
	}
	ERR_clear_error();
}

static bool tls_write_all(SSL *ssl, const void *buf, size_t len, struct tc_result *res)
{
	size_t n;
	int ret;

	while (len) {
		errno = 0;
		ret = SSL_write_ex(ssl, buf, len, &n);
		if (ret <= 0) {
			tls_ended(ssl, ret, errno, res, "write");
			return false;
		}
		buf = (const char *)buf + n;
		len -= n;
	}
	return true;
}

static bool tls_read_all(SSL *ssl, void *buf, size_t len, struct tc_result *res)
{
	size_t n;
	int ret;

	while (len) {
		errno = 0;
		ret = SSL_read_ex(ssl, buf, len, &n);
		if (ret <= 0) {
			tls_ended(ssl, ret, errno, res, "read");
			return false;
		}
		buf = (char *)buf + n;
		len -= n;
	}
	return true;
}

/* Sends what req says. A write the server cut short is not the end: its
 * answer may be waiting to be read. */
static void send_all(SSL *ssl, const struct tc_req *req, struct tc_result *res)
{
	static const char filler[FILLER_CHUNK] = {[0 ... FILLER_CHUNK - 1] = 'x'};
	size_t left = req->filler, n;

	if (req->len && !tls_write_all(ssl, req->data, req->len, res))
		return;
	while (left) {
		n = left < sizeof(filler) ? left : sizeof(filler);
		if (!tls_write_all(ssl, filler, n, res))
			return;
		left -= n;
	}
}

static void read_verdict(SSL *ssl, struct tc_result *res)
{
	uint8_t hdr[FRAME_HDR_LEN], payload[FRAME_MAX_PAYLOAD], more;
	const char *why;
	int len;

	if (!tls_read_all(ssl, hdr, sizeof(hdr), res))
		return;
	len = frame_hdr_parse(hdr, FRAME_VERDICT, &why);
	if (len < 0) {
		fail(res, TC_BAD_FRAME, "VERDICT header", why);
		return;
	}
	if (!tls_read_all(ssl, payload, len, res))
		return;
	if (frame_verdict_decode(payload, len, &res->verdict, &why)) {
		fail(res, TC_BAD_FRAME, "VERDICT payload", why);
		return;
	}
	res->end = TC_VERDICT;
	res->detail[0] = '\0';
	if (!res->verdict.allow) {
		struct tc_result after = {};

		SSL_set_app_data(ssl, &after);
		if (tls_read_all(ssl, &more, 1, &after))
			fail(&after, TC_BAD_FRAME, "after the deny", "more bytes");
		res->after_deny = after.end;
		snprintf(res->detail, sizeof(res->detail), "%s", after.detail);
		SSL_set_app_data(ssl, res);
	}
}

/* An orderly close: the server sees close_notify and a FIN, whatever it
 * sent us meanwhile (session tickets) is read, so no RST. */
static void close_orderly(SSL *ssl, int fd, struct tc_result *res)
{
	char buf[256];

	SSL_shutdown(ssl);
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	res->end = TC_CLOSED;
}

static void close_reset(int fd, struct tc_result *res)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	res->end = TC_CLOSED;
}

static SSL_CTX *client_ctx(const struct tc_req *req, struct tc_result *res)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char buf[128];

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    (req->cert && SSL_CTX_use_certificate_file(ctx, req->cert, SSL_FILETYPE_PEM) != 1) ||
	    (req->key && SSL_CTX_use_PrivateKey_file(ctx, req->key, SSL_FILETYPE_PEM) != 1) ||
	    (req->ca && SSL_CTX_load_verify_file(ctx, req->ca) != 1)) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		fail(res, TC_ERROR, "TLS context", buf);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, req->ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_info_callback(ctx, on_info);
	return ctx;
}

static int tcp_connect(const struct tc_req *req, struct tc_result *res)
{
	struct timeval tv = {.tv_sec = req->timeout_ms / 1000,
			     .tv_usec = req->timeout_ms % 1000 * 1000};
	struct sockaddr_storage ss;
	int fd, ret;

	ret = netns_join(req->ns);
	if (ret) {
		fail(res, TC_ERROR, req->ns, strerror(-ret));
		return -1;
	}
	if (parse_sockaddr(req->addr, &ss)) {
		fail(res, TC_ERROR, req->addr, "not IP:PORT");
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(res, TC_ERROR, "socket", strerror(errno));
		return -1;
	}
	/* The send timeout also bounds connect(). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sizeof(ss))) {
		fail(res, errno == EINPROGRESS ? TC_TIMEOUT : TC_ERROR, "connect", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void *client_main(void *arg)
{
	const struct tc_req *req = ((struct tc_run *)arg)->req;
	struct tc_result *res = ((struct tc_run *)arg)->res;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int fd, ret;

	fd = tcp_connect(req, res);
	if (fd < 0)
		return NULL;
	ctx = client_ctx(req, res);
	if (ctx)
		ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		if (ctx)
			fail(res, TC_ERROR, "SSL_new", "out of memory");
		goto out;
	}
	SSL_set_app_data(ssl, res);
	errno = 0;
	ret = SSL_connect(ssl);
	if (ret != 1) {
		tls_ended(ssl, ret, errno, res, "handshake");
		goto out;
	}
	res->handshake_done = true;
	send_all(ssl, req, res);
	if (req->then == TC_THEN_CLOSE)
		close_orderly(ssl, fd, res);
	else if (req->then == TC_THEN_RESET)
		close_reset(fd, res);
	else
		read_verdict(ssl, res);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return NULL;
}

int tunnel_client_run(const struct tc_req *req, struct tc_result *res)
{
	struct tc_run run = {.req = req, .res = res};
	pthread_t th;
	int ret;

	memset(res, 0, sizeof(*res));
	res->end = TC_ERROR;
	ret = pthread_create(&th, NULL, client_main, &run);
	if (ret)
		return -ret;
	pthread_join(th, NULL);
	return 0;
}
