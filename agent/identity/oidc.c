// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The OIDC client's token cache and public API. The thread that fills the
 * cache is in oidc_thread.c, its requests to the IdP in oidc_fetch.c. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "log.h"
#include "oidc_int.h"
#include "pki.h"

static const char *const fail_reasons[NR_FAIL][2] = {
	[FAIL_NONE] = { OIDC_REASON_PENDING, OIDC_REASON_PENDING_EXPIRED },
	[FAIL_UNREACHABLE] = { OIDC_REASON_UNREACHABLE, OIDC_REASON_UNREACHABLE_EXPIRED },
	[FAIL_REFUSED] = { OIDC_REASON_REFUSED, OIDC_REASON_REFUSED_EXPIRED },
	[FAIL_BAD_RESPONSE] = { OIDC_REASON_BAD_RESPONSE, OIDC_REASON_BAD_RESPONSE_EXPIRED },
	[FAIL_CREDENTIALS] = { OIDC_REASON_CREDENTIALS, OIDC_REASON_CREDENTIALS_EXPIRED },
};

void wipe_token(struct workload *w)
{
	if (!w->token)
		return;
	OPENSSL_cleanse(w->token, w->token_len);
	free(w->token);
	w->token = NULL;
	w->token_len = 0;
}

void workload_free(struct workload *w)
{
	if (!w)
		return;
	wipe_token(w);
	free(w->name);
	free(w->client_id);
	free(w->cred_file);
	free(w);
}

static struct workload *find(const struct oidc *o, const char *name, size_t *idx)
{
	for (size_t i = 0; i < o->nr_wls; i++) {
		if (!strcmp(o->wls[i]->name, name)) {
			if (idx)
				*idx = i;
			return o->wls[i];
		}
	}
	return NULL;
}

static int dup_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int check_readable(const char *path, const char *what, struct errmsg *err)
{
	if (path && access(path, R_OK))
		return errmsg_set(err, -errno, "OIDC %s %s: %s", what, path, strerror(errno));
	return 0;
}

int oidc_new(const struct oidc_cfg *cfg, struct oidc **out, struct errmsg *err)
{
	pthread_condattr_t ca;
	struct oidc *o;
	int ret;

	if (!cfg->issuer || strlen(cfg->issuer) >= OIDC_URL_MAX || !url_allowed(cfg->issuer))
		return errmsg_set(err, -EINVAL,
				  "OIDC issuer \"%s\": not an https URL (http only on loopback)",
				  cfg->issuer ? cfg->issuer : "");
	if (!cfg->cert_file != !cfg->key_file)
		return errmsg_set(err, -EINVAL,
				  "OIDC client certificate and key go together (have %s only)",
				  cfg->cert_file ? "the certificate" : "the key");
	ret = check_readable(cfg->ca_file, "CA file", err);
	if (!ret)
		ret = check_readable(cfg->cert_file, "certificate file", err);
	if (!ret)
		ret = check_readable(cfg->key_file, "key file", err);
	if (ret)
		return ret;

	o = calloc(1, sizeof(*o));
	if (!o)
		return errmsg_set(err, -ENOMEM, "OIDC client: out of memory");
	o->efd = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);
	o->connect_timeout_ms = cfg->connect_timeout_ms ?: 2000;
	o->timeout_ms = cfg->timeout_ms ?: 5000;
	o->jwks_refresh_s = cfg->jwks_refresh_s ?: 300;
	o->jwks_refetch_min_s = cfg->jwks_refetch_min_s ?: 30;
	o->retry_min_ms = cfg->retry_min_ms ?: 1000;
	o->retry_max_ms = cfg->retry_max_ms ?: 30000;
	if (o->retry_max_ms < o->retry_min_ms)
		o->retry_max_ms = o->retry_min_ms;
	if (dup_opt(&o->issuer, cfg->issuer) || dup_opt(&o->resource, cfg->resource) ||
	    dup_opt(&o->ca_file, cfg->ca_file) || dup_opt(&o->cert_file, cfg->cert_file) ||
	    dup_opt(&o->key_file, cfg->key_file)) {
		ret = errmsg_set(err, -ENOMEM, "OIDC client: out of memory");
		goto err_free;
	}
	o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->efd < 0) {
		ret = errmsg_set(err, -errno, "OIDC client: eventfd: %s", strerror(errno));
		goto err_free;
	}
	ret = thread_start(o);
	if (ret) {
		errmsg_set(err, ret, "OIDC client: starting its thread: %s", strerror(-ret));
		goto err_free;
	}
	o->thread_started = true;
	*out = o;
	return 0;
