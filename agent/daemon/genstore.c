// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Policy generations on disk: genstore.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "genstore.h"
#include "log.h"
#include "yamlx.h"

#define INDEX "index.json"
#define INDEX_VERSION 1

static void content_path(const struct genstore *s, uint32_t gen, char *buf, size_t len);

static const char *const source_names[] = {
	[GEN_FILE] = "file",
	[GEN_SOCKET] = "socket",
	[GEN_CONFIG] = "config",
};

const char *gen_source_name(enum gen_source s)
{
	return s <= GEN_CONFIG ? source_names[s] : "?";
}

void sha256_hex(const void *buf, size_t len, char out[SHA256_HEX_LEN])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(buf, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void entry_free(struct gen_entry *e)
{
	free(e->name);
	free(e->summary);
	free(e->content);
	memset(e, 0, sizeof(*e));
}

void genstore_free(struct genstore *s)
{
	for (int i = 0; i < s->nr; i++)
		entry_free(&s->gens[i]);
	free(s->gens);
	free(s->dir);
	memset(s, 0, sizeof(*s));
}

const struct gen_entry *genstore_find(const struct genstore *s, uint32_t generation)
{
	for (int i = 0; i < s->nr; i++) {
		if (s->gens[i].generation == generation)
			return &s->gens[i];
	}
	return NULL;
}

uint32_t genstore_max(const struct genstore *s)
{
	return s->nr ? s->gens[s->nr - 1].generation : 0;
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
	time_t t = ns / 1000000000;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_time(const char *s, int64_t *ns)
{
	struct tm tm = {};
	const char *end;

	end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	if (!end || *end)
		return -EINVAL;
	*ns = (int64_t)timegm(&tm) * 1000000000;
	return 0;
}

json_t *gen_entry_json(const struct gen_entry *e)
{
	char when[32];
	json_t *o;

	fmt_time(e->time_ns, when, sizeof(when));
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "generation", (json_int_t)e->generation,
		      "time", when, "source", gen_source_name(e->source), "name", e->name,
		      "sha256", e->sha256, "summary", e->summary ? e->summary : "");
	if (o && e->has_peer) {
		json_object_set_new(o, "uid", json_integer(e->uid));
		json_object_set_new(o, "gid", json_integer(e->gid));
		json_object_set_new(o, "pid", json_integer(e->pid));
	}
	return o;
}

json_t *genstore_json(const struct genstore *s)
{
	json_t *arr = json_array();

	for (int i = s->nr - 1; i >= 0; i--)
		json_array_append_new(arr, gen_entry_json(&s->gens[i]));
	return json_pack("{s:I, s:o, s:o}", "live", (json_int_t)s->live, "previous",
			 s->previous ? json_integer(s->previous) : json_null(), "generations",
			 arr);
}

static bool is_sha(const char *h)
{
	if (!h || strlen(h) != SHA256_HEX_LEN - 1)
		return false;
	return strspn(h, "0123456789abcdef") == SHA256_HEX_LEN - 1;
}

static int entry_parse(json_t *o, struct gen_entry *e)
{
	const char *source, *name, *sha, *summary, *when;
	json_int_t gen, uid = -1, gid = -1, pid = -1;
	int i;

	if (json_unpack(o, "{s:I, s:s, s:s, s:s, s:s, s?s, s?I, s?I, s?I}", "generation", &gen,
			"time", &when, "source", &source, "name", &name, "sha256", &sha,
			"summary", &summary, "uid", &uid, "gid", &gid, "pid", &pid) ||
	    gen <= 0 || gen > UINT32_MAX || !is_sha(sha) || parse_time(when, &e->time_ns))
		return -EINVAL;
	for (i = 0; i <= GEN_CONFIG && strcmp(source, source_names[i]); i++)
		;
	if (i > GEN_CONFIG)
		return -EINVAL;
	e->source = i;
	e->generation = gen;
	e->has_peer = uid >= 0 && gid >= 0 && pid >= 0;
	e->uid = uid;
	e->gid = gid;
	e->pid = pid;
	memcpy(e->sha256, sha, SHA256_HEX_LEN);
	e->name = strdup(name);
	e->summary = strdup(json_string_value(json_object_get(o, "summary")) ?: "");
	return e->name && e->summary ? 0 : -ENOMEM;
}

static int copy_sha(json_t *doc, const char *key, char *out)
{
	const char *h = json_string_value(json_object_get(doc, key));

	if (!h || !*h) {
		out[0] = '\0';
		return 0;
	}
	if (!is_sha(h))
		return -EINVAL;
	memcpy(out, h, SHA256_HEX_LEN);
	return 0;
}

static int index_parse(struct genstore *s, json_t *doc)
{
	json_t *gens = json_object_get(doc, "generations"), *o;
	json_int_t live, prev = 0;
	size_t i;
	int ret;

	if (json_unpack(doc, "{s:i, s:I, s?I}", "v", &ret, "live", &live, "previous", &prev) ||
	    ret != INDEX_VERSION || !json_is_array(gens))
		return -EINVAL;
	if (copy_sha(doc, "file_sha256", s->file_sha256) ||
	    copy_sha(doc, "config_sha256", s->config_sha256))
		return -EINVAL;
	s->gens = calloc(json_array_size(gens) + 1, sizeof(*s->gens));
	if (!s->gens)
		return -ENOMEM;
	json_array_foreach(gens, i, o) {
		ret = entry_parse(o, &s->gens[s->nr]);
		if (!ret && s->nr && s->gens[s->nr].generation <= s->gens[s->nr - 1].generation)
			ret = -EINVAL;
		if (ret)
			return ret;
		s->nr++;
	}
	for (int k = 0; k < s->nr; k++) {
		struct errmsg rerr = {};
		char path[4096];

		content_path(s, s->gens[k].generation, path, sizeof(path));
		if (yamlx_read(path, &s->gens[k].content, &s->gens[k].len, &rerr))
			pr_warn("policy generation %u: %s", s->gens[k].generation, rerr.msg);
	}
	s->live = live;
	s->previous = prev;
	if ((s->live && !genstore_find(s, s->live)) ||
	    (s->previous && !genstore_find(s, s->previous)))
		return -EINVAL;
	return 0;
}

static int read_index(struct genstore *s, struct errmsg *err)
{
	char path[4096];
	json_error_t jerr;
	json_t *doc;
	int ret;

	snprintf(path, sizeof(path), "%s/" INDEX, s->dir);
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc && access(path, F_OK) && errno == ENOENT)
		return 0;
	if (!doc)
		return errmsg_set(err, -EINVAL, "%s: %s at line %d: move it away to start from "
				  "the config's policy: file", path, jerr.text, jerr.line);
	ret = index_parse(s, doc);
	json_decref(doc);
	if (ret == -ENOMEM)
		return errmsg_set(err, ret, "out of memory");
	if (ret)
		return errmsg_set(err, ret, "%s: not an index this agent wrote (version %d): move "
				  "it away to start from the config's policy: file", path,
				  INDEX_VERSION);
	return 0;
}

