// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Node credentials: loading and checking them, reloading them when their
 * files change, verifying peers, and the TLS contexts tunnels build on them.
 * The CA that issues them is pki_ca.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "b64url.h"
#include "fileopen.h"
#include "pki.h"
#include "pki_int.h"
#include "spiffe.h"

#define TLS_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256"
#define NO_FILE_HINT " (sluicectl ca init creates a CA, sluicectl ca issue a node's files)"

/* Formats the message and OpenSSL's reason for the failure, and empties
 * OpenSSL's error queue so the next failure reports its own reason. */
int ossl_err(struct errmsg *err, int ret, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	char what[ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return errmsg_set(err, ret, "%s: %s", what, reason ?: "unknown OpenSSL error");
}

static void stamp_set(struct pki_stamp *s, const struct stat *st)
{
	/* Zeroed padding: stamps compare with memcmp(). */
	memset(s, 0, sizeof(*s));
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
}

/* stat() follows symlinks, as open() did: a Secret's swapped ..data link
 * shows as another inode. A missing file stamps as zeroes. */
static void stamp_path(const char *path, struct pki_stamp *s)
{
	struct stat st;

	if (stat(path, &st))
		memset(s, 0, sizeof(*s));
	else
		stamp_set(s, &st);
}

/* st describes what was opened, whatever the path names by the time we look. */
static int open_read(const char *path, struct stat *st, FILE **fp, struct errmsg *err)
{
	int fd, ret;

	fd = fileopen_read(path, st);
	ret = fd;
	if (fd >= 0 && !(*fp = fdopen(fd, "r"))) {
		ret = -errno;
		close(fd);
	}
	if (ret < 0)
		return errmsg_set(err, ret, "%s: %s%s", path, strerror(-ret),
				  ret == -ENOENT ? NO_FILE_HINT : "");
	return 0;
}

/* Never prompts on a terminal: an encrypted key is refused. */
static int no_pass(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

int read_cert(const char *path, struct pki_stamp *stamp, X509 **out, struct errmsg *err)
{
	struct stat st;
	FILE *fp;
	int ret;

	ret = open_read(path, &st, &fp, err);
	if (ret)
		return ret;
	*out = PEM_read_X509(fp, NULL, no_pass, NULL);
	fclose(fp);
	if (!*out)
		return ossl_err(err, -EINVAL, "%s: not a PEM certificate", path);
	if (stamp)
		stamp_set(stamp, &st);
	return 0;
}

int pki_read_cert(const char *path, X509 **out, struct errmsg *err)
{
	return read_cert(path, NULL, out, err);
}

int read_key(const char *path, struct pki_stamp *stamp, EVP_PKEY **out, struct errmsg *err)
{
	struct stat st;
	FILE *fp;
	int ret;

	ret = open_read(path, &st, &fp, err);
	if (ret)
		return ret;
	/* On the file opened, before a byte of the key is read. */
	ret = fileopen_private("", path, &st, err);
	if (!ret) {
		*out = PEM_read_PrivateKey(fp, NULL, no_pass, NULL);
		if (!*out)
			ret = ossl_err(err, -EINVAL,
				       "%s: not a PEM private key (encrypted keys are not supported)",
				       path);
	}
	fclose(fp);
	if (!ret && stamp)
		stamp_set(stamp, &st);
	return ret;
}

int pki_asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

char *pki_fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
	return buf;
}

/* hint, when not empty, says what to do: " (issue a new one ...)". */
int check_time(X509 *cert, const char *name, const char *hint, struct errmsg *err)
{
	time_t now = time(NULL), not_before, not_after;
	char when[32];

	if (pki_asn1_time(X509_get0_notBefore(cert), &not_before) ||
	    pki_asn1_time(X509_get0_notAfter(cert), &not_after))
		return errmsg_set(err, -EKEYREJECTED, "%s: unreadable validity dates", name);
	if (now < not_before)
		return errmsg_set(err, -EKEYEXPIRED,
				  "%s: not valid until %s (is this clock or the issuer's wrong?)",
				  name, pki_fmt_time(not_before, when, sizeof(when)));
	if (now > not_after)
		return errmsg_set(err, -EKEYEXPIRED, "%s: expired at %s%s", name,
				  pki_fmt_time(not_after, when, sizeof(when)), hint);
	return 0;
}

int check_pair(X509 *cert, const char *cert_path, EVP_PKEY *key, const char *key_path,
	       const char *hint, struct errmsg *err)
{
	if (X509_check_private_key(cert, key) == 1)
		return 0;
	ERR_clear_error();
	return errmsg_set(err, -EKEYREJECTED, "%s: not the key of %s%s", key_path, cert_path,
			  hint);
}

int pki_spiffe_id(X509 *cert, char *out, size_t len)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const ASN1_IA5STRING *uri = NULL;
	int ret = -ENOENT, n;

	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_URI)
			continue;
		if (uri) {
			uri = NULL;
			ret = -EINVAL;
			break;
		}
		uri = gn->d.uniformResourceIdentifier;
	}
	if (uri) {
		n = ASN1_STRING_length(uri);
		if (memchr(ASN1_STRING_get0_data(uri), '\0', n))
			ret = -EINVAL;
		else if ((size_t)n >= len)
			ret = -ENAMETOOLONG;
		else
			ret = 0;
	}
	if (!ret)
		snprintf(out, len, "%.*s", n, ASN1_STRING_get0_data(uri));
	GENERAL_NAMES_free(names);
	return ret;
}

