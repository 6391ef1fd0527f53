// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The OIDC client's thread: discovery, then the JWKS, the introspection
 * requests waiting and each workload's token when due, with backoff per
 * workload and for the IdP as a whole. It holds the lock except while a
 * request runs. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "log.h"
#include "oidc_int.h"

static void notify(struct oidc *o)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	if (write(o->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("oidc: eventfd: %s", strerror(errno));
}

static unsigned int next_backoff(const struct oidc *o, unsigned int cur)
{
	if (!cur)
		return o->retry_min_ms;
	return cur >= o->retry_max_ms / 2 ? o->retry_max_ms : cur * 2;
}

/* Records a transport failure of any request: the whole IdP backs off. */
static void idp_failed(struct oidc *o, enum fail fail, const char *msg)
{
	/* Once per change: the text varies between retries (timings). */
	if (o->idp_fail != fail)
		pr_warn("oidc: %s", msg);
	o->idp_fail = fail;
	snprintf(o->idp_error, sizeof(o->idp_error), "%s", msg);
	o->idp_backoff_ms = next_backoff(o, o->idp_backoff_ms);
	o->idp_retry_ms = mono_ms() + o->idp_backoff_ms;
	/* Callers waiting on an answer get the failure now, not after the
	 * backoff. */
	intro_fail_pending(o, msg);
}

static void idp_answered(struct oidc *o)
{
	if (o->idp_fail)
		pr_info("oidc: %s answers again", o->issuer);
	o->idp_fail = FAIL_NONE;
	o->idp_error[0] = '\0';
	o->idp_backoff_ms = 0;
	o->idp_retry_ms = 0;
}

/* Called and returns with the lock held; drops it for the request. */
static void run_discovery(struct oidc *o)
{
	char tok[OIDC_URL_MAX], jwks[OIDC_URL_MAX], intro[OIDC_URL_MAX] = "";
	struct errmsg e = {};
	enum fail fail;

	pthread_mutex_unlock(&o->lock);
	fail = discover(o, tok, jwks, intro, &e);
	pthread_mutex_lock(&o->lock);
	if (atomic_load(&o->stop))
		return;
	if (fail) {
		idp_failed(o, fail, e.msg);
	} else {
		idp_answered(o);
		strcpy(o->token_endpoint, tok);
		strcpy(o->jwks_uri, jwks);
		strcpy(o->intro_endpoint, intro);
		o->discovered = true;
		o->jwks_want = true;
		pr_info("oidc: %s: token endpoint %s, JWKS %s, introspection %s", o->issuer, tok,
			jwks, intro[0] ? intro : "none");
	}
	notify(o);
}

static void run_jwks(struct oidc *o)
{
	struct errmsg e = {};
	char *jwks = NULL;
	enum fail fail;

	o->jwks_want = false;
	o->jwks_busy = true;
	o->jwks_last_ms = mono_ms();
	pthread_mutex_unlock(&o->lock);
	fail = fetch_jwks(o, &jwks, &e);
	pthread_mutex_lock(&o->lock);
	o->jwks_busy = false;
	/* Cancelled by oidc_free: not a failure worth a log line. */
	if (atomic_load(&o->stop)) {
		free(jwks);
		return;
	}
	if (fail) {
		if (fail == FAIL_UNREACHABLE)
			idp_failed(o, fail, e.msg);
		else if (!o->jwks_error[0])
			pr_warn("oidc: %s", e.msg);
		snprintf(o->jwks_error, sizeof(o->jwks_error), "%s", e.msg);
		o->jwks_backoff_ms = next_backoff(o, o->jwks_backoff_ms);
		o->jwks_due_ms = mono_ms() + o->jwks_backoff_ms;
	} else {
		idp_answered(o);
		o->jwks_error[0] = '\0';
		o->jwks_backoff_ms = 0;
		o->jwks_due_ms = mono_ms() + (uint64_t)o->jwks_refresh_s * 1000;
		o->jwks_fetches++;
		if (!o->jwks || strcmp(o->jwks, jwks)) {
			free(o->jwks);
			o->jwks = jwks;
			o->jwks_gen++;
			jwks = NULL;
		}
	}
	free(jwks);
	notify(o);
}

static void run_token(struct oidc *o, struct workload *w)
{
	struct token_result t = {};
	struct errmsg e = {};
	uint64_t start_ns = mono_ns(), start = start_ns / 1000000;
	struct timespec wall;
	enum fail fail;

	clock_gettime(CLOCK_REALTIME, &wall);

	w->busy = true;
	pthread_mutex_unlock(&o->lock);
	fail = fetch_token(o, w, &t, &e);
	pthread_mutex_lock(&o->lock);
	w->busy = false;
	if (w->removed || atomic_load(&o->stop)) {
		if (t.token)
			OPENSSL_cleanse(t.token, t.len);
		free(t.token);
		if (w->removed)
			workload_free(w);
		return;
	}
	if (fail) {
		w->failed++;
		if (w->fail != fail && fail != FAIL_UNREACHABLE)
			pr_warn("oidc: workload %s: %s", w->name, e.msg);
		w->fail = fail;
		snprintf(w->error, sizeof(w->error), "%s", e.msg);
		if (fail == FAIL_UNREACHABLE) {
			/* Stays due: the IdP-wide backoff decides when to retry. */
			idp_failed(o, fail, e.msg);
			w->due_ms = mono_ms();
		} else {
			if (fail != FAIL_CREDENTIALS)
				idp_answered(o);
			w->backoff_ms = next_backoff(o, w->backoff_ms);
			w->due_ms = mono_ms() + w->backoff_ms;
		}
	} else {
		idp_answered(o);
		if (w->fail)
			pr_info("oidc: workload %s: token obtained again", w->name);
		wipe_token(w);
		w->token = t.token;
		w->token_len = t.len;
		w->had_token = true;
		/* The IdP's exp is its iat, whole seconds no earlier than
		 * ours, plus expires_in: counted from the start of our second,
		 * the token never outlasts it. That start is taken on the
		 * monotonic clock in ns and rounded down, and the monotonic
		 * clock was read first, so each error only ends it earlier. */
		w->exp = wall.tv_sec + t.expires_in;
		w->exp_ms = (start_ns - (uint64_t)wall.tv_nsec) / 1000000 + t.expires_in * 1000;
		/* Refresh at two thirds of the lifetime. */
		w->due_ms = start + t.expires_in * 2000 / 3;
		w->backoff_ms = 0;
		w->fail = FAIL_NONE;
		w->error[0] = '\0';
		w->fetched++;
	}
	notify(o);
}

/* The token goes out once: it is wiped as soon as the request is made,
 * whatever the answer. */
static void run_introspect(struct oidc *o, struct intro *in)
{
	char *id = NULL, *file = NULL, *token = in->token;
	size_t token_len = in->token_len;
	struct errmsg e = {};
	json_t *claims = NULL;
	enum fail fail;
	int result;

	in->token = NULL;
	in->state = INTRO_BUSY;
	if (!o->intro_endpoint[0]) {
		errmsg_set(&e, -ENOKEY, "OIDC introspection: %s advertises no "
			   "introspection_endpoint", o->issuer);
		result = -ENOKEY;
		goto answer;
	}
	id = strdup(o->intro_client_id);
	file = strdup(o->intro_secret_file);
	if (!id || !file) {
		errmsg_set(&e, -ENOMEM, "OIDC introspection: out of memory");
		result = -ENOKEY;
		goto answer;
	}
	pthread_mutex_unlock(&o->lock);
	fail = fetch_introspect(o, id, file, token, &result, &claims, &e);
	pthread_mutex_lock(&o->lock);
	if (atomic_load(&o->stop)) {
		json_decref(claims);
		goto out;
	}
	if (fail == FAIL_UNREACHABLE)
		idp_failed(o, fail, e.msg);
	else if (fail != FAIL_CREDENTIALS)
		idp_answered(o);
	/* Not logged: the caller reports each refusal with err, and an
	 * answer per request would flood the log. */
answer:
	in->state = INTRO_DONE;
	in->result = result;
	in->claims = claims;
	in->done_ms = mono_ms();
	snprintf(in->error, sizeof(in->error), "%s", e.msg);
	notify(o);
out:
	OPENSSL_cleanse(token, token_len);
	free(token);
	free(id);
	free(file);
}

static void wait_until(struct oidc *o, uint64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms == UINT64_MAX) {
		pthread_cond_wait(&o->cond, &o->lock);
		return;
	}
	ts.tv_sec = deadline_ms / 1000;
	ts.tv_nsec = (deadline_ms % 1000) * 1000000;
	pthread_cond_timedwait(&o->cond, &o->lock, &ts);
}

