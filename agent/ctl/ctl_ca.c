// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl ca: the mesh CA, node certificates, and what a certificate says. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "pki.h"
#include "pki_ca.h"

#define DAY 86400UL
/* Lifetimes: up to a hundred years, so that now + lifetime fits any time_t. */
#define MAX_LIFETIME (36500 * DAY)
#define DEFAULT_CA_LIFETIME "365d"
#define DEFAULT_NODE_LIFETIME "24h"

struct ca_args {
	const char *node;		/* issue's one positional argument */
	const char *trust_domain;
	const char *dir;
	const char *out;
	const char *lifetime;
	bool force;
	bool help;
};

/* An option, and where it goes in struct ca_args: a string, or (flag) true. */
struct ca_opt {
	const char *name;
	size_t off;
	bool flag;
};

#define CA_OPT(n, field) { .name = (n), .off = offsetof(struct ca_args, field) }
#define CA_FLAG(n, field) { .name = (n), .off = offsetof(struct ca_args, field), .flag = true }

static const struct ca_opt init_opts[] = {
	CA_OPT("--trust-domain", trust_domain),
	CA_OPT("--dir", dir),
	CA_OPT("--lifetime", lifetime),
	CA_FLAG("--force", force),
	CA_FLAG("--help", help),
	CA_FLAG("-h", help),
	{ 0 }
};

static const struct ca_opt issue_opts[] = {
	CA_OPT("--dir", dir),
	CA_OPT("--out", out),
	CA_OPT("--lifetime", lifetime),
	CA_FLAG("--force", force),
	CA_FLAG("--help", help),
	CA_FLAG("-h", help),
	{ 0 }
};

static const struct ca_opt show_opts[] = {
	CA_FLAG("--help", help),
	CA_FLAG("-h", help),
	{ 0 }
};

/* "30s", "90m", "24h", "365d": a unit is required, so that a bare "24" is
 * never read as seconds when hours were meant. */
static int parse_lifetime(const char *s, unsigned long *out)
{
	static const struct {
		char unit;
		unsigned long seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', DAY } };
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s >= '1' && *s <= '9' && !errno && *end && !end[1]) {
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			if (*end == units[i].unit && v <= MAX_LIFETIME / units[i].seconds) {
				*out = v * units[i].seconds;
				return 0;
			}
		}
	}
	return errmsg_set(&ctl_err, -EINVAL,
			  "--lifetime takes a whole number and a unit, such as 30s, 90m, 24h or "
			  "365d (at most 36500d), not '%s'",
			  s);
}

/* Options in any order; pos, when not NULL, takes the one positional. */
static int parse_args(int argc, char **argv, const struct ca_opt *opts, const char **pos,
		      struct ca_args *a)
{
	const struct ca_opt *o;
	char *field;
	int ret;

	while (argc) {
		for (o = opts; o->name && strcmp(o->name, *argv); o++)
			;
		if (!o->name) {
			if (**argv == '-' || !pos || *pos)
				return BAD_ARG();
			*pos = *argv;
			NEXT_ARG();
			continue;
		}
		NEXT_ARG();
		field = (char *)a + o->off;
		if (o->flag) {
			*(bool *)field = true;
			continue;
		}
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		*(const char **)field = *argv;
		NEXT_ARG();
	}
	return 0;
}

/* What ca show prints, read once for both printers. */
struct cert_view {
	char subject[256];
	char issuer[256];
	char spiffe_id[PKI_ID_MAX];	/* empty: none */
	char serial[48];
	char thumbprint[PKI_THUMBPRINT_LEN];
	char sha256[3 * EVP_MAX_MD_SIZE + 1];
	time_t not_before;
	time_t not_after;
	bool ca;
};

static void name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = b ? X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) : -1;

	n = n >= 0 ? BIO_read(b, buf, len - 1) : 0;
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