int genstore_open(struct genstore *s, const char *run_dir, unsigned int keep,
		  struct errmsg *err)
{
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->keep = keep;
	if (asprintf(&s->dir, "%s/policies", run_dir) < 0) {
		s->dir = NULL;
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	if (mkdir(run_dir, 0755) && errno != EEXIST)
		ret = errmsg_set(err, -errno, "run_dir %s: %s", run_dir, strerror(errno));
	else if (mkdir(s->dir, 0700) && errno != EEXIST)
		ret = errmsg_set(err, -errno, "%s: %s", s->dir, strerror(errno));
	else if (lstat(s->dir, &st))
		ret = errmsg_set(err, -errno, "%s: %s", s->dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		ret = errmsg_set(err, -EPERM, "%s: not a directory of the agent's with mode "
				 "0700 (it holds the policies rollback makes live): remove it, "
				 "or chown %u and chmod 0700 it", s->dir, geteuid());
	else
		ret = read_index(s, err);
	if (ret == -EINVAL) {
		genstore_free(s);
	} else if (ret) {
		free(s->dir);
		s->dir = NULL;
	}
	return ret;
}

static void content_path(const struct genstore *s, uint32_t gen, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%u.yaml", s->dir, gen);
}

int genstore_content(const struct genstore *s, uint32_t generation, const char **buf,
		     size_t *len, struct errmsg *err)
{
	const struct gen_entry *e = genstore_find(s, generation);

	if (!e || !e->content)
		return errmsg_set(err, -ENOENT, "generation %u: its policy is not kept%s%s",
				  generation, s->dir ? " in " : "", s->dir ? s->dir : "");
	*buf = e->content;
	*len = e->len;
	return 0;
}

/* path, whole and synced, or not at all. */
static int write_file(const char *path, const char *buf, size_t len, struct errmsg *err)
{
	char tmp[4200];
	size_t off = 0;
	ssize_t n;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errmsg_set(err, -errno, "%s: %s", tmp, strerror(errno));
	while (off < len && !ret) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno != EINTR)
			ret = -errno;
		else if (n > 0)
			off += n;
	}
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return errmsg_set(err, ret, "%s: %s", path, strerror(-ret));
	}
	return 0;
}