static void *thread_main(void *arg)
{
	struct oidc *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!atomic_load(&o->stop)) {
		uint64_t now = mono_ms(), wake = intro_expire(o, now);
		struct workload *due = NULL;
		struct intro *intro = intro_next(o);

		/* Nothing lingers past its lifetime, even if nobody asks. */
		for (size_t i = 0; i < o->nr_wls; i++) {
			struct workload *w = o->wls[i];

			if (w->token && now >= w->exp_ms) {
				wipe_token(w);
				notify(o);
			}
			if (w->token && w->exp_ms < wake)
				wake = w->exp_ms;
			if (!due || w->due_ms < due->due_ms)
				due = w;
		}
		if (now < o->idp_retry_ms) {
			wait_until(o, o->idp_retry_ms < wake ? o->idp_retry_ms : wake);
		} else if (!o->discovered) {
			run_discovery(o);
		} else if (o->jwks_want || now >= o->jwks_due_ms) {
			run_jwks(o);
		} else if (intro) {
			run_introspect(o, intro);
		} else if (due && due->due_ms <= now) {
			run_token(o, due);
		} else {
			if (o->jwks_due_ms < wake)
				wake = o->jwks_due_ms;
			if (due && due->due_ms < wake)
				wake = due->due_ms;
			wait_until(o, wake);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* The process's signals are the agent's main loop's (a signalfd, set up
 * after this thread starts): taken here, SIGHUP or SIGTERM would run their
 * default action and kill the agent instead of reloading or stopping it. */
int thread_start(struct oidc *o)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&o->thread, NULL, thread_main, o);
	if (!ret)
		pthread_setname_np(o->thread, "sluiced-oidc");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}
