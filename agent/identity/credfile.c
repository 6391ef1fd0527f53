// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* credentials.json: what the agent's credentials are, for sluicectl cred. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "credfile.h"
#include "utf8.h"

/* Shorter base64url runs are left alone: no token is this short. */
#define TOKEN_MIN_LEN 16
#define TOKEN_CUT "[token]"
#define PEM_BEGIN "-----BEGIN"
#define PEM_CUT "[pem]"

static const char *const kind_names[] = {
	[CRED_CA] = "ca",
	[CRED_NODE_CERT] = "node-cert",
	[CRED_TOKEN] = "token",
	[CRED_JWKS] = "jwks",
};

static const char *const sources[] = { "file", "embedded", "oidc", NULL };
static const char *const states[] = { "valid", "expired", "pending", "failed", NULL };

const char *cred_kind_name(enum cred_kind kind)
{
	if ((unsigned int)kind < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[kind];
	return NULL;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; s && *set; set++) {
		if (!strcmp(s, *set))
			return true;
	}
	return false;
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * A copy of an error text fit for a world-readable file. Errors never
 * should carry a token or a key, but a message that quotes an IdP's answer
 * might: a JWS-shaped word ("eyJ", base64url, two dots or more) becomes
 * [token], and everything from a PEM header on becomes [pem]. Control and
 * non-ASCII bytes become '?', so the text stays one line of valid UTF-8.
 * Both cuts are shorter than what they replace: the copy fits in strlen(s).
 */
static char *scrub(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	const char *p = s, *q;
	int dots;

	if (!out)
		return NULL;
	while (*p) {
		if (!strncmp(p, PEM_BEGIN, strlen(PEM_BEGIN))) {
			o = stpcpy(o, PEM_CUT);
			break;
		}
		if (!strncmp(p, "eyJ", 3) && (p == s || !b64url_char(p[-1]))) {
			for (q = p, dots = 0; b64url_char(*q) || *q == '.'; q++)
				dots += *q == '.';
			if (dots >= 2 && q - p >= TOKEN_MIN_LEN) {
				o = stpcpy(o, TOKEN_CUT);
				p = q;
				continue;
			}
		}
		*o++ = (*p >= ' ' && *p < 0x7f) ? *p : '?';
		p++;
	}
	*o = '\0';
	return out;
}

static json_t *time_json(int64_t t)
{
	return t ? json_integer(t) : json_null();
}

static int entry_json(const struct cred_entry *e, int i, json_t **out, struct errmsg *err)
{
	const char *kind = cred_kind_name(e->kind);
	char *error = NULL;
	json_t *v;

	if (!kind || !e->name || !*e->name || !one_of(e->source, sources) ||
	    !one_of(e->state, states))
		return errmsg_set(err, -EINVAL,
				  "credential %d (%s): needs a kind, a name, a source (file, "
				  "embedded, oidc) and a state (valid, expired, pending, failed)",
				  i, e->name && *e->name ? e->name : "no name");
	if (e->error && *e->error && !(error = scrub(e->error)))
		return errmsg_set(err, -ENOMEM, "out of memory");
	v = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "kind", kind, "name", e->name,
		      "source", e->source, "state", e->state, "not_after", time_json(e->not_after),
		      "updated", time_json(e->updated), "error",
		      error ? json_string(error) : json_null());
	free(error);
	if (!v)
		return errmsg_set(err, -EINVAL,
				  "credential %d: name is not UTF-8, or out of memory", i);
	*out = v;
	return 0;
}

static int sys_err(struct errmsg *err, const char *what, const char *path)
{
	int ret = -errno;

	return errmsg_set(err, ret, "%s %s: %s", what, path, strerror(-ret));
}