static int write_index(const struct genstore *s, struct errmsg *err)
{
	json_t *doc;
	char path[4096], *text;
	int ret;

	if (!s->dir)
		return 0;
	doc = json_array();
	for (int i = 0; i < s->nr; i++)
		json_array_append_new(doc, gen_entry_json(&s->gens[i]));
	doc = json_pack("{s:i, s:I, s:I, s:s, s:s, s:o}", "v", INDEX_VERSION, "live",
			(json_int_t)s->live, "previous", (json_int_t)s->previous, "file_sha256",
			s->file_sha256, "config_sha256", s->config_sha256, "generations", doc);
	text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
	json_decref(doc);
	if (!text)
		return errmsg_set(err, -ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/" INDEX, s->dir);
	ret = write_file(path, text, strlen(text), err);
	free(text);
	return ret;
}

/* Drops the oldest entries past keep, never the live or previous one,
 * into gone[] (room for s->nr): their files go once the index no longer
 * names them. */
static int prune(struct genstore *s, uint32_t *gone)
{
	int i = 0, nr = 0;

	while (s->nr > (int)s->keep && i < s->nr) {
		struct gen_entry *e = &s->gens[i];

		if (e->generation == s->live || e->generation == s->previous) {
			i++;
			continue;
		}
		gone[nr++] = e->generation;
		entry_free(e);
		memmove(e, e + 1, (s->nr - i - 1) * sizeof(*e));
		s->nr--;
	}
	return nr;
}

static void unlink_gone(const struct genstore *s, const uint32_t *gone, int nr)
{
	char path[4096];

	if (!s->dir)
		return;
	for (int i = 0; i < nr; i++) {
		content_path(s, gone[i], path, sizeof(path));
		unlink(path);
	}
}

int genstore_add(struct genstore *s, const struct gen_entry *e, const char *content, size_t len,
		 const char *file_sha256, const char *config_sha256, struct errmsg *err)
{
	struct gen_entry *gens, *n;
	char path[4096];
	uint32_t *gone;
	int ret, nr_gone, file_ret = 0;

	if (e->generation <= genstore_max(s))
		return errmsg_set(err, -EINVAL, "generation %u is not after %u", e->generation,
				  genstore_max(s));
	/* Kept in memory even when the disk refuses it: the agent still
	 * serves it, and only a restart forgets it. */
	if (s->dir) {
		content_path(s, e->generation, path, sizeof(path));
		file_ret = write_file(path, content, len, err);
	}
	gens = realloc(s->gens, (s->nr + 1) * sizeof(*gens));
	if (!gens)
		return errmsg_set(err, -ENOMEM, "out of memory");
	s->gens = gens;
	n = &gens[s->nr];
	*n = *e;
	n->name = strdup(e->name);
	n->summary = strdup(e->summary ? e->summary : "");
	n->content = malloc(len + 1);
	if (n->content) {
		memcpy(n->content, content, len);
		n->content[len] = '\0';
		n->len = len;
	}
	if (!n->name || !n->summary || !n->content) {
		entry_free(n);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	s->nr++;
	s->previous = s->live;
	s->live = e->generation;
	if (file_sha256)
		memcpy(s->file_sha256, file_sha256, SHA256_HEX_LEN);
	if (config_sha256)
		memcpy(s->config_sha256, config_sha256, SHA256_HEX_LEN);
	gone = calloc(s->nr, sizeof(*gone));
	if (!gone)
		return errmsg_set(err, -ENOMEM, "out of memory");
	nr_gone = prune(s, gone);
	/* An index naming a file that is not there would not restore. */
	ret = file_ret ? file_ret : write_index(s, err);
	if (!ret)
		unlink_gone(s, gone, nr_gone);
	free(gone);
	return ret;
}

int genstore_swap(struct genstore *s, struct errmsg *err)
{
	uint32_t t = s->live;

	if (!s->previous)
		return errmsg_set(err, -ENOENT, "no previous generation to roll back to");
	s->live = s->previous;
	s->previous = t;
	return write_index(s, err);
}