static int verify_chain(const struct node_check *nc, struct errmsg *err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ret = 0;

	if (!ctx || !X509_STORE_CTX_init(ctx, nc->store, nc->cert, nc->chain)) {
		X509_STORE_CTX_free(ctx);
		return ossl_err(err, -ENOMEM, "%s: cannot verify", nc->name);
	}
	/* Both ends of a tunnel are clients and servers: both usages, and the
	 * CA itself signs every leaf (depth 0: no intermediates). */
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), 0);
	if (X509_verify_cert(ctx) != 1)
		ret = errmsg_set(err, -EKEYREJECTED, "%s: does not verify against the mesh CA %s: %s%s",
				 nc->name, nc->ca_path,
				 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)),
				 nc->hint);
	else if (X509_check_purpose(nc->cert, X509_PURPOSE_SSL_SERVER, 0) != 1)
		ret = errmsg_set(err, -EKEYREJECTED,
				 "%s: not usable by a TLS server (a node certificate has extended key "
				 "usage serverAuth and clientAuth)%s",
				 nc->name, nc->hint);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}

static int check_node_id(const struct node_check *nc, char *id, size_t len, struct errmsg *err)
{
	const size_t pfx = strlen(SPIFFE_PREFIX), npath = strlen(NODE_PATH);
	size_t td_len = strlen(nc->trust_domain);
	const char *name;

	if (pki_spiffe_id(nc->cert, id, len))
		return errmsg_set(err, -EACCES, "%s: has no single SPIFFE ID (URI SAN)%s", nc->name,
				  nc->hint);
	if (strncmp(id, SPIFFE_PREFIX, pfx) || strncmp(id + pfx, nc->trust_domain, td_len) ||
	    (id[pfx + td_len] && id[pfx + td_len] != '/'))
		return errmsg_set(err, -EACCES, "%s: SPIFFE ID %s is not in trust domain %s%s",
				  nc->name, id, nc->trust_domain, nc->hint);
	name = id + pfx + td_len;
	if (strncmp(name, NODE_PATH, npath) || !node_name_valid(name + npath))
		return errmsg_set(err, -EACCES,
				  "%s: SPIFFE ID %s is not a node's (spiffe://%s/node/NAME)%s",
				  nc->name, id, nc->trust_domain, nc->hint);
	name += npath;
	if (nc->node && strcmp(name, nc->node))
		return errmsg_set(err, -EACCES, "%s: SPIFFE ID %s is node %s's, not %s's%s",
				  nc->name, id, name, nc->node, nc->hint);
	return 0;
}

/* Times first, for their clear message; then the chain, so that nothing the
 * certificate says is believed before the CA's signature is checked. */
