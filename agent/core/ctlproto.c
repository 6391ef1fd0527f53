// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The control socket's protocol: ctlproto.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"
#include "utf8.h"

struct cmd_def {
	const char *name;
	bool changes;
};

static const struct cmd_def cmd_defs[NR_CTL_CMDS] = {
	[CTL_STATUS] = { "status", false },
	[CTL_POLICY_GET] = { "policy.get", false },
	[CTL_POLICY_HISTORY] = { "policy.history", false },
	[CTL_POLICY_APPLY] = { "policy.apply", true },
	[CTL_POLICY_ROLLBACK] = { "policy.rollback", true },
};

const char *ctlproto_cmd_name(enum ctl_cmd cmd)
{
	return cmd < NR_CTL_CMDS ? cmd_defs[cmd].name : "?";
}

bool ctlproto_cmd_changes(enum ctl_cmd cmd)
{
	return cmd >= NR_CTL_CMDS || cmd_defs[cmd].changes;
}

/* Every member of obj is one of keys (NULL-terminated). */
static int only_keys(json_t *obj, const char *what, const char *const *keys, struct errmsg *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k = keys;

		while (*k && strcmp(*k, key))
			k++;
		if (!*k)
			return errmsg_set(err, -EINVAL, "%s: unknown member \"%s\"", what, key);
	}
	return 0;
}

static int parse_apply(json_t *args, struct ctl_request *req, struct errmsg *err)
{
	static const char *const keys[] = { "name", "content", "dry_run", NULL };
	json_t *name, *content, *dry;
	int ret;

	if (!json_is_object(args))
		return errmsg_set(err, -EINVAL, "args: expected an object");
	ret = only_keys(args, "args", keys, err);
	if (ret)
		return ret;
	name = json_object_get(args, "name");
	content = json_object_get(args, "content");
	dry = json_object_get(args, "dry_run");
	if (!json_is_string(name) || !json_string_length(name))
		return errmsg_set(err, -EINVAL, "args.name: expected a non-empty string");
	if (!json_is_string(content))
		return errmsg_set(err, -EINVAL, "args.content: expected a string");
	if (json_string_length(content) > CTLPROTO_MAX_CONTENT)
		return errmsg_set(err, -EFBIG, "args.content: larger than %d MiB",
				  CTLPROTO_MAX_CONTENT >> 20);
	if (dry && !json_is_boolean(dry))
		return errmsg_set(err, -EINVAL, "args.dry_run: expected true or false");
	req->name = json_string_value(name);
	req->content = json_string_value(content);
	req->content_len = json_string_length(content);
	req->dry_run = json_is_true(dry);
	return 0;
}

static int parse_cmd(json_t *cmd, enum ctl_cmd *out, struct errmsg *err)
{
	if (!json_is_string(cmd))
		return errmsg_set(err, -EINVAL, "cmd: expected a string");
	for (int i = 0; i < NR_CTL_CMDS; i++) {
		if (!strcmp(cmd_defs[i].name, json_string_value(cmd))) {
			*out = i;
			return 0;
		}
	}
	return errmsg_set(err, -EINVAL, "unknown command \"%.64s\"", json_string_value(cmd));
}

static int check_version(json_t *v, struct errmsg *err)
{
	if (!json_is_integer(v))
		return errmsg_set(err, -EINVAL, "v: expected the protocol version, %d",
				  CTLPROTO_VERSION);
	if (json_integer_value(v) != CTLPROTO_VERSION)
		return errmsg_set(err, -EPROTO, "protocol version %lld is not spoken here (%d)",
				  (long long)json_integer_value(v), CTLPROTO_VERSION);
	return 0;
}

static int parse_doc(json_t *doc, struct ctl_request *req, struct errmsg *err)
{
	static const char *const keys[] = { "v", "cmd", "args", NULL };
	json_t *args;
	int ret;

	if (!json_is_object(doc))
		return errmsg_set(err, -EINVAL, "expected a JSON object");
	ret = only_keys(doc, "request", keys, err);
	if (!ret)
		ret = check_version(json_object_get(doc, "v"), err);
	if (!ret)
		ret = parse_cmd(json_object_get(doc, "cmd"), &req->cmd, err);
	if (ret)
		return ret;
	args = json_object_get(doc, "args");
	if (req->cmd == CTL_POLICY_APPLY)
		return parse_apply(args, req, err);
	if (args && !(json_is_object(args) && !json_object_size(args)))
		return errmsg_set(err, -EINVAL, "%s takes no args", cmd_defs[req->cmd].name);
	return 0;
}