/* Aside and renamed over path: a reader sees the old file or the new one. */
static int write_atomic(const char *path, json_t *doc, struct errmsg *err)
{
	char tmp[PATH_MAX];
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return errmsg_set(err, -ENAMETOOLONG, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return sys_err(err, "cannot create", tmp);
	/* mkostemp() makes it 0600; being readable is the point of the file. */
	if (fchmod(fd, 0644)) {
		ret = sys_err(err, "cannot chmod", tmp);
	} else {
		/* json_dumpfd() says nothing of why: errno does. */
		errno = EIO;
		if (json_dumpfd(doc, fd, JSON_INDENT(2)) || write(fd, "\n", 1) != 1 || fsync(fd))
			ret = sys_err(err, "cannot write", tmp);
	}
	close(fd);
	if (!ret && rename(tmp, path))
		ret = sys_err(err, "cannot replace", path);
	if (ret)
		unlink(tmp);
	return ret;
}

static json_t *audit_json(const struct cred_audit *a)
{
	char log[PATH_MAX];

	/* A path is bytes: one that is not UTF-8 must not cost the file. */
	utf8_copy(log, sizeof(log), a->log);
	return json_pack("{s:s, s:I, s:o}", "log", log, "lines_lost", (json_int_t)a->lines_lost,
			 "error", a->error ? json_string(a->error) : json_null());
}

int credfile_write(const char *path, const char *node, const struct cred_entry *e, int nr,
		   const struct cred_audit *audit, int64_t now, struct errmsg *err)
{
	json_t *doc = json_object(), *arr = json_array(), *v = NULL;
	int ret = 0;

	if (!doc || !arr || json_object_set_new(doc, "version", json_integer(CREDFILE_VERSION)) ||
	    json_object_set_new(doc, "node", json_string(node ?: "")) ||
	    json_object_set_new(doc, "written", json_integer(now ?: (int64_t)time(NULL))) ||
	    json_object_set(doc, "credentials", arr) ||
	    (audit && json_object_set_new(doc, "audit", audit_json(audit))))
		ret = errmsg_set(err, -ENOMEM, "%s: out of memory", path);
	for (int i = 0; !ret && i < nr; i++) {
		ret = entry_json(&e[i], i, &v, err);
		if (!ret && json_array_append_new(arr, v))
			ret = errmsg_set(err, -ENOMEM, "%s: out of memory", path);
	}
	if (!ret)
		ret = write_atomic(path, doc, err);
	json_decref(arr);
	json_decref(doc);
	return ret;
}

static bool is_time(json_t *v)
{
	json_int_t t = json_integer_value(v);

	return !v || json_is_null(v) || (json_is_integer(v) && t >= 0 && t <= CREDFILE_TIME_MAX);
}

static int check_doc(const char *path, json_t *root, struct errmsg *err)
{
	json_t *ver = json_object_get(root, "version"), *audit = json_object_get(root, "audit");
	json_t *creds, *c;
	size_t i;

	if (!json_is_integer(ver))
		return errmsg_set(err, -EINVAL, "%s: not a sluice credentials file (no version)",
				  path);
	if (json_integer_value(ver) != CREDFILE_VERSION)
		return errmsg_set(err, -EINVAL,
				  "%s: version %lld; this build reads version %d (sluicectl and "
				  "sluiced come from different builds)",
				  path, (long long)json_integer_value(ver), CREDFILE_VERSION);
	creds = json_object_get(root, "credentials");
	if (!json_is_string(json_object_get(root, "node")) || !json_is_array(creds))
		return errmsg_set(err, -EINVAL, "%s: no \"node\" string or \"credentials\" array",
				  path);
	if (audit && (!json_is_string(json_object_get(audit, "log")) ||
		      !json_is_integer(json_object_get(audit, "lines_lost"))))
		return errmsg_set(err, -EINVAL,
				  "%s: \"audit\" needs a \"log\" string and a \"lines_lost\" "
				  "number",
				  path);
	json_array_foreach(creds, i, c) {
		if (!json_is_string(json_object_get(c, "kind")) ||
		    !json_is_string(json_object_get(c, "name")) ||
		    !json_is_string(json_object_get(c, "source")) ||
		    !json_is_string(json_object_get(c, "state")) ||
		    !is_time(json_object_get(c, "not_after")) ||
		    !is_time(json_object_get(c, "updated")))
			return errmsg_set(err, -EINVAL,
					  "%s: credential %zu: needs the strings kind, name, "
					  "source and state, and not_after and updated as Unix "
					  "times (0 to 9999-12-31) or null",
					  path, i);
	}
	return 0;
}

int credfile_read(const char *path, json_t **out, struct errmsg *err)
{
	json_error_t jerr;
	struct stat st;
	json_t *root;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = sys_err(err, "cannot stat", path);
		close(fd);
		return ret;
	}
	if (st.st_size > CREDFILE_MAX_SIZE) {
		close(fd);
		return errmsg_set(err, -EFBIG, "%s: %lld bytes, more than a credentials file has",
				  path, (long long)st.st_size);
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!root)
		return errmsg_set(err, -EINVAL, "%s:%d: not JSON: %s", path, jerr.line, jerr.text);
	ret = check_doc(path, root, err);
	if (ret) {
		json_decref(root);
		return ret;
	}
	*out = root;
	return 0;
}
