// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Opaque token introspection (RFC 7662): the requests callers leave for
 * the thread, by the token's SHA-256, and the answers they pick up. The
 * token itself is kept only until the thread has sent it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "clock.h"
#include "oidc_int.h"

void intro_free(struct intro *in)
{
	if (!in)
		return;
	if (in->token) {
		OPENSSL_cleanse(in->token, in->token_len);
		free(in->token);
	}
	json_decref(in->claims);
	free(in);
}

static void intro_remove(struct oidc *o, size_t i)
{
	intro_free(o->intros[i]);
	o->intros[i] = o->intros[--o->nr_intros];
}

static struct intro *intro_find(struct oidc *o, const unsigned char *md, size_t *idx)
{
	for (size_t i = 0; i < o->nr_intros; i++) {
		if (!memcmp(o->intros[i]->md, md, sizeof(o->intros[i]->md))) {
			*idx = i;
			return o->intros[i];
		}
	}
	return NULL;
}

struct intro *intro_next(struct oidc *o)
{
	struct intro *next = NULL;

	/* Entries move on removal: the slot says nothing of age, and a busy
	 * edge must not starve the request that came first. */
	for (size_t i = 0; i < o->nr_intros; i++) {
		struct intro *in = o->intros[i];

		if (in->state == INTRO_PENDING && (!next || in->seq < next->seq))
			next = in;
	}
	return next;
}

static void intro_answer(struct intro *in, int result, const char *msg, uint64_t now)
{
	in->state = INTRO_DONE;
	in->result = result;
	in->done_ms = now;
	snprintf(in->error, sizeof(in->error), "%s", msg);
	if (in->token) {
		OPENSSL_cleanse(in->token, in->token_len);
		free(in->token);
		in->token = NULL;
	}
}

void intro_fail_pending(struct oidc *o, const char *msg)
{
	uint64_t now = mono_ms();

	for (size_t i = 0; i < o->nr_intros; i++)
		if (o->intros[i]->state == INTRO_PENDING)
			intro_answer(o->intros[i], -ENOKEY, msg, now);
}

uint64_t intro_expire(struct oidc *o, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	size_t i = 0;

	while (i < o->nr_intros) {
		struct intro *in = o->intros[i];

		if (in->state == INTRO_DONE && now >= in->done_ms + INTRO_KEEP_MS) {
			intro_remove(o, i);
			continue;
		}
		if (in->state == INTRO_DONE && in->done_ms + INTRO_KEEP_MS < next)
			next = in->done_ms + INTRO_KEEP_MS;
		i++;
	}
	return next;
}

int oidc_set_introspection_client(struct oidc *o, const char *client_id,
				  const char *secret_file, struct errmsg *err)
{
	char secret[SECRET_MAX];
	char *id, *file;
	int ret;

	if (!client_id || !*client_id || !secret_file || !*secret_file)
		return errmsg_set(err, -EINVAL, "OIDC introspection: a client_id and a secret file "
				  "are required");
	ret = read_secret(secret_file, secret, err);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (ret)
		return ret;
	id = strdup(client_id);
	file = strdup(secret_file);
	if (!id || !file) {
		free(id);
		free(file);
		return errmsg_set(err, -ENOMEM, "OIDC introspection: out of memory");
	}
	pthread_mutex_lock(&o->lock);
	free(o->intro_client_id);
	free(o->intro_secret_file);
	o->intro_client_id = id;
	o->intro_secret_file = file;
	pthread_mutex_unlock(&o->lock);
	return 0;
}

/* Hands over the answer and forgets it. */
static int intro_take(struct oidc *o, size_t i, json_t **claims, struct errmsg *err)
{
	struct intro *in = o->intros[i];
	int ret = in->result;

	if (!ret) {
		*claims = in->claims;
		in->claims = NULL;
	} else {
		errmsg_set(err, ret, "%s", in->error);
	}
	intro_remove(o, i);
	return ret;
}