err_free:
	oidc_free(o);
	return ret;
}

int oidc_add_workload(struct oidc *o, const struct oidc_client_cfg *c, struct errmsg *err)
{
	struct workload *w, **wls;
	char secret[SECRET_MAX];
	EVP_PKEY *k = NULL;
	int ret;

	if (!c->workload || !*c->workload || !c->client_id || !*c->client_id)
		return errmsg_set(err, -EINVAL, "OIDC client: workload and client_id are required");
	switch (c->auth) {
	case OIDC_AUTH_CLIENT_SECRET_BASIC:
		if (!c->secret_file)
			return errmsg_set(err, -EINVAL,
					  "workload %s: client_secret_basic needs a secret file",
					  c->workload);
		ret = read_secret(c->secret_file, secret, err);
		OPENSSL_cleanse(secret, sizeof(secret));
		break;
	case OIDC_AUTH_PRIVATE_KEY_JWT:
		if (!c->key_file)
			return errmsg_set(err, -EINVAL, "workload %s: private_key_jwt needs a key file",
					  c->workload);
		ret = load_ec_key(c->key_file, &k, err);
		EVP_PKEY_free(k);
		break;
	default:
		return errmsg_set(err, -EINVAL, "workload %s: unknown client authentication %d",
				  c->workload, c->auth);
	}
	if (ret)
		return ret;

	w = calloc(1, sizeof(*w));
	if (!w || dup_opt(&w->name, c->workload) || dup_opt(&w->client_id, c->client_id) ||
	    dup_opt(&w->cred_file, c->auth == OIDC_AUTH_CLIENT_SECRET_BASIC ? c->secret_file
									   : c->key_file)) {
		workload_free(w);
		return errmsg_set(err, -ENOMEM, "workload %s: out of memory", c->workload);
	}
	w->auth = c->auth;

	pthread_mutex_lock(&o->lock);
	if (find(o, c->workload, NULL)) {
		ret = errmsg_set(err, -EEXIST, "workload %s already has an OIDC client",
				 c->workload);
		goto err_unlock;
	}
	if (o->nr_wls == o->cap_wls) {
		size_t cap = o->cap_wls ? o->cap_wls * 2 : 8;

		wls = realloc(o->wls, cap * sizeof(*wls));
		if (!wls) {
			ret = errmsg_set(err, -ENOMEM, "workload %s: out of memory", c->workload);
			goto err_unlock;
		}
		o->wls = wls;
		o->cap_wls = cap;
	}
	o->wls[o->nr_wls++] = w;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	return 0;
err_unlock:
	pthread_mutex_unlock(&o->lock);
	workload_free(w);
	return ret;
}

int oidc_remove_workload(struct oidc *o, const char *workload)
{
	struct workload *w;
	size_t i;

	pthread_mutex_lock(&o->lock);
	w = find(o, workload, &i);
	if (w) {
		o->wls[i] = o->wls[--o->nr_wls];
		if (w->busy)
			w->removed = true;
		else
			workload_free(w);
	}
	pthread_mutex_unlock(&o->lock);
	return w ? 0 : -ENOENT;
}

