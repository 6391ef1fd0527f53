// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "addr.h"
#include "frame.h"
#include "tracectx.h"

int frame_hdr_parse(const uint8_t *hdr, enum frame_type want, const char **why)
{
	uint32_t len;

	if (memcmp(hdr, FRAME_MAGIC, 4)) {
		*why = FRAME_BAD_MAGIC;
		return -EBADMSG;
	}
	if (hdr[4] != FRAME_VERSION) {
		*why = FRAME_BAD_VERSION;
		return -EBADMSG;
	}
	if (hdr[5] != want || hdr[6] || hdr[7]) {
		*why = hdr[5] != want ? FRAME_BAD_TYPE : FRAME_MALFORMED;
		return -EBADMSG;
	}
	memcpy(&len, hdr + 8, sizeof(len));
	len = ntohl(len);
	if (len > FRAME_MAX_PAYLOAD) {
		*why = FRAME_TOO_LARGE;
		return -EBADMSG;
	}
	if (!len) {
		*why = FRAME_MALFORMED;
		return -EBADMSG;
	}
	return (int)len;
}

static int frame_encode(enum frame_type type, json_t *obj, uint8_t **out, size_t *len)
{
	uint32_t be;
	size_t n;
	char *js;

	if (!obj)
		return -ENOMEM;
	js = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!js)
		return -ENOMEM;
	n = strlen(js);
	if (n > FRAME_MAX_PAYLOAD) {
		OPENSSL_cleanse(js, n);
		free(js);
		return -EMSGSIZE;
	}
	*out = malloc(FRAME_HDR_LEN + n);
	if (!*out) {
		OPENSSL_cleanse(js, n);
		free(js);
		return -ENOMEM;
	}
	memcpy(*out, FRAME_MAGIC, 4);
	(*out)[4] = FRAME_VERSION;
	(*out)[5] = type;
	(*out)[6] = (*out)[7] = 0;
	be = htonl(n);
	memcpy(*out + 8, &be, sizeof(be));
	memcpy(*out + FRAME_HDR_LEN, js, n);
	/* The payload holds a bearer token. */
	OPENSSL_cleanse(js, n);
	free(js);
	*len = FRAME_HDR_LEN + n;
	return 0;
}

int frame_open_encode(const struct frame_open *o, uint8_t **out, size_t *len)
{
	char dst[SOCKADDR_STR_LEN];
	json_t *obj;

	obj = json_pack("{s:s, s:s, s:s}", "dst", format_sockaddr(&o->dst, dst, sizeof(dst)),
			"src", o->src, "token", o->token ? o->token : "");
	if (obj && o->traceparent[0] &&
	    json_object_set_new(obj, "traceparent", json_string(o->traceparent))) {
		json_decref(obj);
		return -ENOMEM;
	}
	return frame_encode(FRAME_OPEN, obj, out, len);
}

int frame_verdict_encode(const struct frame_verdict *v, uint8_t **out, size_t *len)
{
	json_t *obj;

	obj = json_pack("{s:s, s:s, s:I}", "verdict", v->allow ? "allow" : "deny", "reason",
			v->reason, "generation", (json_int_t)v->generation);
	if (obj && v->rule[0] && json_object_set_new(obj, "rule", json_string(v->rule))) {
		json_decref(obj);
		return -ENOMEM;
	}
	return frame_encode(FRAME_VERDICT, obj, out, len);
}

/* A string member no longer than max - 1 bytes; NULL when absent or not a
 * string, *detail naming the key. */
static const char *get_str(json_t *obj, const char *key, size_t max, bool required,
			   const char **detail)
{
	json_t *v = json_object_get(obj, key);

	if (!v && !required)
		return "";
	if (!json_is_string(v) || json_string_length(v) >= max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*detail = key;
		return NULL;
	}
	return json_string_value(v);
}

static json_t *parse_obj(const uint8_t *buf, size_t len, const char **detail)
{
	json_t *obj = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);

	if (!json_is_object(obj)) {
		json_decref(obj);
		*detail = "payload is not a JSON object";
		return NULL;
	}
	return obj;
}

int frame_open_decode(const uint8_t *buf, size_t len, struct frame_open *o, const char **detail)
{
	const char *dst, *src, *token, *tp;
	json_t *obj;
	int ret = -EBADMSG;

	memset(o, 0, sizeof(*o));
	obj = parse_obj(buf, len, detail);
	if (!obj)
		return -EBADMSG;
	dst = get_str(obj, "dst", SOCKADDR_STR_LEN, true, detail);
	src = get_str(obj, "src", FRAME_ID_MAX, true, detail);
	token = get_str(obj, "token", FRAME_MAX_PAYLOAD, true, detail);
	tp = get_str(obj, "traceparent", FRAME_TRACEPARENT_LEN + 1, false, detail);
	if (!dst || !src || !token || !tp)
		goto out;
	if (parse_sockaddr(dst, &o->dst) || !((struct sockaddr_in *)&o->dst)->sin_port) {
		*detail = "dst";
		goto out;
	}
	if (tp[0] && !traceparent_parse(tp, NULL)) {
		*detail = "traceparent";
		goto out;
	}
	strcpy(o->src, src);
	strcpy(o->traceparent, tp);
	o->token = strdup(token);
	ret = o->token ? 0 : -ENOMEM;
out:
	/* jansson's copy of the token goes with the object; wipe it first. */
	if (token && token[0])
		OPENSSL_cleanse((char *)token, strlen(token));
	json_decref(obj);
	return ret;
}

void frame_open_release(struct frame_open *o)
{
	if (o->token) {
		OPENSSL_cleanse(o->token, strlen(o->token));
		free(o->token);
		o->token = NULL;
	}
}

int frame_verdict_decode(const uint8_t *buf, size_t len, struct frame_verdict *v,
			 const char **detail)
{
	const char *verdict, *reason, *rule;
	json_t *obj, *gen;
	int ret = -EBADMSG;

	memset(v, 0, sizeof(*v));
	obj = parse_obj(buf, len, detail);
	if (!obj)
		return -EBADMSG;
	verdict = get_str(obj, "verdict", 8, true, detail);
	reason = get_str(obj, "reason", FRAME_REASON_MAX, true, detail);
	rule = get_str(obj, "rule", FRAME_REASON_MAX, false, detail);
	gen = json_object_get(obj, "generation");
	if (!verdict || !reason || !rule)
		goto out;
	if (strcmp(verdict, "allow") && strcmp(verdict, "deny")) {
		*detail = "verdict";
		goto out;
	}
	if (gen && (!json_is_integer(gen) || json_integer_value(gen) < 0)) {
		*detail = "generation";
		goto out;
	}
	v->allow = !strcmp(verdict, "allow");
	strcpy(v->reason, reason);
	strcpy(v->rule, rule);
	v->generation = gen ? json_integer_value(gen) : 0;
	ret = 0;
out:
	json_decref(obj);
	return ret;
}

int frame_traceparent_new(char out[FRAME_TRACEPARENT_LEN + 1])
{
	struct tracectx tc;
	int ret = tracectx_new(&tc);

	if (!ret)
		traceparent_format(&tc, out);
	return ret;
}