/* Room for one more entry: drops the oldest answer when full. */
static int intro_room(struct oidc *o, struct errmsg *err)
{
	size_t pending = 0, oldest = SIZE_MAX;

	for (size_t i = 0; i < o->nr_intros; i++) {
		struct intro *in = o->intros[i];

		if (in->state != INTRO_DONE)
			pending++;
		else if (oldest == SIZE_MAX || in->done_ms < o->intros[oldest]->done_ms)
			oldest = i;
	}
	if (pending >= INTRO_MAX_PENDING)
		return errmsg_set(err, -EBUSY, "OIDC introspection: %d requests to %s already "
				  "waiting", INTRO_MAX_PENDING, o->issuer);
	if (o->nr_intros == INTRO_MAX_ENTRIES)
		intro_remove(o, oldest);
	if (!o->intros) {
		o->intros = calloc(INTRO_MAX_ENTRIES, sizeof(*o->intros));
		if (!o->intros)
			return errmsg_set(err, -ENOMEM, "OIDC introspection: out of memory");
	}
	return 0;
}

/* Why no request can be made now, or 0. */
static int intro_unavailable(struct oidc *o, struct errmsg *err)
{
	if (!o->intro_client_id)
		return errmsg_set(err, -ENOKEY, "OIDC introspection: no client configured for %s",
				  o->issuer);
	if (o->discovered && !o->intro_endpoint[0])
		return errmsg_set(err, -ENOKEY, "OIDC introspection: %s advertises no "
				  "introspection_endpoint", o->issuer);
	/* The IdP is backing off: answer at once rather than queue behind
	 * the next probe. */
	if (o->idp_fail && mono_ms() < o->idp_retry_ms)
		return errmsg_set(err, -ENOKEY, "OIDC introspection: %s", o->idp_error);
	return 0;
}

static int intro_add(struct oidc *o, const unsigned char *md, const char *token, size_t len,
		     struct errmsg *err)
{
	struct intro *in;
	int ret;

	ret = intro_room(o, err);
	if (ret)
		return ret;
	in = calloc(1, sizeof(*in));
	if (in)
		in->token = malloc(len + 1);
	if (!in || !in->token) {
		free(in);
		return errmsg_set(err, -ENOMEM, "OIDC introspection: out of memory");
	}
	memcpy(in->md, md, sizeof(in->md));
	memcpy(in->token, token, len + 1);
	in->token_len = len;
	in->state = INTRO_PENDING;
	in->seq = o->intro_seq++;
	o->intros[o->nr_intros++] = in;
	pthread_cond_signal(&o->cond);
	return errmsg_set(err, -EINPROGRESS, "OIDC introspection: asking %s", o->issuer);
}

int oidc_introspect(struct oidc *o, const char *token, json_t **claims, struct errmsg *err)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t len = strnlen(token, INTRO_TOKEN_MAX + 1), i;
	struct intro *in;
	int ret;

	*claims = NULL;
	if (!len)
		return errmsg_set(err, -EACCES, "OIDC introspection: empty token");
	if (len > INTRO_TOKEN_MAX)
		return errmsg_set(err, -EACCES, "OIDC introspection: token longer than %d bytes",
				  INTRO_TOKEN_MAX);
	if (!EVP_Digest(token, len, md, NULL, EVP_sha256(), NULL))
		return errmsg_set(err, -ENOMEM, "OIDC introspection: cannot hash the token");

	pthread_mutex_lock(&o->lock);
	in = intro_find(o, md, &i);
	if (in && in->state == INTRO_DONE && mono_ms() >= in->done_ms + INTRO_KEEP_MS) {
		intro_remove(o, i);
		in = NULL;
	}
	if (in && in->state == INTRO_DONE)
		ret = intro_take(o, i, claims, err);
	else if (in)
		ret = errmsg_set(err, -EINPROGRESS, "OIDC introspection: waiting for %s",
				 o->issuer);
	else
		ret = intro_unavailable(o, err) ?: intro_add(o, md, token, len, err);
	pthread_mutex_unlock(&o->lock);
	return ret;
}