static void serial_str(X509 *x, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, len, "%s", hex ?: "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* As `openssl x509 -fingerprint -sha256` prints it. */
static void fingerprint_str(X509 *x, char *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t off = 0;

	buf[0] = '\0';
	X509_digest(x, EVP_sha256(), md, &n);
	for (unsigned int i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%02X", i ? ":" : "", md[i]);
}

static int cert_view(X509 *x, const char *file, struct cert_view *v)
{
	name_str(X509_get_subject_name(x), v->subject, sizeof(v->subject));
	name_str(X509_get_issuer_name(x), v->issuer, sizeof(v->issuer));
	if (pki_spiffe_id(x, v->spiffe_id, sizeof(v->spiffe_id)))
		v->spiffe_id[0] = '\0';
	serial_str(x, v->serial, sizeof(v->serial));
	fingerprint_str(x, v->sha256, sizeof(v->sha256));
	v->ca = X509_check_ca(x) == 1;
	if (pki_thumbprint(x, v->thumbprint, sizeof(v->thumbprint)) ||
	    pki_asn1_time(X509_get0_notBefore(x), &v->not_before) ||
	    pki_asn1_time(X509_get0_notAfter(x), &v->not_after))
		return errmsg_set(&ctl_err, -EINVAL, "%s: unreadable certificate", file);
	return 0;
}

static json_t *cert_json(const struct cert_view *v, const char *file, const char *key)
{
	char nb[32], na[32];
	json_t *doc;

	doc = json_pack("{s:s, s:s, s:s?, s:s, s:b, s:s, s:s, s:s, s:I, s:s, s:s}", "file", file,
			"subject", v->subject, "spiffe_id", *v->spiffe_id ? v->spiffe_id : NULL,
			"issuer", v->issuer, "ca", v->ca, "serial", v->serial, "not_before",
			pki_fmt_time(v->not_before, nb, sizeof(nb)), "not_after",
			pki_fmt_time(v->not_after, na, sizeof(na)), "expires_in_s",
			(json_int_t)(v->not_after - time(NULL)), "x5t_s256", v->thumbprint,
			"sha256_fingerprint", v->sha256);
	if (doc && key)
		json_object_set_new(doc, "key", json_string(key));
	return doc;
}

char *fmt_expires_in(time_t not_after, time_t now, char *buf, size_t len)
{
	char d[32];

	if (not_after >= now)
		return fmt_duration((__u64)(not_after - now) * 1000000000ULL, buf, len);
	snprintf(buf, len, "expired %s ago",
		 fmt_duration((__u64)(now - not_after) * 1000000000ULL, d, sizeof(d)));
	return buf;
}

static void cert_plain(const struct cert_view *v, const char *file, const char *key)
{
	char when[32];

	printf("file:          %s\n", file);
	if (key)
		printf("key:           %s\n", key);
	printf("subject:       %s\n", v->subject);
	printf("spiffe id:     %s\n", *v->spiffe_id ? v->spiffe_id : "-");
	printf("issuer:        %s\n", v->issuer);
	printf("ca:            %s\n", v->ca ? "yes" : "no");
	printf("serial:        %s\n", v->serial);
	printf("not before:    %s\n", pki_fmt_time(v->not_before, when, sizeof(when)));
	printf("not after:     %s\n", pki_fmt_time(v->not_after, when, sizeof(when)));
	printf("expires in:    %s\n",
	       fmt_expires_in(v->not_after, time(NULL), when, sizeof(when)));
	printf("x5t#S256:      %s\n", v->thumbprint);
	printf("sha256:        %s\n", v->sha256);
}

/* Prints the certificate in file; key names its key file, or is NULL. */
static int cert_show(const char *file, const char *key)
{
	struct errmsg err;
	struct cert_view v;
	X509 *x;
	int ret;

	ret = pki_read_cert(file, &x, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	ret = cert_view(x, file, &v);
	X509_free(x);
	if (ret)
		return ret;
	if (json_output)
		return print_json(cert_json(&v, file, key));
	cert_plain(&v, file, key);
	return 0;
}

static int ca_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s ca init --trust-domain TD [--dir DIR] [--lifetime DURATION]\n"
		"                     [--force]\n"
		"       %1$s ca issue NODE [--dir DIR] [--out OUT] [--lifetime DURATION]\n"
		"                     [--force]\n"
		"       %1$s ca show [FILE]\n"
		"       %1$s ca help\n"
		"\n"
		"       DURATION := a whole number and a unit: 30s, 90m, 24h, 365d\n"
		"\n"
		"init: creates a mesh CA for trust domain TD in DIR (default %2$s,\n"
		"made mode 0700 when missing): ca.key (ECDSA P-256, mode 0600) and\n"
		"ca.crt (self-signed, SPIFFE ID spiffe://TD), valid for DURATION in whole\n"
		"days (default %3$s). Refuses to replace an existing CA without --force:\n"
		"every certificate the old CA issued would stop verifying.\n"
		"\n"
		"issue: a new key and a certificate for node NODE from the CA in DIR,\n"
		"SPIFFE ID spiffe://TD/node/NODE, for TLS client and server use, valid\n"
		"from a minute ago (for peers whose clock lags) until DURATION from now\n"
		"(default %4$s), never past the CA's own expiry. Writes ca.crt, node.key\n"
		"(0600) and node.crt into OUT (default DIR/NODE), each aside and renamed\n"
		"into place, so an agent watching OUT picks up the new pair. Replacing\n"
		"NODE's own files is rotation; replacing another node's needs --force.\n"
		"\n"
		"show: subject, SPIFFE ID, issuer, validity and thumbprints of the\n"
		"certificate in FILE (default %2$s/ca.crt). x5t#S256 is the\n"
		"base64url SHA-256 of the DER certificate, as the cnf claims of\n"
		"certificate-bound tokens carry it (RFC 8705).\n"
		"\n"
		"init and issue print the new certificate as show does. Key material is\n"
		"never printed.\n",
		bin_name, PKI_DEFAULT_DIR, DEFAULT_CA_LIFETIME, DEFAULT_NODE_LIFETIME);
}

static int ca_init(int argc, char **argv)
{
	struct ca_args a = { .dir = PKI_DEFAULT_DIR, .lifetime = DEFAULT_CA_LIFETIME };
	char cert[PATH_MAX], key[PATH_MAX];
	unsigned long lifetime;
	struct errmsg err;
	int ret;

	ret = parse_args(argc, argv, init_opts, NULL, &a);
	if (ret || a.help)
		return ret ?: ca_help(0, NULL);
	if (!a.trust_domain)
		return errmsg_set(&ctl_err, -EINVAL,
				  "--trust-domain TD is required (the mesh's DNS name, such as "
				  "acme.example)");
	ret = parse_lifetime(a.lifetime, &lifetime);
	if (ret)
		return ret;
	if (lifetime % DAY)
		return errmsg_set(&ctl_err, -EINVAL,
				  "a CA's --lifetime is whole days, such as 365d, not '%s'",
				  a.lifetime);
	ret = pki_ca_init(a.dir, a.trust_domain, lifetime / DAY, a.force, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	snprintf(cert, sizeof(cert), "%s/%s", a.dir, PKI_CA_CERT);
	snprintf(key, sizeof(key), "%s/%s", a.dir, PKI_CA_KEY);
	return cert_show(cert, key);
}

/*
 * Re-issuing a node's files in place is how its certificate rotates, so
 * that needs no --force; writing them over another node's files is a
 * mistake that would take that node's identity away, so it does.
 */
static int refuse_other_node(const char *cert, const char *node)
{
	char id[PKI_ID_MAX];
	const char *name;
	struct errmsg err;
	X509 *x;

	if (access(cert, F_OK))
		return 0;
	if (pki_read_cert(cert, &x, &err))
		return errmsg_set(&ctl_err, -EEXIST,
				  "%s exists and is not a certificate: refusing to replace it "
				  "(--force does)",
				  cert);
	if (pki_spiffe_id(x, id, sizeof(id)))
		snprintf(id, sizeof(id), "a certificate without a SPIFFE ID");
	X509_free(x);
	name = strstr(id, "/node/");
	if (name && !strcmp(name + strlen("/node/"), node))
		return 0;
	return errmsg_set(&ctl_err, -EEXIST,
			  "%s is %s, not node %s's: refusing to replace it (--force does, or "
			  "choose another --out)",
			  cert, id, node);
}

static int ca_issue(int argc, char **argv)
{
	struct ca_args a = { .dir = PKI_DEFAULT_DIR, .lifetime = DEFAULT_NODE_LIFETIME };
	/* Room for OUT (as long as a path can be) and a file name. */
	char out[PATH_MAX], cert[PATH_MAX + 16], key[PATH_MAX + 16];
	time_t now = time(NULL);
	unsigned long lifetime;
	struct errmsg err;
	int ret;

	ret = parse_args(argc, argv, issue_opts, &a.node, &a);
	if (ret || a.help)
		return ret ?: ca_help(0, NULL);
	if (!a.node)
		return errmsg_set(&ctl_err, -EINVAL, "which node? (%s ca issue NODE)", bin_name);
	ret = parse_lifetime(a.lifetime, &lifetime);
	if (ret)
		return ret;
	snprintf(out, sizeof(out), "%s/%s", a.dir, a.node);
	if (!a.out)
		a.out = out;
	snprintf(cert, sizeof(cert), "%s/%s", a.out, PKI_NODE_CERT);
	snprintf(key, sizeof(key), "%s/%s", a.out, PKI_NODE_KEY);
	ret = a.force ? 0 : refuse_other_node(cert, a.node);
	if (ret)
		return ret;
	ret = pki_issue(a.dir, a.node, a.out, now - PKI_CLOCK_SKEW, now + (time_t)lifetime, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	return cert_show(cert, key);
}

static int ca_show(int argc, char **argv)
{
	struct ca_args a = {};
	const char *file = NULL;
	int ret;

	ret = parse_args(argc, argv, show_opts, &file, &a);
	if (ret || a.help)
		return ret ?: ca_help(0, NULL);
	return cert_show(file ?: PKI_DEFAULT_DIR "/" PKI_CA_CERT, NULL);
}

static const struct cmd cmds[] = {
	{ "help", ca_help },
	{ "init", ca_init },
	{ "issue", ca_issue },
	{ "show", ca_show },
	{ 0 }
};

int do_ca(int argc, char **argv)
{
	if (argc && (!strcmp(*argv, "--help") || !strcmp(*argv, "-h")))
		return ca_help(0, NULL);
	return cmd_select(cmds, argc, argv, "ca");
}
