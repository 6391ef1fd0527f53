/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh PKI. One CA per trust domain (ECDSA P-256, self-signed, URI SAN
 * spiffe://TD) issues short-lived node certificates whose only URI SAN is
 * spiffe://TD/node/NODE, usable as TLS client and server. Agents load CA,
 * certificate and key from files, reload them when the files change (a
 * mounted Kubernetes Secret), and authenticate each other with TLS 1.3 over
 * them.
 * Making the CA and issuing from it is pki_ca.h, for sluicectl alone.
 *
 * Every function returns 0 or a negative errno with the message in err
 * (which may be NULL); a message names the file or the peer and says what
 * to do. Key material never appears in a message.
 *
 * A certificate that fails verification is refused with one of:
 *   -EKEYEXPIRED   expired or not yet valid;
 *   -EKEYREJECTED  does not verify against the mesh CA (another CA, a bad
 *                  signature, the wrong usage), or the key does not match;
 *   -EACCES        a valid mesh certificate for the wrong identity (trust
 *                  domain, node, not a node SPIFFE ID);
 *   -EPERM         (pki_load) the key file is open to group or others
 *                  (-EINVAL when it is no regular file).
 * The tunnel can map them to its reason codes.
 */
#ifndef SLUICE_PKI_H
#define SLUICE_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/types.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "errmsg.h"
#include "jwks.h"

#define PKI_DEFAULT_DIR "/etc/sluice/ca"
#define PKI_CA_CERT "ca.crt"
#define PKI_CA_KEY "ca.key"
#define PKI_NODE_CERT "node.crt"
#define PKI_NODE_KEY "node.key"

/* x5t#S256: base64url of a SHA-256 without padding, 43 characters, and a NUL. */
#define PKI_THUMBPRINT_LEN 44
#define PKI_ID_MAX 256
/* pki_verify_peer() remembers a certificate it accepted for this long (never
 * past the certificate's notAfter), for at most this many certificates. */
#define PKI_VERIFIED_TTL 30
#define PKI_VERIFIED_MAX 256
/* Server sessions a TLS context keeps for resumption, the oldest dropped
 * first. */
#define PKI_SESSION_CACHE_MAX 4096

struct pki_paths {
	const char *ca;			/* the mesh CA's certificate: the only trust anchor */
	const char *cert;		/* this node's certificate */
	const char *key;		/* its private key: mode 0600 or stricter */
};

enum pki_file {
	PKI_FILE_CA,
	PKI_FILE_CERT,
	PKI_FILE_KEY,
	PKI_NR_FILES,
};

/* What fstat() said of a file when it was read; stat() saying anything else
 * means it was rewritten, replaced (a Secret's symlink swap) or chmod'ed. */
struct pki_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

/*
 * A peer certificate pki_verify_peer() accepted, with all the tunnel needs
 * of it: one entry serves the certificate check and the token's key and
 * cnf binding, so an inbound peer's certificate is hashed and decoded once
 * rather than per check.
 */
struct pki_peer {
	unsigned char md[SHA256_DIGEST_LENGTH];	/* of the DER: the entry's key */
	char spiffe_id[PKI_ID_MAX];	/* spiffe://TD/node/NAME */
	char thumbprint[PKI_THUMBPRINT_LEN]; /* x5t#S256 (RFC 8705) of the same DER */
	struct jwks *keys;		/* its public key, kid thumbprint: pki_peer_keys() */
	time_t from, until;		/* accepted again without a check in [from, until) */
};

struct pki_creds {
	X509 *ca;
	X509 *cert;
	EVP_PKEY *key;
	X509_STORE *store;		/* ca alone, shared with the SSL contexts */
	char spiffe_id[PKI_ID_MAX];	/* spiffe://TD/node/NODE */
	time_t not_after;		/* of cert */
	char thumbprint[PKI_THUMBPRINT_LEN]; /* of cert, for RFC 8705 cnf claims */
	char *trust_domain;
	char *node;
	char *path[PKI_NR_FILES];
	struct pki_stamp stamp[PKI_NR_FILES];
	/* Peers accepted under this CA: a reloaded CA starts with none. */
	struct pki_peer *verified;	/* PKI_VERIFIED_MAX slots */
	int nr_verified;
};

/*
 * Reads the CA certificate, the node certificate and its key, and refuses:
 * a key file readable or writable by group or others; a CA certificate that
 * is not a valid CA of trust_domain; a node certificate that is expired or
 * not yet valid, does not verify against the CA (the only trust anchor) for
 * TLS client and server use, or whose SPIFFE ID is not
 * spiffe://trust_domain/node/node; a key that does not match it.
 */
int pki_load(const struct pki_paths *paths, const char *trust_domain, const char *node,
	     struct pki_creds **out, struct errmsg *err);
void pki_creds_free(struct pki_creds *c);

/* Whether any of c's files changed since it was read: three stat() calls. */
bool pki_changed(const struct pki_creds *c);

/*
 * When pki_changed(*c), loads the files again with the same trust domain
 * and node. Returns 1 if *c was replaced: the old creds are freed, and SSL
 * contexts made from them keep working (they hold references of their own),
 * so established tunnels are untouched; make new contexts for new
 * connections. Returns 0 if nothing changed. On a negative errno the new
 * files were refused (err says why: log it) and *c is kept; the same files
 * are not tried again until they change once more. A certificate and key
 * replaced one after the other can be seen half-way (a mismatch), then load
 * on the next call.
 */
int pki_reload(struct pki_creds **c, struct errmsg *err);

/*
 * Verifies a peer's node certificate against c's CA, after a TLS handshake
 * (SSL_get0_peer_certificate(), SSL_get_peer_cert_chain()), resumed ones too:
 * resumption skips certificate verification, this does not, so an expired
 * peer cannot resume its way in. chain holds untrusted extras and may be
 * NULL. On success *out is the peer's entry: its SPIFFE ID
 * (spiffe://TD/node/NAME, TD being c's trust domain) and thumbprint. The
 * caller checks NAME is the node it meant to reach. *out stays valid until
 * the next pki_verify_peer() or pki_reload() on c.
 *
 * A certificate accepted once (the same DER, by its SHA-256) is accepted
 * again without the signature check until PKI_VERIFIED_TTL seconds have
 * passed or its notAfter is reached, whichever comes first: the leaf alone
 * decides (the CA signs it directly), so only time can change the answer.
 * Refusals are never remembered.
 */
int pki_verify_peer(struct pki_creds *c, X509 *peer, STACK_OF(X509) *chain,
		    struct pki_peer **out, struct errmsg *err);

/* The key set for the tokens peer mints with its node key: cert's public
 * key under the thumbprint as kid (jwks_from_cert()), made the first time
 * and kept with the entry. cert is the certificate pki_verify_peer()
 * accepted as peer. */
int pki_peer_keys(struct pki_peer *peer, X509 *cert, struct jwks **out, struct errmsg *err);

/*
 * A TLS context for tunnels: TLS 1.3 only; ciphersuites
 * TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
 * groups X25519:P-256; c's certificate and key, sent without a chain (the
 * peer has the CA); c's CA as the only trust
 * anchor (no system store) and mutual authentication required on both
 * sides (the server also fails a client without a certificate).
 * Resumption: the server keeps its sessions in the context's cache
 * (PKI_SESSION_CACHE_MAX, oldest dropped first) and sends one session
 * ticket per handshake that only names a cached session (stateful: a
 * resumption costs a lookup rather than decrypting and decoding a ticket
 * with the peer's certificate inside; a new context, so new credentials,
 * forgets them all). A resumed session keeps the peer certificate of the
 * handshake that made it. The client side stores nothing itself: the tunnel
 * takes each new session from the callback it sets
 * (SSL_CTX_sess_set_new_cb()) and passes it to SSL_set_session() on the next
 * connection to that peer. Refuses expired creds. Free with SSL_CTX_free().
 */
int pki_ssl_ctx(const struct pki_creds *c, bool server, SSL_CTX **out, struct errmsg *err);

/* x5t#S256 (RFC 8705): base64url, unpadded, of the SHA-256 of the DER
 * certificate. -ENOSPC when len < PKI_THUMBPRINT_LEN. */
int pki_thumbprint(X509 *cert, char *out, size_t len);

/* The certificate's SPIFFE ID, its one URI SAN: -ENOENT without one,
 * -EINVAL with several, -ENAMETOOLONG when it does not fit. */
int pki_spiffe_id(X509 *cert, char *out, size_t len);
/* Reads one PEM certificate. */
int pki_read_cert(const char *path, X509 **out, struct errmsg *err);
int pki_asn1_time(const ASN1_TIME *t, time_t *out);
/* 2026-11-24T18:00:01Z */
char *pki_fmt_time(time_t t, char *buf, size_t len);

#endif