int check_node(const struct node_check *nc, char *id, size_t len, struct errmsg *err)
{
	int ret;

	ret = check_time(nc->cert, nc->name, nc->hint, err);
	if (!ret)
		ret = verify_chain(nc, err);
	if (!ret)
		ret = check_node_id(nc, id, len, err);
	return ret;
}

int pki_thumbprint(X509 *cert, char *out, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned int n;

	if (len < PKI_THUMBPRINT_LEN)
		return -ENOSPC;
	if (!X509_digest(cert, EVP_sha256(), md, &n)) {
		ERR_clear_error();
		return -EINVAL;
	}
	b64url_encode(md, n, out);
	return 0;
}

void pki_creds_free(struct pki_creds *c)
{
	if (!c)
		return;
	X509_free(c->ca);
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	X509_STORE_free(c->store);
	for (int i = 0; i < c->nr_verified; i++)
		jwks_free(c->verified[i].keys);
	free(c->verified);
	free(c->trust_domain);
	free(c->node);
	for (int i = 0; i < PKI_NR_FILES; i++)
		free(c->path[i]);
	free(c);
}

static struct pki_creds *creds_new(const struct pki_paths *p, const char *td, const char *node)
{
	struct pki_creds *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->trust_domain = strdup(td);
	c->node = strdup(node);
	c->path[PKI_FILE_CA] = strdup(p->ca);
	c->path[PKI_FILE_CERT] = strdup(p->cert);
	c->path[PKI_FILE_KEY] = strdup(p->key);
	c->store = X509_STORE_new();
	c->verified = calloc(PKI_VERIFIED_MAX, sizeof(*c->verified));
	if (c->trust_domain && c->node && c->path[PKI_FILE_CA] && c->path[PKI_FILE_CERT] &&
	    c->path[PKI_FILE_KEY] && c->store && c->verified)
		return c;
	pki_creds_free(c);
	return NULL;
}

static int creds_read(struct pki_creds *c, struct errmsg *err)
{
	int ret;

	ret = read_cert(c->path[PKI_FILE_CA], &c->stamp[PKI_FILE_CA], &c->ca, err);
	if (!ret)
		ret = read_cert(c->path[PKI_FILE_CERT], &c->stamp[PKI_FILE_CERT], &c->cert, err);
	if (!ret)
		ret = read_key(c->path[PKI_FILE_KEY], &c->stamp[PKI_FILE_KEY], &c->key, err);
	if (!ret && !X509_STORE_add_cert(c->store, c->ca))
		ret = ossl_err(err, -ENOMEM, "%s: cannot make it a trust anchor",
			       c->path[PKI_FILE_CA]);
	return ret;
}

static int creds_check(struct pki_creds *c, struct errmsg *err)
{
	const char *ca_path = c->path[PKI_FILE_CA], *cert_path = c->path[PKI_FILE_CERT];
	struct node_check nc = { .store = c->store, .ca_path = ca_path, .cert = c->cert,
				 .name = cert_path, .trust_domain = c->trust_domain,
				 .node = c->node };
	char td[PKI_ID_MAX], hint[128];
	int ret;

	ret = check_ca(c->ca, ca_path, td, sizeof(td), err);
	if (ret)
		return ret;
	if (strcmp(td, c->trust_domain))
		return errmsg_set(err, -EACCES,
				  "%s: the CA of trust domain %s, not %s (the configured trust domain "
				  "and the CA must agree)",
				  ca_path, td, c->trust_domain);
	snprintf(hint, sizeof(hint), " (issue a new one with 'sluicectl ca issue %s')", c->node);
	nc.hint = hint;
	ret = check_node(&nc, c->spiffe_id, sizeof(c->spiffe_id), err);
	if (!ret)
		ret = check_pair(c->cert, cert_path, c->key, c->path[PKI_FILE_KEY], hint, err);
	if (!ret && (pki_asn1_time(X509_get0_notAfter(c->cert), &c->not_after) ||
		     pki_thumbprint(c->cert, c->thumbprint, sizeof(c->thumbprint))))
		ret = errmsg_set(err, -EINVAL, "%s: cannot read it back", cert_path);
	return ret;
}

