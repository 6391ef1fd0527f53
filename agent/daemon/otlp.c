// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The span queue and its exporter thread (otlp.h). The proxy loop only
 * takes the lock to append a pointer; the thread encodes and sends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "http.h"
#include "log.h"
#include "otlp.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_TRIES 5
#define FLUSH_TIMEOUT_MS 2000
/* A collector's answer is a small JSON object; more is not read. */
#define MAX_RESPONSE (64 * 1024)

struct otlp {
	char *url;
	char *ca_file;
	char *node;
	unsigned int timeout_ms, batch, interval_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char **q; /* ring of queue_cap spans' texts */
	char **batch_spans; /* the thread's: the batch it sends */
	unsigned int head, len;
	bool started; /* the thread runs */
	bool stop;
	atomic_bool cancel; /* ends a request in flight at stop */
	bool failing; /* said that exports fail, not yet that they work */
	struct otlp_stats st; /* under lock */
};

static void deadline_in(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void otlp_audit_hook(void *ctx, const struct audit_rec *r)
{
	struct otlp *o = ctx;
	char stack[2048], *span;
	struct strbuf b;
	bool wake;

	strbuf_init(&b, stack, sizeof(stack));
	if (!otlp_span_from_audit(&b, r))
		return;
	span = strbuf_detach(&b, NULL);
	pthread_mutex_lock(&o->lock);
	o->st.queued++;
	if (!span || o->len == o->st.queue_cap) {
		o->st.dropped_queue_full++;
		pthread_mutex_unlock(&o->lock);
		free(span);
		return;
	}
	o->q[(o->head + o->len++) % o->st.queue_cap] = span;
	wake = o->len == o->batch;
	pthread_mutex_unlock(&o->lock);
	if (wake)
		pthread_cond_signal(&o->wake);
}

/* Up to batch spans off the queue into spans; under lock. */
static unsigned int take(struct otlp *o, char **spans)
{
	unsigned int n = 0;

	while (o->len && n < o->batch) {
		spans[n++] = o->q[o->head];
		o->head = (o->head + 1) % o->st.queue_cap;
		o->len--;
	}
	return n;
}

/* The request around n spans, which it frees; NULL on -ENOMEM. */
static char *request(const struct otlp *o, char **spans, unsigned int n)
{
	struct strbuf b;

	strbuf_init(&b, NULL, 4096);
	otlp_request(&b, o->node, spans, n);
	for (unsigned int i = 0; i < n; i++)
		free(spans[i]);
	return strbuf_detach(&b, NULL);
}

static bool retryable(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* partialSuccess.rejectedSpans of a 2xx answer (0 when absent). */
static uint64_t rejected_spans(const char *body)
{
	json_t *root = json_loads(body, 0, NULL), *v;
	uint64_t n = 0;

	v = json_object_get(json_object_get(root, "partialSuccess"), "rejectedSpans");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		n = json_integer_value(v);
	else if (json_is_string(v))
		n = strtoull(json_string_value(v), NULL, 10);
	json_decref(root);
	return n;
}

/* One POST: 0 when it is done with (sent, or refused for good), -EAGAIN
 * when it may be tried again. The last one, at stop, cannot be cancelled:
 * its timeout bounds it. */
static int post(struct otlp *o, const char *body, unsigned int n, bool last)
{
	unsigned int timeout_ms = last ? FLUSH_TIMEOUT_MS : o->timeout_ms;
	struct http_opts opts = {
		.ca_file = o->ca_file,
		.connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000,
		.timeout_ms = timeout_ms,
		.max_body = MAX_RESPONSE,
		.cancel = last ? NULL : &o->cancel,
	};
	struct http_response resp;
	struct errmsg err = {};
	uint64_t rejected;
	int ret;

	ret = http_post(o->url, "application/json", body, strlen(body), &opts, &resp, &err);
	pthread_mutex_lock(&o->lock);
	if (ret || retryable(resp.status)) {
		o->st.requests_failed++;
		pthread_mutex_unlock(&o->lock);
		if (!ret)
			errmsg_set(&err, -EAGAIN, "POST %s: HTTP %ld", o->url, resp.status);
		if (!o->failing && !last)
			pr_warn("otlp: export of %u spans failed: %s; retrying with backoff (%d "
				"tries; spans made while the queue is full are dropped and "
				"counted)",
				n, err.msg, MAX_TRIES);
		o->failing = true;
		if (!ret)
			http_response_free(&resp);
		return -EAGAIN;
	}
	if (resp.status / 100 != 2) {
		o->st.requests_failed++;
		o->st.rejected += n;
		pthread_mutex_unlock(&o->lock);
		pr_warn("otlp: POST %s: HTTP %ld: the collector refused %u spans: %.200s", o->url,
			resp.status, n, resp.body);
		http_response_free(&resp);
		return 0;
	}
	rejected = rejected_spans(resp.body);
	if (rejected > n)
		rejected = n;
	o->st.requests_ok++;
	o->st.exported += n - rejected;
	o->st.rejected += rejected;
	pthread_mutex_unlock(&o->lock);
	if (o->failing)
		pr_info("otlp: exports to %s work again", o->url);
	o->failing = false;
	http_response_free(&resp);
	return 0;
}

/* Sends one batch, with retries until it is done, the tries are used up or
 * the agent stops; under lock on entry and on return. */
static void export(struct otlp *o, char **spans, unsigned int n)
{
	unsigned int backoff = BACKOFF_FIRST_MS;
	struct timespec until;
	char *body;
	int ret = -EAGAIN;

	pthread_mutex_unlock(&o->lock);
	body = request(o, spans, n);
	for (int tries = 0; body && ret == -EAGAIN && tries < MAX_TRIES; tries++) {
		ret = post(o, body, n, false);
		if (ret != -EAGAIN || tries + 1 == MAX_TRIES)
			break;
		pthread_mutex_lock(&o->lock);
		deadline_in(&until, backoff);
		while (!o->stop && pthread_cond_timedwait(&o->wake, &o->lock, &until) != ETIMEDOUT)
			;
		ret = o->stop ? -ECANCELED : -EAGAIN;
		pthread_mutex_unlock(&o->lock);
		backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
	}
	free(body);
	pthread_mutex_lock(&o->lock);
	if (ret)
		o->st.dropped_export_failed += n;
}

static void *run(void *arg)
{
	struct otlp *o = arg;
	struct timespec until;
	char *body;
	unsigned int n;

	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		deadline_in(&until, o->interval_ms);
		while (!o->stop && o->len < o->batch &&
		       pthread_cond_timedwait(&o->wake, &o->lock, &until) != ETIMEDOUT)
			;
		if (o->stop || !o->len)
			continue;
		n = take(o, o->batch_spans);
		export(o, o->batch_spans, n);
	}
	/* A last try for what is left, bounded: stopping must not wait on a
	 * collector that is gone. */
	n = take(o, o->batch_spans);
	pthread_mutex_unlock(&o->lock);
	if (!n)
		return NULL;
	body = request(o, o->batch_spans, n);
	if (!body || post(o, body, n, true)) {
		pthread_mutex_lock(&o->lock);
		o->st.dropped_export_failed += n;
		pthread_mutex_unlock(&o->lock);
	}
	free(body);
	return NULL;
}

int otlp_new(const struct otlp_cfg *cfg, const char *node, struct otlp **out, struct errmsg *err)
{
	struct otlp *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;
	int ret;

	if (!o)
		return errmsg_set(err, -ENOMEM, "otlp: out of memory");
	o->url = strdup(cfg->traces_url);
	o->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	o->node = strdup(node);
	o->q = calloc(cfg->queue, sizeof(*o->q));
	o->batch_spans = calloc(cfg->batch, sizeof(*o->batch_spans));
	o->st.queue_cap = cfg->queue;
	o->timeout_ms = cfg->timeout_ms;
	o->batch = cfg->batch;
	o->interval_ms = cfg->interval_ms;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (!o->url || !o->node || !o->q || !o->batch_spans || (cfg->ca_file && !o->ca_file)) {
		otlp_free(o);
		return errmsg_set(err, -ENOMEM, "otlp: out of memory");
	}
	ret = -pthread_create(&o->thread, NULL, run, o);
	if (!ret)
		pthread_setname_np(o->thread, "sluiced-otlp");
	o->started = !ret;
	if (ret) {
		otlp_free(o);
		return errmsg_set(err, ret, "otlp: cannot start the exporter thread: %s",
				  strerror(-ret));
	}
	*out = o;
	return 0;
}

void otlp_get_stats(struct otlp *o, struct otlp_stats *out)
{
	pthread_mutex_lock(&o->lock);
	*out = o->st;
	out->queue_len = o->len;
	pthread_mutex_unlock(&o->lock);
}

void otlp_free(struct otlp *o)
{
	if (!o)
		return;
	if (o->started) {
		pthread_mutex_lock(&o->lock);
		o->stop = true;
		pthread_mutex_unlock(&o->lock);
		/* A request in flight ends now; the flush after it has its own
		 * short timeout. */
		atomic_store(&o->cancel, true);
		pthread_cond_signal(&o->wake);
		pthread_join(o->thread, NULL);
	}
	for (unsigned int i = 0; i < o->len; i++)
		free(o->q[(o->head + i) % o->st.queue_cap]);
	pthread_cond_destroy(&o->wake);
	pthread_mutex_destroy(&o->lock);
	free(o->q);
	free(o->batch_spans);
	free(o->url);
	free(o->ca_file);
	free(o->node);
	free(o);
}