int ctlproto_parse_request(const char *line, size_t len, struct ctl_request *req,
			   struct errmsg *err)
{
	json_error_t jerr;
	json_t *doc;
	int ret;

	memset(req, 0, sizeof(*req));
	if (len > CTLPROTO_MAX_REQUEST)
		return errmsg_set(err, -EFBIG, "request longer than %d MiB",
				  CTLPROTO_MAX_REQUEST >> 20);
	/* Without JSON_ALLOW_NUL no string holds a NUL: names and content
	 * are C strings from here on. */
	doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return errmsg_set(err, -EINVAL, "not JSON: %s at column %d", jerr.text,
				  jerr.column);
	ret = parse_doc(doc, req, err);
	if (ret) {
		json_decref(doc);
		memset(req, 0, sizeof(*req));
		return ret;
	}
	req->doc = doc;
	return 0;
}

void ctlproto_request_free(struct ctl_request *req)
{
	json_decref(req->doc);
	memset(req, 0, sizeof(*req));
}

/* The line of doc (taken), "\n" included. */
static char *line_of(json_t *doc, size_t *len)
{
	char *s, *line;
	size_t n;

	if (!doc)
		return NULL;
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

char *ctlproto_request(enum ctl_cmd cmd, json_t *args, size_t *len)
{
	return line_of(json_pack("{s:i, s:s, s:o}", "v", CTLPROTO_VERSION, "cmd",
				 ctlproto_cmd_name(cmd), "args", args ? args : json_object()),
		       len);
}

char *ctlproto_ok(json_t *result, size_t *len)
{
	return line_of(json_pack("{s:i, s:b, s:o}", "v", CTLPROTO_VERSION, "ok", 1, "result",
				 result ? result : json_object()),
		       len);
}

char *ctlproto_error(int err, const char *msg, size_t *len)
{
	const char *name = strerrorname_np(err < 0 ? -err : err);
	/* A message may quote what the client sent, cut anywhere. */
	char text[ERRMSG_LEN * 3];

	utf8_copy(text, sizeof(text), msg);
	return line_of(json_pack("{s:i, s:b, s:s, s:s}", "v", CTLPROTO_VERSION, "ok", 0, "error",
				 text, "errno", name ? name : "EIO"),
		       len);
}

/* The negative errno a symbolic name stands for; -EIO when unknown. */
static int errno_of(const char *name)
{
	for (int e = 1; e < 4096 && name; e++) {
		const char *n = strerrorname_np(e);

		if (n && !strcmp(n, name))
			return -e;
	}
	return -EIO;
}

int ctlproto_parse_response(const char *line, size_t len, json_t **result, struct errmsg *err)
{
	json_t *doc, *ok, *res, *msg;
	json_error_t jerr;
	int ret;

	*result = NULL;
	doc = json_loadb(line, len, 0, &jerr);
	if (!doc)
		return errmsg_set(err, -EPROTO, "the agent's answer is not JSON: %s", jerr.text);
	ok = json_object_get(doc, "ok");
	if (!json_is_object(doc) || !json_is_boolean(ok) ||
	    json_integer_value(json_object_get(doc, "v")) != CTLPROTO_VERSION) {
		json_decref(doc);
		return errmsg_set(err, -EPROTO, "the agent answered in another protocol (this "
				  "sluicectl speaks version %d)", CTLPROTO_VERSION);
	}
	if (json_is_true(ok)) {
		res = json_object_get(doc, "result");
		*result = json_incref(res ? res : json_null());
		json_decref(doc);
		return 0;
	}
	msg = json_object_get(doc, "error");
	ret = errmsg_set(err, errno_of(json_string_value(json_object_get(doc, "errno"))), "%s",
			 json_is_string(msg) ? json_string_value(msg) : "the agent refused");
	json_decref(doc);
	return ret;
}
