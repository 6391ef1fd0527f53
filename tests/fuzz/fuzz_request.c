// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP gate in front of a protocol: http service (agent/mesh/
 * http_gate.c): the client's bytes and the service's, through llhttp and
 * the gate's own checks, driven as the proxy drives it. The first byte
 * picks read sizes, the second where the input splits into what the
 * client sends and what the service answers (255: the client alone). No
 * step may cover a byte that was not fed. With the client alone, a run in
 * pieces (as TCP splits a stream anywhere) must send the service exactly
 * what a run of the whole does, decide the same requests and refuse or
 * close alike (which check names a refusal may differ: llhttp's or the
 * gate's, whichever sees the byte first); with answers, when they arrive
 * decides what they answer, so only the bounds are checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_gate.h"

#define OUT_MAX (1 << 20)

struct dir {
	const uint8_t *data;
	size_t len, fed, stepped;
	unsigned long digest;		/* of what went out, in order */
	size_t out;
};

struct run {
	struct http_gate *g;
	struct dir d[2];
	unsigned long decided, done, refused;
	bool closed;
};

static void decide(void *ctx, const struct http_gate_req *r, struct http_exchange *x)
{
	struct run *run = ctx;

	if (strlen(r->target) > 64 * 1024 || (r->host && strlen(r->host) > 255))
		abort();
	run->decided++;
	if (!strcmp(r->method, "DELETE")) {
		x->status = 403;
		x->reason = "policy-deny";
		snprintf(x->why, sizeof(x->why), "DELETE %s", r->target);
	}
	if (!r->traceparent && (run->decided & 1)) {
		x->add_traceparent = true;
		strcpy(x->trace_id, "0af7651916cd43dd8448eb211c80319c");
		strcpy(x->span_id, "b7ad6b7169203331");
	}
}

static void done(void *ctx, const struct http_exchange *x)
{
	((struct run *)ctx)->done++;
}

static void refused(void *ctx, const char *reason, const char *detail)
{
	struct run *run = ctx;

	if (!reason || !detail || run->refused)
		abort();
	run->refused++;
}

static const struct http_gate_ops ops = { .decide = decide, .done = done, .refused = refused };

static void out(struct dir *d, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d->digest = d->digest * 33 + (unsigned char)buf[i];
	d->out += n;
}

static bool steps(struct run *run, int dir)
{
	struct dir *d = &run->d[dir];
	struct http_gate_step st;
	bool moved = false;
	size_t n;

	for (;;) {
		http_gate_step(run->g, dir, &st);
		if (st.kind == HTTP_STEP_WAIT)
			return moved;
		if (st.kind == HTTP_STEP_CLOSE) {
			run->closed = true;
			return moved;
		}
		if (st.kind == HTTP_STEP_WRITE) {
			if (!st.len || d->out > OUT_MAX)
				abort();
			out(d, st.data, st.len);
			http_gate_done(run->g, dir, st.len);
			moved = true;
			continue;
		}
		n = d->fed - d->stepped;
		if (!st.len)
			abort();
		if (!n)
			return moved;
		if (st.len < n)
			n = st.len;
		if (st.kind == HTTP_STEP_PASS)
			out(d, (const char *)d->data + d->stepped, n);
		d->stepped += n;
		http_gate_done(run->g, dir, n);
		moved = true;
	}
}

static void drive(struct run *run, size_t step)
{
	struct http_gate_limits lim;
	bool moved;
	size_t n;

	http_gate_limits_default(&lim);
	run->g = http_gate_new(&lim, &ops, run);
	if (!run->g)
		abort();
	do {
		moved = false;
		for (int i = 0; i < 2; i++) {
			struct dir *d = &run->d[i];

			n = d->len - d->fed < step ? d->len - d->fed : step;
			if (n && !run->closed) {
				n = http_gate_feed(run->g, i, (const char *)d->data + d->fed, n);
				d->fed += n;
				moved |= n > 0;
			}
			if (d->fed == d->len && !moved && d->len)
				http_gate_eof(run->g, i);
		}
		moved |= steps(run, HTTP_GATE_REQ);
		moved |= steps(run, HTTP_GATE_RES);
		moved |= http_gate_kicked(run->g);
	} while (moved);
	http_gate_free(run->g);
	if (run->done < run->decided)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole = {}, pieces = {};
	size_t step, split;

	if (size < 2)
		return 0;
	step = data[0] % 17 + 1;
	split = data[1] == 255 ? size - 2 : (size - 2) * data[1] / 256;
	data += 2;
	size -= 2;
	for (int r = 0; r < 2; r++) {
		struct run *run = r ? &pieces : &whole;

		run->d[HTTP_GATE_REQ] = (struct dir){ .data = data, .len = split };
		run->d[HTTP_GATE_RES] = (struct dir){ .data = data + split, .len = size - split };
		drive(run, r ? step : size + 1);
	}
	if (split != size)
		return 0;
	if (whole.d[HTTP_GATE_REQ].out != pieces.d[HTTP_GATE_REQ].out ||
	    whole.d[HTTP_GATE_REQ].digest != pieces.d[HTTP_GATE_REQ].digest)
		abort();
	if (whole.decided != pieces.decided || whole.refused != pieces.refused ||
	    whole.closed != pieces.closed)
		abort();
	return 0;
}
