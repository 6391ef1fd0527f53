// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The mesh PKI in a temporary directory: a CA (acme.example) and node-a's
 * files issued from it before every test, then loads, each refusal with
 * its message, peer verification, and TLS 1.3 handshakes between two
 * pki_ssl_ctx() ends over a socketpair. No privileges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "pki_ca.h"

#define TD "acme.example"
#define HINT " (issue a new one with 'sluicectl ca issue node-a')"
#define DAY 86400
/* Room for messages that name up to three paths. */
#define MSG_LEN (3 * PATH_MAX + 256)

struct fx {
	char dir[64];
	char ca_dir[PATH_MAX];		/* the CA: ca.crt, ca.key */
	char node_dir[PATH_MAX];	/* node-a's files */
	char ca[PATH_MAX];
	char cert[PATH_MAX];
	char key[PATH_MAX];
	struct pki_paths paths;
};

static void join(char *buf, const char *dir, const char *name)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

static void issue(const char *ca_dir, const char *node, const char *out, time_t not_before,
		  time_t not_after)
{
	struct errmsg err = {};
	int ret = pki_issue(ca_dir, node, out, not_before, not_after, &err);

	if (ret)
		fail_msg("pki_issue: %s", err.msg);
}

static void ca_init(const char *dir, const char *td)
{
	struct errmsg err = {};
	int ret = pki_ca_init(dir, td, 365, false, &err);

	if (ret)
		fail_msg("pki_ca_init: %s", err.msg);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	time_t now = time(NULL);

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/test_pki.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	join(fx->ca_dir, fx->dir, "ca");
	join(fx->node_dir, fx->ca_dir, "node-a");
	ca_init(fx->ca_dir, TD);
	issue(fx->ca_dir, "node-a", fx->node_dir, now - PKI_CLOCK_SKEW, now + DAY);
	join(fx->ca, fx->node_dir, PKI_CA_CERT);
	join(fx->cert, fx->node_dir, PKI_NODE_CERT);
	join(fx->key, fx->node_dir, PKI_NODE_KEY);
	fx->paths = (struct pki_paths){ .ca = fx->ca, .cert = fx->cert, .key = fx->key };
	*state = fx;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static struct pki_creds *load_ok(const struct pki_paths *paths, const char *td, const char *node)
{
	struct pki_creds *c = NULL;
	struct errmsg err = {};

	if (pki_load(paths, td, node, &c, &err))
		fail_msg("pki_load: %s", err.msg);
	return c;
}

static void load_fails(const struct pki_paths *paths, const char *td, const char *node,
		       int want_ret, const char *want_msg)
{
	struct pki_creds *c = NULL;
	struct errmsg err = {};

	assert_int_equal(pki_load(paths, td, node, &c, &err), want_ret);
	assert_null(c);
	assert_string_equal(err.msg, want_msg);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static X509 *read_x509(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

static char *utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static time_t cert_time(const ASN1_TIME *t)
{
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

static void test_issue_and_load(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	X509 *ca = read_x509(fx->ca);
	time_t now = time(NULL);
	BIGNUM *serial;

	assert_string_equal(c->spiffe_id, "spiffe://" TD "/node/node-a");
	assert_true(c->not_after >= now + DAY - 5 && c->not_after <= now + DAY);
	assert_int_equal(strlen(c->thumbprint), 43);
	assert_int_equal(X509_cmp(c->ca, ca), 0);
	X509_free(ca);

	/* Back-dated by the clock skew allowance, a 128-bit serial. */
	assert_true(llabs((long long)(cert_time(X509_get0_notBefore(c->cert)) -
				      (now - PKI_CLOCK_SKEW))) <= 5);
	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->cert), NULL);
	assert_int_equal(BN_num_bits(serial), 128);
	BN_free(serial);

	/* Node: a TLS client and server, not a CA, key usage digitalSignature. */
	assert_int_equal(X509_check_ca(c->cert), 0);
	assert_int_equal(X509_get_key_usage(c->cert), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(c->cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_non_null(X509_get0_authority_key_id(c->cert));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c->cert),
					       X509_get0_subject_key_id(c->ca)),
			 0);

	/* CA: signs certificates and CRLs only, no intermediates below it. */
	assert_int_equal(X509_check_ca(c->ca), 1);
	assert_int_equal(X509_get_pathlen(c->ca), 0);
	assert_int_equal(X509_get_key_usage(c->ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(c->ca));
	pki_creds_free(c);
}

static void test_key_files_0600_whatever_the_umask(void **state)
{
	struct fx *fx = *state;
	char dir[PATH_MAX], key[PATH_MAX], cert[PATH_MAX];
	mode_t old = umask(0);
	time_t now = time(NULL);

	join(dir, fx->dir, "ca0");
	ca_init(dir, TD);
	issue(dir, "node-b", dir, now, now + 60);
	umask(old);
	join(key, dir, PKI_CA_KEY);
	assert_int_equal(file_mode(key), 0600);
	join(key, dir, PKI_NODE_KEY);
	assert_int_equal(file_mode(key), 0600);
	join(cert, dir, PKI_NODE_CERT);
	assert_int_equal(file_mode(cert), 0644);
	assert_int_equal(file_mode(dir), 0700);
	assert_int_equal(file_mode(fx->key), 0600);
}

static void test_init_refuses_to_replace(void **state)
{
	struct fx *fx = *state;
	char want[MSG_LEN], before[PKI_THUMBPRINT_LEN], after[PKI_THUMBPRINT_LEN];
	struct errmsg err = {};
	char ca[PATH_MAX];
	X509 *x;

	join(ca, fx->ca_dir, PKI_CA_CERT);
	x = read_x509(ca);
	assert_int_equal(pki_thumbprint(x, before, sizeof(before)), 0);
	X509_free(x);

	assert_int_equal(pki_ca_init(fx->ca_dir, TD, 365, false, &err), -EEXIST);
	snprintf(want, sizeof(want),
		 "%s/ca.key exists: refusing to replace the mesh CA (--force does, and every "
		 "certificate it issued stops verifying)",
		 fx->ca_dir);
	assert_string_equal(err.msg, want);
	x = read_x509(ca);
	assert_int_equal(pki_thumbprint(x, after, sizeof(after)), 0);
	X509_free(x);
	assert_string_equal(after, before);

	assert_int_equal(pki_ca_init(fx->ca_dir, TD, 365, true, &err), 0);
	x = read_x509(ca);
	assert_int_equal(pki_thumbprint(x, after, sizeof(after)), 0);
	X509_free(x);
	assert_string_not_equal(after, before);
	/* node-a's certificate came from the replaced CA. */
	fx->paths.ca = ca;
	snprintf(want, sizeof(want),
		 "%s: does not verify against the mesh CA %s: unable to get local issuer "
		 "certificate" HINT,
		 fx->cert, ca);
	load_fails(&fx->paths, TD, "node-a", -EKEYREJECTED, want);
}

static void test_bad_names(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	time_t now = time(NULL);
	char dir[PATH_MAX];

	join(dir, fx->dir, "bad");
	assert_int_equal(pki_ca_init(dir, "acme..example", 1, false, &err), -EINVAL);
	assert_string_equal(err.msg, "bad trust domain \"acme..example\": expected a lowercase DNS "
				     "name such as acme.example");
	assert_int_equal(pki_issue(fx->ca_dir, "Node_A", dir, now, now + 60, &err), -EINVAL);
	assert_string_equal(err.msg, "bad node name \"Node_A\": expected 1-63 characters of a-z, "
				     "0-9, '.' and '-'");
	/* Node names become path segments: OUT defaults to DIR/NODE. */
	assert_int_equal(pki_issue(fx->ca_dir, "..", dir, now, now + 60, &err), -EINVAL);
	assert_string_equal(err.msg, "bad node name \"..\": cannot be \".\" or \"..\"");
	assert_int_equal(pki_issue(fx->ca_dir, ".", dir, now, now + 60, &err), -EINVAL);
	assert_string_equal(err.msg, "bad node name \".\": cannot be \".\" or \"..\"");
	assert_int_equal(access(dir, F_OK), -1);
}

static void test_issue_cannot_outlive_ca(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	time_t now = time(NULL);
	char dir[PATH_MAX], out[PATH_MAX], want[MSG_LEN], when[32];
	X509 *ca;

	join(dir, fx->dir, "short");
	join(out, dir, "node-a");
	assert_int_equal(pki_ca_init(dir, TD, 1, false, &err), 0);
	assert_int_equal(pki_issue(dir, "node-a", out, now, now + 2 * DAY, &err), -EINVAL);
	join(out, dir, PKI_CA_CERT);
	ca = read_x509(out);
	snprintf(want, sizeof(want),
		 "the certificate would outlive the CA in %s, which expires at %s: shorten it or "
		 "renew the CA",
		 out, utc(cert_time(X509_get0_notAfter(ca)), when, sizeof(when)));
	X509_free(ca);
	assert_string_equal(err.msg, want);
}

static void test_refuses_key_open_to_others(void **state)
{
	static const struct {
		mode_t mode;
		const char *what;
	} cases[] = {
		{ 0644, "readable by others" },
		{ 0602, "writable by others" },
		{ 0640, "readable by its group" },
		{ 0620, "writable by its group" },
	};
	struct fx *fx = *state;
	char want[MSG_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(chmod(fx->key, cases[i].mode), 0);
		snprintf(want, sizeof(want), "%s: mode %04o is %s: chmod 600 %s", fx->key,
			 cases[i].mode, cases[i].what, fx->key);
		load_fails(&fx->paths, TD, "node-a", -EPERM, want);
	}
	assert_int_equal(chmod(fx->key, 0400), 0);
	pki_creds_free(load_ok(&fx->paths, TD, "node-a"));
}

static void test_refuses_cert_from_another_ca(void **state)
{
	struct fx *fx = *state;
	char other[PATH_MAX], out[PATH_MAX], want[MSG_LEN];
	time_t now = time(NULL);

	/* Same trust domain, same node name: only the signature differs. */
	join(other, fx->dir, "other");
	join(out, other, "node-a");
	ca_init(other, TD);
	issue(other, "node-a", out, now - 60, now + DAY);
	join(fx->cert, out, PKI_NODE_CERT);
	join(fx->key, out, PKI_NODE_KEY);
	snprintf(want, sizeof(want),
		 "%s: does not verify against the mesh CA %s: unable to get local issuer "
		 "certificate" HINT,
		 fx->cert, fx->ca);
	load_fails(&fx->paths, TD, "node-a", -EKEYREJECTED, want);
}

static void test_refuses_expired_and_not_yet_valid(void **state)
{
	struct fx *fx = *state;
	time_t now = time(NULL);
	char want[MSG_LEN], when[32];

	issue(fx->ca_dir, "node-a", fx->node_dir, now - 2 * 3600, now - 3600);
	snprintf(want, sizeof(want), "%s: expired at %s" HINT, fx->cert,
		 utc(now - 3600, when, sizeof(when)));
	load_fails(&fx->paths, TD, "node-a", -EKEYEXPIRED, want);

	issue(fx->ca_dir, "node-a", fx->node_dir, now + 3600, now + 2 * 3600);
	snprintf(want, sizeof(want), "%s: not valid until %s (is this clock or the issuer's wrong?)",
		 fx->cert, utc(now + 3600, when, sizeof(when)));
	load_fails(&fx->paths, TD, "node-a", -EKEYEXPIRED, want);
}

/* A lifetime of a second: loads, then expires, and no TLS context is made
 * from the expired creds. */
/* Seconds: long enough to issue and load under ASan on a loaded host
 * (one second was not), short enough to wait out. */
#define SHORT_LIFETIME_S 3

static void test_short_lifetime(void **state)
{
	struct fx *fx = *state;
	time_t now = time(NULL);
	struct pki_creds *c;
	struct errmsg err = {};
	SSL_CTX *ctx = NULL;
	char want[MSG_LEN], when[32];

	issue(fx->ca_dir, "node-a", fx->node_dir, now - PKI_CLOCK_SKEW, now + SHORT_LIFETIME_S);
	c = load_ok(&fx->paths, TD, "node-a");
	assert_int_equal(c->not_after, now + SHORT_LIFETIME_S);
	while (time(NULL) <= now + SHORT_LIFETIME_S)
		sleep(1);
	snprintf(want, sizeof(want), "%s: expired at %s" HINT, fx->cert,
		 utc(now + SHORT_LIFETIME_S, when, sizeof(when)));
	load_fails(&fx->paths, TD, "node-a", -EKEYEXPIRED, want);
	assert_int_equal(pki_ssl_ctx(c, true, &ctx, &err), -EKEYEXPIRED);
	assert_null(ctx);
	pki_creds_free(c);
}

static void test_refuses_wrong_node(void **state)
{
	struct fx *fx = *state;
	char want[MSG_LEN];

	snprintf(want, sizeof(want),
		 "%s: SPIFFE ID spiffe://" TD "/node/node-a is node node-a's, not node-b's "
		 "(issue a new one with 'sluicectl ca issue node-b')",
		 fx->cert);
	load_fails(&fx->paths, TD, "node-b", -EACCES, want);
}

static void test_refuses_wrong_trust_domain(void **state)
{
	struct fx *fx = *state;
	char want[MSG_LEN];

	snprintf(want, sizeof(want),
		 "%s: the CA of trust domain " TD ", not other.example (the configured trust "
		 "domain and the CA must agree)",
		 fx->ca);
	load_fails(&fx->paths, "other.example", "node-a", -EACCES, want);
}

static void test_refuses_key_of_another_cert(void **state)
{
	struct fx *fx = *state;
	char out[PATH_MAX], want[MSG_LEN];
	time_t now = time(NULL);

	join(out, fx->dir, "again");
	issue(fx->ca_dir, "node-a", out, now - 60, now + DAY);
	join(fx->key, out, PKI_NODE_KEY);
	snprintf(want, sizeof(want), "%s: not the key of %s" HINT, fx->key, fx->cert);
	load_fails(&fx->paths, TD, "node-a", -EKEYREJECTED, want);
}

static void test_refuses_missing_file(void **state)
{
	struct fx *fx = *state;
	char want[MSG_LEN];

	assert_int_equal(unlink(fx->key), 0);
	snprintf(want, sizeof(want),
		 "%s: No such file or directory (sluicectl ca init creates a CA, sluicectl ca "
		 "issue a node's files)",
		 fx->key);
	load_fails(&fx->paths, TD, "node-a", -ENOENT, want);
}

/* x5t#S256 computed here with EVP alone: SHA-256 of the DER, base64url. */
static void test_thumbprint(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE], b64[64];
	char mine[PKI_THUMBPRINT_LEN];
	unsigned int md_len;
	int der_len, n;

	der_len = i2d_X509(c->cert, &der);
	assert_true(der_len > 0);
	assert_int_equal(EVP_Digest(der, der_len, md, &md_len, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	n = EVP_EncodeBlock(b64, md, md_len);
	while (n && b64[n - 1] == '=')
		b64[--n] = '\0';
	for (int i = 0; i < n; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];

	assert_string_equal(c->thumbprint, (char *)b64);
	assert_int_equal(pki_thumbprint(c->cert, mine, sizeof(mine)), 0);
	assert_string_equal(mine, (char *)b64);
	assert_int_equal(pki_thumbprint(c->cert, mine, sizeof(mine) - 1), -ENOSPC);
	pki_creds_free(c);
}

static void test_openssl_cli_verifies(void **state)
{
	struct fx *fx = *state;
	char cmd[3 * PATH_MAX], other[PATH_MAX], ca[PATH_MAX];

	if (system("command -v openssl >/dev/null 2>&1")) {
		print_message("openssl CLI not installed: skipping 'openssl verify'\n");
		skip();
	}
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s %s >/dev/null 2>&1", fx->ca,
		 fx->cert);
	assert_int_equal(system(cmd), 0);
	/* And it can fail: against another CA. */
	join(other, fx->dir, "other");
	ca_init(other, TD);
	join(ca, other, PKI_CA_CERT);
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s %s >/dev/null 2>&1", ca, fx->cert);
	assert_int_not_equal(system(cmd), 0);
}

static void test_changed_and_reload(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	char before[PKI_THUMBPRINT_LEN], saved[PATH_MAX];
	struct errmsg err = {};
	time_t now = time(NULL);
	FILE *f;

	strcpy(before, c->thumbprint);
	assert_false(pki_changed(c));
	assert_int_equal(pki_reload(&c, &err), 0);

	/* Re-issued: renamed into place. */
	issue(fx->ca_dir, "node-a", fx->node_dir, now - 60, now + DAY);
	assert_true(pki_changed(c));
	assert_int_equal(pki_reload(&c, &err), 1);
	assert_string_not_equal(c->thumbprint, before);
	assert_false(pki_changed(c));
	strcpy(before, c->thumbprint);

	/* Garbage written in place: refused once, old creds kept. */
	join(saved, fx->dir, "saved.crt");
	assert_int_equal(rename(fx->cert, saved), 0);
	f = fopen(fx->cert, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	assert_true(pki_changed(c));
	assert_true(pki_reload(&c, &err) < 0);
	assert_non_null(strstr(err.msg, "not a PEM certificate"));
	assert_string_equal(c->thumbprint, before);
	assert_false(pki_changed(c));
	assert_int_equal(pki_reload(&c, &err), 0);

	/* Key made readable by others: a chmod changes ctime. */
	assert_int_equal(rename(saved, fx->cert), 0);
	assert_int_equal(chmod(fx->key, 0644), 0);
	assert_true(pki_changed(c));
	assert_int_equal(pki_reload(&c, &err), -EPERM);
	assert_string_equal(c->thumbprint, before);

	assert_int_equal(chmod(fx->key, 0600), 0);
	assert_int_equal(pki_reload(&c, &err), 1);
	assert_string_equal(c->thumbprint, before);
	pki_creds_free(c);
}

/* A certificate for key signed by the test's CA, saying whatever id says. */
static X509 *sign_with_ca(const struct fx *fx, X509 *ca, const char *id, time_t not_before,
			  time_t not_after)
{
	struct pki_cert_req req = { .spiffe_id = id, .cn = "x", .not_before = not_before,
				    .not_after = not_after };
	char ca_key_path[PATH_MAX];
	struct errmsg err = {};
	EVP_PKEY *key, *ca_key;
	X509 *x = NULL;

	join(ca_key_path, fx->ca_dir, PKI_CA_KEY);
	ca_key = read_key(ca_key_path);
	assert_int_equal(pki_new_key(&key, &err), 0);
	if (pki_make_cert(&req, key, ca, ca_key, &x, &err))
		fail_msg("pki_make_cert: %s", err.msg);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return x;
}

/* Refused, and not remembered. */
/* pki_verify_peer(), the peer's ID copied to id. */
static int verify_id(struct pki_creds *c, X509 *peer, STACK_OF(X509) *chain, char *id,
		     size_t len, struct errmsg *err)
{
	struct pki_peer *p;
	int ret = pki_verify_peer(c, peer, chain, &p, err);

	if (!ret)
		snprintf(id, len, "%s", p->spiffe_id);
	return ret;
}

static void verify_peer_fails(struct pki_creds *c, X509 *peer, int want_ret,
			      const char *want_msg)
{
	int nr = c->nr_verified;
	char id[PKI_ID_MAX] = "";
	struct errmsg err = {};

	assert_int_equal(verify_id(c, peer, NULL, id, sizeof(id), &err), want_ret);
	assert_string_equal(err.msg, want_msg);
	assert_int_equal(c->nr_verified, nr);
	X509_free(peer);
}

static void test_verify_peer(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	char other[PATH_MAX], out[PATH_MAX], path[PATH_MAX], id[PKI_ID_MAX], want[MSG_LEN], when[32];
	time_t now = time(NULL);
	struct errmsg err = {};
	X509 *peer;

	/* Any node of the trust domain: its own ID back. */
	issue(fx->ca_dir, "node-b", fx->dir, now - 60, now + DAY);
	join(path, fx->dir, PKI_NODE_CERT);
	peer = read_x509(path);
	assert_int_equal(verify_id(c, peer, NULL, id, sizeof(id), &err), 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-b");
	X509_free(peer);

	join(other, fx->dir, "other");
	join(out, other, "node-b");
	ca_init(other, TD);
	issue(other, "node-b", out, now - 60, now + DAY);
	join(path, out, PKI_NODE_CERT);
	snprintf(want, sizeof(want),
		 "peer certificate: does not verify against the mesh CA %s: unable to get local "
		 "issuer certificate",
		 fx->ca);
	verify_peer_fails(c, read_x509(path), -EKEYREJECTED, want);

	snprintf(want, sizeof(want), "peer certificate: expired at %s",
		 utc(now - 10, when, sizeof(when)));
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://" TD "/node/node-b", now - 60,
					  now - 10),
			  -EKEYEXPIRED, want);
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://evil.example/node/node-b", now - 60,
					  now + 60),
			  -EACCES,
			  "peer certificate: SPIFFE ID spiffe://evil.example/node/node-b is not in "
			  "trust domain " TD);
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://" TD ".evil/node/node-b", now - 60,
					  now + 60),
			  -EACCES,
			  "peer certificate: SPIFFE ID spiffe://" TD ".evil/node/node-b is not in "
			  "trust domain " TD);
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://" TD "/job/1234", now - 60, now + 60),
			  -EACCES,
			  "peer certificate: SPIFFE ID spiffe://" TD "/job/1234 is not a node's "
			  "(spiffe://" TD "/node/NAME)");
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://" TD "/node/..", now - 60, now + 60),
			  -EACCES,
			  "peer certificate: SPIFFE ID spiffe://" TD "/node/.. is not a node's "
			  "(spiffe://" TD "/node/NAME)");
	verify_peer_fails(c, sign_with_ca(fx, c->ca, "spiffe://" TD "/node/.", now - 60, now + 60),
			  -EACCES,
			  "peer certificate: SPIFFE ID spiffe://" TD "/node/. is not a node's "
			  "(spiffe://" TD "/node/NAME)");
	/* The CA's own certificate is no node's. */
	snprintf(want, sizeof(want),
		 "peer certificate: does not verify against the mesh CA %s: unsuitable "
		 "certificate purpose",
		 fx->ca);
	verify_peer_fails(c, read_x509(fx->ca), -EKEYREJECTED, want);
	verify_peer_fails(c, NULL, -EKEYREJECTED, "the peer sent no certificate");
	pki_creds_free(c);
}

