// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The mesh CA: what makes one (sluicectl ca init), what is one (check_ca(),
 * which agents apply to the CA file they load too), and the node
 * certificates and keys it issues (sluicectl ca issue).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "spiffe.h"
#include "pki.h"
#include "pki_ca.h"
#include "pki_int.h"

static int sys_err(struct errmsg *err, const char *what, const char *path)
{
	int ret = -errno;

	return errmsg_set(err, ret, "%s %s: %s", what, path, strerror(-ret));
}

/* config.c checks trust domains as part of SPIFFE IDs: ask it about one. */
static bool trust_domain_ok(const char *td)
{
	char id[SPIFFE_ID_MAX];
	struct spiffe_id sid;
	const char *why;

	return snprintf(id, sizeof(id), SPIFFE_PREFIX "%s/job/x", td) < (int)sizeof(id) &&
	       !spiffe_id_parse(id, &sid, &why);
}

/* A valid, self-signed CA whose SPIFFE ID spiffe://TD gives its trust domain. */
int check_ca(X509 *ca, const char *path, char *td, size_t len, struct errmsg *err)
{
	const size_t pfx = strlen(SPIFFE_PREFIX);
	char id[PKI_ID_MAX];
	int ret;

	ret = check_time(ca, path,
			 " (renew the CA with 'sluicectl ca init --force' and issue every node "
			 "certificate again)",
			 err);
	if (ret)
		return ret;
	if (X509_check_ca(ca) != 1 || X509_self_signed(ca, 1) != 1) {
		ERR_clear_error();
		return errmsg_set(err, -EKEYREJECTED,
				  "%s: not a self-signed CA certificate (sluicectl ca init makes one)",
				  path);
	}
	if (pki_spiffe_id(ca, id, sizeof(id)) || strncmp(id, SPIFFE_PREFIX, pfx) ||
	    !trust_domain_ok(id + pfx))
		return errmsg_set(err, -EKEYREJECTED,
				  "%s: no SPIFFE ID spiffe://TRUST_DOMAIN: not a sluice mesh CA", path);
	snprintf(td, len, "%s", id + pfx);
	return 0;
}

int pki_new_key(EVP_PKEY **out, struct errmsg *err)
{
	*out = EVP_EC_gen("P-256");
	if (!*out)
		return ossl_err(err, -ENOMEM, "cannot generate an ECDSA P-256 key");
	return 0;
}

/* 128 bits with the top one set: always 16 bytes, 127 of them random. */
static bool set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	bool ok;

	ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok;
}

static bool set_names(X509 *x, const char *cn, X509 *issuer)
{
	X509_NAME *name = X509_NAME_new();
	bool ok;

	ok = name &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_subject_name(x, name) &&
	     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	return ok;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	bool ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static bool add_exts(X509 *x, const struct pki_cert_req *req, X509 *issuer)
{
	static const struct ext {
		int nid;
		const char *value;
	} ca_exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
		{ 0 },
	}, node_exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "serverAuth,clientAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ 0 },
	};
	char san[PKI_ID_MAX + 8];

	for (const struct ext *e = req->ca ? ca_exts : node_exts; e->nid; e++) {
		if (!add_ext(x, issuer, e->nid, e->value))
			return false;
	}
	snprintf(san, sizeof(san), "URI:%s", req->spiffe_id);
	return add_ext(x, issuer, NID_subject_alt_name, san);
}

int pki_make_cert(const struct pki_cert_req *req, EVP_PKEY *key, X509 *issuer,
		  EVP_PKEY *issuer_key, X509 **out, struct errmsg *err)
{
	X509 *x = X509_new();

	if (!x || !X509_set_version(x, X509_VERSION_3) || !set_serial(x) ||
	    !set_names(x, req->cn, issuer) || !X509_set_pubkey(x, key) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), req->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), req->not_after) ||
	    !add_exts(x, req, issuer ?: x) ||
	    !X509_sign(x, issuer ? issuer_key : key, EVP_sha256())) {
		X509_free(x);
		return ossl_err(err, -EINVAL, "cannot make a certificate for %s", req->spiffe_id);
	}
	*out = x;
	return 0;
}

/* Missing parents are made 0755, dir itself mode. */
static int mkdir_p(const char *dir, mode_t mode, struct errmsg *err)
{
	char path[PATH_MAX];
	char *p = path;

	if (!*dir || snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return errmsg_set(err, -EINVAL, "bad directory '%s'", dir);
	do {
		char c;

		p = strchrnul(p + 1, '/');
		c = *p;
		*p = '\0';
		if (mkdir(path, c ? 0755 : mode) && errno != EEXIST)
			return sys_err(err, "cannot create", path);
		*p = c;
	} while (*p);
	return 0;
}

/*
 * Writes key or cert (PEM) aside and moves it to dir/name, so a reader
 * never sees half a file. A key is created 0600 with O_EXCL: never, even
 * briefly, readable by others. Without replace, an existing file stays.
 */
static int write_pem(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, bool replace,
		     struct errmsg *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, ret = 0;
	BIO *b;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
	if (fd < 0)
		return sys_err(err, "cannot create", tmp);
	b = BIO_new_fd(fd, BIO_NOCLOSE);
	if (!b ||
	    !(key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_X509(b, cert)) ||
	    BIO_flush(b) != 1)
		ret = ossl_err(err, -EIO, "cannot write %s", tmp);
	BIO_free(b);
	if (!ret && fsync(fd))
		ret = sys_err(err, "cannot write", tmp);
	close(fd);
	/* link() fails on an existing file where rename() would replace it. */
	if (!ret && (replace ? rename(tmp, path) : link(tmp, path)))
		ret = sys_err(err, "cannot create", path);
	if (ret || !replace)
		unlink(tmp);
	return ret;
}

static int refuse_existing(const char *dir, struct errmsg *err)
{
	static const char *const names[] = { PKI_CA_KEY, PKI_CA_CERT };
	char path[PATH_MAX];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!lstat(path, &st))
			return errmsg_set(err, -EEXIST,
					  "%s exists: refusing to replace the mesh CA (--force does, "
					  "and every certificate it issued stops verifying)",
					  path);
	}
	return 0;
}