int pki_load(const struct pki_paths *paths, const char *trust_domain, const char *node,
	     struct pki_creds **out, struct errmsg *err)
{
	struct pki_creds *c = creds_new(paths, trust_domain, node);
	int ret;

	if (!c)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = creds_read(c, err);
	if (!ret)
		ret = creds_check(c, err);
	if (ret) {
		pki_creds_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* Fills now[] with the files' stamps; true when one differs from c's. */
static bool stamps_take(const struct pki_creds *c, struct pki_stamp *now)
{
	bool changed = false;

	for (int i = 0; i < PKI_NR_FILES; i++) {
		stamp_path(c->path[i], &now[i]);
		changed |= memcmp(&now[i], &c->stamp[i], sizeof(now[i])) != 0;
	}
	return changed;
}

bool pki_changed(const struct pki_creds *c)
{
	struct pki_stamp now[PKI_NR_FILES];

	return stamps_take(c, now);
}

int pki_reload(struct pki_creds **c, struct errmsg *err)
{
	struct pki_stamp now[PKI_NR_FILES];
	struct pki_paths paths = {
		.ca = (*c)->path[PKI_FILE_CA],
		.cert = (*c)->path[PKI_FILE_CERT],
		.key = (*c)->path[PKI_FILE_KEY],
	};
	struct pki_creds *fresh;
	int ret;

	if (!stamps_take(*c, now))
		return 0;
	ret = pki_load(&paths, (*c)->trust_domain, (*c)->node, &fresh, err);
	if (ret) {
		/* Taken before the load: a change during it is seen next time. */
		memcpy((*c)->stamp, now, sizeof(now));
		return ret;
	}
	pki_creds_free(*c);
	*c = fresh;
	return 1;
}

static bool ssl_ctx_setup(SSL_CTX *ctx, const struct pki_creds *c, bool server)
{
	static const unsigned char sid_ctx[] = "sluice-tunnel";

	/* The server also refuses a client that sends no certificate; both
	 * check the peer's usage for its role. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	SSL_CTX_set_verify_depth(ctx, 0);
	SSL_CTX_set1_cert_store(ctx, c->store);
	if (server) {
		/* TLS 1.3 without stateless tickets: tickets name sessions kept
		 * here. The client keeps only the newest, so one per handshake. */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, PKI_SESSION_CACHE_MAX);
		SSL_CTX_set_num_tickets(ctx, 1);
	} else {
		/* The tunnel keeps its sessions from the new-session callback. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
							    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	}
	/* Send the leaf alone: both ends hold the CA already. Auto-chaining
	 * would add it from the store, costing bytes on every handshake, and a
	 * peer of another mesh would then be refused as "certificate chain too
	 * long" (depth 0) instead of "unable to get local issuer certificate". */
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	/* One read() for what the socket holds rather than two per record
	 * (header, then body). Bytes read ahead raise no epoll edge: a reader
	 * reads on until SSL_ERROR_WANT_READ (as the proxy does). */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Without a session id context a server with client certificates
	 * refuses every resumption. */
	return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) &&
	       SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
	       SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERSUITES) &&
	       SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) &&
	       SSL_CTX_set_purpose(ctx, server ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER) &&
	       SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) &&
	       SSL_CTX_use_certificate(ctx, c->cert) == 1 &&
	       SSL_CTX_use_PrivateKey(ctx, c->key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
}

int pki_ssl_ctx(const struct pki_creds *c, bool server, SSL_CTX **out, struct errmsg *err)
{
	SSL_CTX *ctx;
	int ret;

	ret = check_time(c->cert, c->path[PKI_FILE_CERT], "", err);
	if (ret)
		return ret;
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx || !ssl_ctx_setup(ctx, c, server)) {
		SSL_CTX_free(ctx);
		return ossl_err(err, -EINVAL, "cannot make a TLS context for %s",
				c->path[PKI_FILE_CERT]);
	}
	*out = ctx;
	return 0;
}