/* A peer accepted once is accepted from memory, but never past its notAfter
 * and never under another CA. */
static void test_verify_peer_remembered(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	char other[PATH_MAX], id[PKI_ID_MAX], want[MSG_LEN], when[32];
	time_t now = time(NULL);
	struct errmsg err = {};
	X509 *peer, *brief;

	peer = sign_with_ca(fx, c->ca, "spiffe://" TD "/node/node-b", now - 60, now + DAY);
	brief = sign_with_ca(fx, c->ca, "spiffe://" TD "/node/node-c", now - 60, now + 2);
	assert_int_equal(verify_id(c, peer, NULL, id, sizeof(id), &err), 0);
	assert_int_equal(verify_id(c, brief, NULL, id, sizeof(id), &err), 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-c");
	assert_int_equal(c->nr_verified, 2);
	assert_in_range(c->verified[0].until, now + PKI_VERIFIED_TTL,
			time(NULL) + PKI_VERIFIED_TTL);
	assert_int_equal(c->verified[1].until, now + 2);

	/* From memory: the same answer, nothing added. */
	assert_int_equal(verify_id(c, peer, NULL, id, sizeof(id), &err), 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-b");
	assert_int_equal(c->nr_verified, 2);

	/* Expired since: checked again, and refused. */
	sleep(3);
	snprintf(want, sizeof(want), "peer certificate: expired at %s",
		 utc(now + 2, when, sizeof(when)));
	assert_int_equal(verify_id(c, brief, NULL, id, sizeof(id), &err), -EKEYEXPIRED);
	assert_string_equal(err.msg, want);

	/* A new CA: the old one's nodes are strangers again. */
	join(other, fx->dir, "ca2");
	ca_init(other, TD);
	issue(other, "node-a", fx->node_dir, now - 60, now + DAY);
	assert_int_equal(pki_reload(&c, &err), 1);
	assert_int_equal(c->nr_verified, 0);
	assert_int_equal(verify_id(c, peer, NULL, id, sizeof(id), &err), -EKEYREJECTED);
	X509_free(peer);
	X509_free(brief);
	pki_creds_free(c);
}

/* More peers than it remembers: each still verifies, memory stays bounded. */
static void test_verify_peer_bounded(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	char id[PKI_ID_MAX], want[PKI_ID_MAX];
	time_t now = time(NULL);
	struct errmsg err = {};
	X509 *first = NULL, *x;

	struct pki_peer *p;
	struct jwks *keys;
	for (int i = 0; i < PKI_VERIFIED_MAX + 8; i++) {
	/* Each with its key set: one evicted frees its own (LeakSanitizer). */
		snprintf(want, sizeof(want), "spiffe://" TD "/node/n%d", i);
		x = sign_with_ca(fx, c->ca, want, now - 60, now + DAY);
		assert_int_equal(pki_verify_peer(c, x, NULL, &p, &err), 0);
		assert_string_equal(p->spiffe_id, want);
		assert_int_equal(pki_peer_keys(p, x, &keys, &err), 0);
		if (!first)
			first = x;
		else
			X509_free(x);
	}
	assert_int_equal(c->nr_verified, PKI_VERIFIED_MAX);
	assert_int_equal(verify_id(c, first, NULL, id, sizeof(id), &err), 0);
	assert_string_equal(id, "spiffe://" TD "/node/n0");
	X509_free(first);
	pki_creds_free(c);
}

/* Both ends of a TLS connection over a socketpair, driven in turn. */
/* One entry serves the certificate check and the token check: the
 * thumbprint a token's cnf binds to, and the key set, made once. */
static void test_verify_peer_entry(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *c = load_ok(&fx->paths, TD, "node-a");
	char thumb[PKI_THUMBPRINT_LEN];
	time_t now = time(NULL);
	struct jwks *keys, *again;
	struct errmsg err = {};
	struct pki_peer *p;
	EVP_PKEY *pk;
	X509 *peer;

	peer = sign_with_ca(fx, c->ca, "spiffe://" TD "/node/node-b", now - 60, now + DAY);
	assert_int_equal(pki_verify_peer(c, peer, NULL, &p, &err), 0);
	assert_int_equal(pki_thumbprint(peer, thumb, sizeof(thumb)), 0);
	assert_string_equal(p->thumbprint, thumb);
	assert_null(p->keys);
	assert_int_equal(pki_peer_keys(p, peer, &keys, &err), 0);
	assert_int_equal(keys->nr, 1);
	assert_string_equal(keys->keys[0].kid, thumb);
	assert_int_equal(jwks_get_key(keys, thumb, &pk), 0);
	assert_int_equal(EVP_PKEY_eq(pk, X509_get0_pubkey(peer)), 1);
	EVP_PKEY_free(pk);

	/* From memory: the same entry and set. */
	assert_int_equal(pki_verify_peer(c, peer, NULL, &p, &err), 0);
	assert_int_equal(pki_peer_keys(p, peer, &again, &err), 0);
	assert_ptr_equal(again, keys);

	/* Its acceptance lapsed: checked again in place, the key set kept. */
	p->until = p->from;
	assert_int_equal(pki_verify_peer(c, peer, NULL, &p, &err), 0);
	assert_true(p->until > p->from);
	assert_ptr_equal(p->keys, keys);
	assert_int_equal(c->nr_verified, 1);
	X509_free(peer);
	pki_creds_free(c);
}

struct tls_pair {
	SSL *client;
	SSL *server;
	int fd[2];
	bool client_ok;
	bool server_ok;
};

static void pair_open(struct tls_pair *p, SSL_CTX *client, SSL_CTX *server, SSL_SESSION *sess)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	p->client = SSL_new(client);
	p->server = SSL_new(server);
	assert_non_null(p->client);
	assert_non_null(p->server);
	assert_int_equal(SSL_set_fd(p->client, p->fd[0]), 1);
	assert_int_equal(SSL_set_fd(p->server, p->fd[1]), 1);
	SSL_set_connect_state(p->client);
	SSL_set_accept_state(p->server);
	if (sess)
		assert_int_equal(SSL_set_session(p->client, sess), 1);
}

/* One step of an end: 1 done, 0 wants more, -1 failed. */
static int step(SSL *ssl, bool *ok)
{
	int r;

	if (*ok)
		return 1;
	r = SSL_do_handshake(ssl);
	if (r == 1) {
		*ok = true;
		return 1;
	}
	r = SSL_get_error(ssl, r);
	return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Until both ends finished or failed. In TLS 1.3 a client finishes before
 * the server has judged its certificate, so a refused client shows as a
 * failed server (and an alert the client reads later). */
static void handshake(struct tls_pair *p)
{
	int c = 0, s = 0;

	for (int i = 0; i < 100 && (!c || !s); i++) {
		if (!c)
			c = step(p->client, &p->client_ok);
		if (!s)
			s = step(p->server, &p->server_ok);
	}
	ERR_clear_error();
}

/* close_notify first: a session freed without it is no longer resumable
 * (and the server drops it from its cache). */
static void pair_close(struct tls_pair *p)
{
	if (p->client_ok)
		SSL_shutdown(p->client);
	if (p->server_ok)
		SSL_shutdown(p->server);
	ERR_clear_error();
	SSL_free(p->client);
	SSL_free(p->server);
	close(p->fd[0]);
	close(p->fd[1]);
}

static SSL_CTX *ctx_ok(const struct pki_creds *c, bool server)
{
	struct errmsg err = {};
	SSL_CTX *ctx = NULL;

	if (pki_ssl_ctx(c, server, &ctx, &err))
		fail_msg("pki_ssl_ctx: %s", err.msg);
	return ctx;
}

/* Server data lets the client take the session tickets sent after the
 * handshake; the session then resumes. */
static SSL_SESSION *exchange(struct tls_pair *p)
{
	char buf[8];

	assert_int_equal(SSL_write(p->server, "ping", 4), 4);
	assert_int_equal(SSL_read(p->client, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	return SSL_get1_session(p->client);
}

static void test_tls_same_ca(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *a = load_ok(&fx->paths, TD, "node-a"), *b;
	char dir[PATH_MAX], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], id[PKI_ID_MAX];
	char thumb[PKI_THUMBPRINT_LEN];
	struct pki_paths pb = { .ca = ca, .cert = cert, .key = key };
	time_t now = time(NULL);
	struct errmsg err = {};
	SSL_CTX *cctx, *sctx, *sctx2;
	const unsigned char *tick;
	struct tls_pair p;
	SSL_SESSION *sess;
	size_t tick_len;

	join(dir, fx->dir, "node-b");
	issue(fx->ca_dir, "node-b", dir, now - 60, now + DAY);
	join(ca, dir, PKI_CA_CERT);
	join(cert, dir, PKI_NODE_CERT);
	join(key, dir, PKI_NODE_KEY);
	b = load_ok(&pb, TD, "node-b");
	cctx = ctx_ok(a, false);
	sctx = ctx_ok(b, true);

	pair_open(&p, cctx, sctx, NULL);
	handshake(&p);
	assert_true(p.client_ok);
	assert_true(p.server_ok);
	assert_int_equal(SSL_version(p.client), TLS1_3_VERSION);
	assert_string_equal(SSL_get_cipher_name(p.client), "TLS_AES_128_GCM_SHA256");
	assert_int_equal(SSL_get_negotiated_group(p.client), NID_X25519);
	/* Each end sends its leaf alone (the client's chain view holds the
	 * server's leaf, the server's holds nothing beyond the client's). */
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.client)), 1);
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.server)), 0);
	assert_int_equal(verify_id(b, SSL_get0_peer_certificate(p.server),
				   SSL_get_peer_cert_chain(p.server), id, sizeof(id), &err),
			 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-a");
	assert_int_equal(verify_id(a, SSL_get0_peer_certificate(p.client),
				   SSL_get_peer_cert_chain(p.client), id, sizeof(id), &err),
			 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-b");
	sess = exchange(&p);
	assert_false(SSL_session_reused(p.client));
	pair_close(&p);
	/* One stateful ticket: the session ID of the one session the server
	 * keeps; the client context keeps none. */
	SSL_SESSION_get0_ticket(sess, &tick, &tick_len);
	assert_int_equal(tick_len, SSL_MAX_SSL_SESSION_ID_LENGTH);
	assert_int_equal(SSL_CTX_sess_number(sctx), 1);
	assert_int_equal(SSL_CTX_sess_get_cache_size(sctx), PKI_SESSION_CACHE_MAX);
	assert_int_equal(SSL_CTX_sess_number(cctx), 0);

	/* Resumed with it: the server still has the client's certificate, the
	 * one tokens are bound to. */
	pair_open(&p, cctx, sctx, sess);
	handshake(&p);
	assert_true(p.client_ok && p.server_ok);
	assert_true(SSL_session_reused(p.client));
	assert_true(SSL_session_reused(p.server));
	assert_int_equal(verify_id(b, SSL_get0_peer_certificate(p.server), NULL, id, sizeof(id),
				   &err),
			 0);
	assert_string_equal(id, "spiffe://" TD "/node/node-a");
	assert_int_equal(pki_thumbprint(SSL_get0_peer_certificate(p.server), thumb, sizeof(thumb)),
			 0);
	assert_string_equal(thumb, a->thumbprint);
	pair_close(&p);

	/* A new server context (new credentials) knows no session: a full
	 * handshake. */
	sctx2 = ctx_ok(b, true);
	pair_open(&p, cctx, sctx2, sess);
	handshake(&p);
	assert_true(p.client_ok && p.server_ok);
	assert_false(SSL_session_reused(p.client));
	assert_false(SSL_session_reused(p.server));
	pair_close(&p);

	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	SSL_CTX_free(sctx2);
	pki_creds_free(a);
	pki_creds_free(b);
}

/* The server refuses the client's certificate: why, in its verify result. */
static void server_refuses(SSL_CTX *cctx, SSL_CTX *sctx, long want_verify)
{
	struct tls_pair p;

	pair_open(&p, cctx, sctx, NULL);
	handshake(&p);
	assert_false(p.server_ok);
	assert_int_equal(SSL_get_verify_result(p.server), want_verify);
	pair_close(&p);
}

/* A client context of c's (trusting c's CA) presenting another certificate. */
static SSL_CTX *client_with(const struct pki_creds *c, const char *dir)
{
	SSL_CTX *ctx = ctx_ok(c, false);
	char cert[PATH_MAX], key[PATH_MAX];

	join(cert, dir, PKI_NODE_CERT);
	join(key, dir, PKI_NODE_KEY);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	return ctx;
}

static void test_tls_refuses_other_ca(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *a = load_ok(&fx->paths, TD, "node-a"), *o;
	char dir[PATH_MAX], out[PATH_MAX], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	struct pki_paths po = { .ca = ca, .cert = cert, .key = key };
	time_t now = time(NULL);
	SSL_CTX *cctx, *sctx, *octx;
	struct tls_pair p;

	join(dir, fx->dir, "other");
	join(out, dir, "node-b");
	ca_init(dir, TD);
	issue(dir, "node-b", out, now - 60, now + DAY);
	sctx = ctx_ok(a, true);
	cctx = client_with(a, out);
	server_refuses(cctx, sctx, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

	/* And a client refuses a server from another CA. */
	join(ca, out, PKI_CA_CERT);
	join(cert, out, PKI_NODE_CERT);
	join(key, out, PKI_NODE_KEY);
	o = load_ok(&po, TD, "node-b");
	octx = ctx_ok(o, true);
	SSL_CTX_free(cctx);
	cctx = ctx_ok(a, false);
	pair_open(&p, cctx, octx, NULL);
	handshake(&p);
	assert_false(p.client_ok);
	assert_false(p.server_ok);
	assert_int_equal(SSL_get_verify_result(p.client),
			 X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	pair_close(&p);

	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	SSL_CTX_free(octx);
	pki_creds_free(a);
	pki_creds_free(o);
}

static void test_tls_refuses_expired_and_missing_cert(void **state)
{
	struct fx *fx = *state;
	struct pki_creds *a = load_ok(&fx->paths, TD, "node-a");
	time_t now = time(NULL);
	SSL_CTX *cctx, *sctx, *bare;
	char dir[PATH_MAX];

	/* A client whose certificate expired after its context was made. */
	join(dir, fx->dir, "expired");
	issue(fx->ca_dir, "node-b", dir, now - 7200, now - 3600);
	sctx = ctx_ok(a, true);
	cctx = client_with(a, dir);
	server_refuses(cctx, sctx, X509_V_ERR_CERT_HAS_EXPIRED);

	/* A client with no certificate at all. */
	bare = SSL_CTX_new(TLS_client_method());
	assert_non_null(bare);
	SSL_CTX_set_verify(bare, SSL_VERIFY_NONE, NULL);
	server_refuses(bare, sctx, X509_V_OK);

	SSL_CTX_free(bare);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	pki_creds_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issue_and_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_files_0600_whatever_the_umask, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_init_refuses_to_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_cannot_outlive_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_key_open_to_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_cert_from_another_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_expired_and_not_yet_valid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_short_lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_wrong_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_wrong_trust_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_key_of_another_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thumbprint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_openssl_cli_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer_remembered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_same_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_refuses_other_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_refuses_expired_and_missing_cert, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