int oidc_token_get(struct oidc *o, const char *workload, char *buf, size_t len, time_t *exp,
		   const char **reason, struct errmsg *err)
{
	const char *why, *detail;
	char when[32];
	struct workload *w;
	enum fail fail;
	int ret;

	pthread_mutex_lock(&o->lock);
	w = find(o, workload, NULL);
	if (!w) {
		ret = errmsg_set(err, -ENOENT, "workload %s has no OIDC client", workload);
		goto out;
	}
	if (w->token && mono_ms() < w->exp_ms) {
		if (w->token_len >= len) {
			ret = errmsg_set(err, -ENOSPC, "workload %s: token of %zu bytes, buffer of %zu",
					 workload, w->token_len, len);
			goto out;
		}
		memcpy(buf, w->token, w->token_len + 1);
		if (exp)
			*exp = w->exp;
		ret = 0;
		goto out;
	}
	wipe_token(w);
	/* The workload's own last failure, else what the IdP as a whole is
	 * failing with (down, or discovery not done). */
	fail = w->fail ? w->fail : o->idp_fail;
	detail = w->fail ? w->error : o->idp_fail ? o->idp_error : NULL;
	why = fail_reasons[fail][w->had_token];
	if (reason)
		*reason = why;
	if (w->had_token) {
		ret = errmsg_set(err, -EKEYEXPIRED, "%s: workload %s: token expired at %s; %s", why,
				 workload, pki_fmt_time(w->exp, when, sizeof(when)),
				 detail ? detail : "refresh still in progress");
	} else if (detail) {
		ret = errmsg_set(err, -ENOKEY, "%s: workload %s: %s", why, workload, detail);
	} else {
		ret = errmsg_set(err, -EAGAIN, "%s: workload %s: waiting for the first token from %s",
				 why, workload, o->issuer);
	}
out:
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int oidc_token_info(struct oidc *o, const char *workload, struct oidc_token_info *out)
{
	struct workload *w;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&o->lock);
	w = find(o, workload, NULL);
	if (w) {
		out->valid = w->token && mono_ms() < w->exp_ms;
		out->exp = out->valid ? w->exp : 0;
		out->fetched = w->fetched;
		out->failed = w->failed;
		snprintf(out->error, sizeof(out->error), "%s", w->error);
	}
	pthread_mutex_unlock(&o->lock);
	return w ? 0 : -ENOENT;
}

void oidc_refresh_all(struct oidc *o)
{
	uint64_t now = mono_ms();

	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < o->nr_wls; i++)
		o->wls[i]->due_ms = now;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

int oidc_jwks_get(struct oidc *o, char **json, uint64_t *generation, struct errmsg *err)
{
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	if (o->jwks) {
		*json = strdup(o->jwks);
		if (!*json)
			ret = errmsg_set(err, -ENOMEM, "JWKS: out of memory");
		else if (generation)
			*generation = o->jwks_gen;
	} else if (o->jwks_error[0] || o->idp_fail) {
		ret = errmsg_set(err, -ENOKEY, "no JWKS: %s",
				 o->jwks_error[0] ? o->jwks_error : o->idp_error);
	} else {
		ret = errmsg_set(err, -EAGAIN, "no JWKS yet from %s", o->issuer);
	}
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int oidc_jwks_refetch(struct oidc *o)
{
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	if (o->jwks_want || o->jwks_busy) {
		ret = 0;
	} else if (o->jwks_last_ms &&
		   mono_ms() - o->jwks_last_ms < (uint64_t)o->jwks_refetch_min_s * 1000) {
		ret = -EBUSY;
	} else {
		o->jwks_want = true;
		pthread_cond_signal(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void oidc_get_info(struct oidc *o, struct oidc_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&o->lock);
	out->discovered = o->discovered;
	strcpy(out->token_endpoint, o->token_endpoint);
	strcpy(out->jwks_uri, o->jwks_uri);
	strcpy(out->introspection_endpoint, o->intro_endpoint);
	out->jwks_generation = o->jwks_gen;
	out->jwks_fetches = o->jwks_fetches;
	snprintf(out->error, sizeof(out->error), "%s",
		 o->idp_fail ? o->idp_error : o->jwks_error);
	pthread_mutex_unlock(&o->lock);
}

int oidc_fd(const struct oidc *o)
{
	return o->efd;
}

void oidc_fd_clear(struct oidc *o)
{
	uint64_t n;

	if (read(o->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_warn("oidc: eventfd: %s", strerror(errno));
}

void oidc_free(struct oidc *o)
{
	if (!o)
		return;
	if (o->thread_started) {
		pthread_mutex_lock(&o->lock);
		atomic_store(&o->stop, true);
		pthread_cond_signal(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	if (o->efd >= 0)
		close(o->efd);
	for (size_t i = 0; i < o->nr_wls; i++)
		workload_free(o->wls[i]);
	free(o->wls);
	for (size_t i = 0; i < o->nr_intros; i++)
		intro_free(o->intros[i]);
	free(o->intros);
	free(o->intro_client_id);
	free(o->intro_secret_file);
	free(o->jwks);
	free(o->issuer);
	free(o->resource);
	free(o->ca_file);
	free(o->cert_file);
	free(o->key_file);
	free(o);
}