int pki_ca_init(const char *dir, const char *trust_domain, unsigned int days, bool force,
		struct errmsg *err)
{
	time_t now = time(NULL);
	char id[PKI_ID_MAX], cn[PKI_ID_MAX];
	struct pki_cert_req req = { .spiffe_id = id, .cn = cn, .ca = true,
				    .not_before = now - PKI_CLOCK_SKEW,
				    .not_after = now + (time_t)days * 86400 };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int ret;

	if (!trust_domain_ok(trust_domain))
		return errmsg_set(err, -EINVAL,
				  "bad trust domain \"%s\": expected a lowercase DNS name such as "
				  "acme.example",
				  trust_domain);
	if (!days)
		return errmsg_set(err, -EINVAL, "a CA must be valid for at least a day");
	ret = force ? 0 : refuse_existing(dir, err);
	snprintf(id, sizeof(id), SPIFFE_PREFIX "%s", trust_domain);
	snprintf(cn, sizeof(cn), "sluice mesh CA %s", trust_domain);
	if (!ret)
		ret = mkdir_p(dir, 0700, err);
	if (!ret)
		ret = pki_new_key(&key, err);
	if (!ret)
		ret = pki_make_cert(&req, key, NULL, NULL, &cert, err);
	if (!ret)
		ret = write_pem(dir, PKI_CA_KEY, key, NULL, force, err);
	if (!ret)
		ret = write_pem(dir, PKI_CA_CERT, NULL, cert, force, err);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}

struct ca {
	X509 *cert;
	EVP_PKEY *key;
	char cert_path[PATH_MAX];
	char trust_domain[SPIFFE_ID_MAX];
};

static int ca_open(const char *dir, struct ca *ca, struct errmsg *err)
{
	char key_path[PATH_MAX];
	int ret;

	snprintf(ca->cert_path, sizeof(ca->cert_path), "%s/%s", dir, PKI_CA_CERT);
	snprintf(key_path, sizeof(key_path), "%s/%s", dir, PKI_CA_KEY);
	ret = read_cert(ca->cert_path, NULL, &ca->cert, err);
	if (!ret)
		ret = read_key(key_path, NULL, &ca->key, err);
	if (!ret)
		ret = check_ca(ca->cert, ca->cert_path, ca->trust_domain, sizeof(ca->trust_domain),
			       err);
	if (!ret)
		ret = check_pair(ca->cert, ca->cert_path, ca->key, key_path, "", err);
	return ret;
}

static int node_make(const struct ca *ca, const char *node, time_t not_before,
		     time_t not_after, EVP_PKEY **key, X509 **cert, struct errmsg *err)
{
	char id[PKI_ID_MAX], when[32];
	struct pki_cert_req req = { .spiffe_id = id, .cn = node, .not_before = not_before,
				    .not_after = not_after };
	time_t ca_end;
	int ret;

	if (not_after <= not_before)
		return errmsg_set(err, -EINVAL, "the certificate would end before it starts");
	ret = pki_asn1_time(X509_get0_notAfter(ca->cert), &ca_end);
	if (!ret && not_after > ca_end)
		return errmsg_set(err, -EINVAL,
				  "the certificate would outlive the CA in %s, which expires at %s: "
				  "shorten it or renew the CA",
				  ca->cert_path, pki_fmt_time(ca_end, when, sizeof(when)));
	snprintf(id, sizeof(id), SPIFFE_PREFIX "%s" NODE_PATH "%s", ca->trust_domain, node);
	ret = pki_new_key(key, err);
	if (!ret)
		ret = pki_make_cert(&req, *key, ca->cert, ca->key, cert, err);
	return ret;
}

int pki_issue(const char *dir, const char *node, const char *out, time_t not_before,
	      time_t not_after, struct errmsg *err)
{
	struct ca ca = {};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int ret;

	if (!name_valid(node, NODE_NAME_CHARS))
		return errmsg_set(err, -EINVAL,
				  "bad node name \"%s\": expected 1-63 characters of a-z, 0-9, '.' "
				  "and '-'",
				  node);
	if (!node_name_valid(node))
		return errmsg_set(err, -EINVAL, "bad node name \"%s\": " NODE_NAME_DOTS, node);
	ret = ca_open(dir, &ca, err);
	if (!ret)
		ret = node_make(&ca, node, not_before, not_after, &key, &cert, err);
	if (!ret)
		ret = mkdir_p(out, 0755, err);
	/* The CA first: agents that read a new node certificate find its CA. */
	if (!ret)
		ret = write_pem(out, PKI_CA_CERT, NULL, ca.cert, true, err);
	if (!ret)
		ret = write_pem(out, PKI_NODE_KEY, key, NULL, true, err);
	if (!ret)
		ret = write_pem(out, PKI_NODE_CERT, NULL, cert, true, err);
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_free(ca.cert);
	EVP_PKEY_free(ca.key);
	return ret;
}
