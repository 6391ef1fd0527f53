// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "clock.h"
#include "decisions.h"
#include "log.h"
#include "names.h"
#include "policy.h"
#include "tracectx.h"

#define FOLD_WINDOW_NS 1000000000ull
/* Slots a key may take, from its hash on: a full neighbourhood means too
 * many distinct keys this second, not a long chain to walk. */
#define FOLD_PROBES 8

struct fold_key {
	__u64 cgroup_id;
	__u32 identity;
	__u32 reason;
	__u32 family;
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 hook;
};

struct fold {
	struct fold_key k;
	bool used;
	__u64 window_ns;		/* when its line was written */
	__u64 pending;			/* repeats since, to write as one line */
	struct sluice_refusal last;	/* the newest repeat, what that line shows */
};

struct decisions {
	struct decisions_deps deps;
	struct ring_buffer *rb;
	struct fold *folds;
	int nr_cpus;
	__u64 unitemised_pending;	/* refusals past the table this second */
	__u32 unitemised_reason;	/* the last one's, which their line names */
	__u64 *percpu;			/* dp_counters lookup buffer */
	struct decisions_stats st;
	char *node;			/* deps.node, ours */
};

static __u32 fold_hash(const struct fold_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	__u32 h = 2166136261u;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void fold_key_of(const struct sluice_refusal *e, struct fold_key *k)
{
	memset(k, 0, sizeof(*k));
	k->cgroup_id = e->cgroup_id;
	k->identity = e->identity;
	k->reason = e->reason;
	k->family = e->family;
	memcpy(k->addr, e->addr, sizeof(k->addr));
	k->port = e->port;
	k->proto = e->proto;
	k->hook = e->hook;
}

static const char *hook_name(__u8 hook)
{
	switch (hook) {
	case SLUICE_HOOK_CONNECT:
		return "connect";
	case SLUICE_HOOK_SENDMSG:
		return "sendmsg";
	case SLUICE_HOOK_INBOUND:
		return "inbound";
	}
	return NULL;
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : NULL;
}

/* A BPF time (CLOCK_MONOTONIC) as the wall clock audit lines carry. */
static int64_t wall_ns(__u64 mono)
{
	struct timespec ts;
	__u64 now = mono_ns();

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (int64_t)(now - mono);
}

static void addr_port_str(__u32 family, const __u32 *addr, __u16 port, char *buf, size_t len)
{
	struct sluice_orig_dst d = { .family = family, .port = port };
	struct sockaddr_storage ss;

	memcpy(d.addr, addr, sizeof(d.addr));
	orig_dst_sockaddr(&d, &ss);
	format_sockaddr(&ss, buf, len);
}

/* A bypass and a would-deny were let through; every other event refused. */
static const char *verdict_of(__u32 reason)
{
	if (reason == SLUICE_REASON_BYPASS)
		return "allow";
	return reason == SLUICE_REASON_WOULD_DENY ? "would-deny" : "deny";
}

static void write_refusal(struct decisions *d, const struct sluice_refusal *e, __u64 count)
{
	char wl[SLUICE_NAME_LEN], svc[SLUICE_NAME_LEN], comm[SLUICE_COMM_LEN + 1];
	char dst[SOCKADDR_STR_LEN], peer[SOCKADDR_STR_LEN];
	bool inbound = e->hook == SLUICE_HOOK_INBOUND;
	bool have_wl, have_svc = false;
	struct audit_rec r = {
		.time_ns = wall_ns(e->time_ns),
		.direction = inbound ? "inbound" : "outbound",
		.src_node = d->deps.node,
		.dst = dst,
		.verdict = verdict_of(e->reason),
		.reason = policy_reason_name(e->reason),
		.generation = e->generation,
		.pid = e->pid,
		.proto = proto_name(e->proto),
		.hook = hook_name(e->hook),
		.count = count,
	};

	addr_port_str(e->family, e->addr, e->port, dst, sizeof(dst));
	have_wl = !names_lookup(d->deps.names_fd, SLUICE_NAME_IDENTITY, e->identity, wl,
				sizeof(wl));
	if (e->service)
		have_svc = !names_lookup(d->deps.names_fd, SLUICE_NAME_SERVICE, e->service, svc,
					 sizeof(svc));
	r.service = have_svc ? svc : NULL;
	if (inbound) {
		r.dst_workload = have_wl ? wl : NULL;
		addr_port_str(e->family, e->peer, e->peer_port, peer, sizeof(peer));
		r.peer = peer;
	} else {
		r.src_workload = have_wl ? wl : NULL;
	}
	if (e->rule && d->deps.rule_name)
		r.rule = d->deps.rule_name(d->deps.ctx, e->generation, e->rule);
	if (e->pid && e->comm[0]) {
		memcpy(comm, e->comm, SLUICE_COMM_LEN);
		comm[SLUICE_COMM_LEN] = 0;
		r.comm = comm;
	}
	audit_write(d->deps.audit, &r);
	d->st.lines_refusal++;
}

/* A line that stands for refusals no line itemises: count of them, under
 * reason, with why in detail. */
static void write_unitemised(struct decisions *d, __u64 count, const char *reason,
			     const char *detail)
{
	struct timespec ts;
	struct audit_rec r = {
		.direction = "outbound",
		.src_node = d->deps.node,
		.verdict = "deny",
		.reason = reason,
		.detail = detail,
		.count = count,
	};

	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_write(d->deps.audit, &r);
	d->st.lines_refusal++;
}

static void fold_flush(struct decisions *d, struct fold *f)
{
	if (f->pending)
		write_refusal(d, &f->last, f->pending);
	f->pending = 0;
}

/* The slot of e's key: its own when present, else a free one or one whose
 * second is over (flushed first); NULL when the neighbourhood is full. */
static struct fold *fold_find(struct decisions *d, const struct fold_key *k, __u64 now,
			      bool *found)
{
	__u32 h = fold_hash(k);
	struct fold *spare = NULL, *f;

	*found = false;
	for (int i = 0; i < FOLD_PROBES; i++) {
		f = &d->folds[(h + i) & (DECISIONS_FOLD_SLOTS - 1)];
		if (f->used && !memcmp(&f->k, k, sizeof(*k))) {
			*found = true;
			return f;
		}
		if (!spare && (!f->used || now - f->window_ns >= FOLD_WINDOW_NS))
			spare = f;
	}
	if (spare && spare->used)
		fold_flush(d, spare);
	return spare;
}

/* Each one, folded or not, in sluice_policy_would_deny_total. */
static void count_would_deny(struct decisions *d, const struct sluice_refusal *e)
{
	const char *name = NULL, *where = hook_name(e->hook);
	char label[RULE_COUNTS_LABEL_LEN];

	if (e->rule && d->deps.rule_name)
		name = d->deps.rule_name(d->deps.ctx, e->generation, e->rule);
	policy_rule_label(name, e->rule, label, sizeof(label));
	rule_counts_add(&d->st.would_deny, where ? where : "connect", label);
}

static int on_refusal(void *ctx, void *data, size_t size)
{
	const struct sluice_refusal *e = data;
	struct decisions *d = ctx;
	struct fold_key k;
	struct fold *f;
	bool found;

	if (size < sizeof(*e))
		return 0;
	d->st.refusals_read++;
	if (e->reason == SLUICE_REASON_WOULD_DENY)
		count_would_deny(d, e);
	fold_key_of(e, &k);
	f = fold_find(d, &k, e->time_ns, &found);
	if (!f) {
		d->unitemised_pending++;
		d->unitemised_reason = e->reason;
		d->st.unitemised++;
		return 0;
	}
	if (found && e->time_ns - f->window_ns < FOLD_WINDOW_NS) {
		f->pending++;
		f->last = *e;
		d->st.folded++;
		return 0;
	}
	if (found)
		fold_flush(d, f);
	f->k = k;
	f->used = true;
	f->window_ns = e->time_ns;
	f->pending = 0;
	write_refusal(d, e, 1);
	return 0;
}

int decisions_new(const struct decisions_deps *deps, struct decisions **out, struct errmsg *err)
{
	struct decisions *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return errmsg_set(err, -ENOMEM, "out of memory");
	d->deps = *deps;
	/* A reload frees the config the name came from. */
	d->node = strdup(deps->node);
	d->deps.node = d->node;
	d->nr_cpus = libbpf_num_possible_cpus();
	d->folds = calloc(DECISIONS_FOLD_SLOTS, sizeof(*d->folds));
	d->percpu = d->nr_cpus > 0 ? calloc(d->nr_cpus, sizeof(*d->percpu)) : NULL;
	if (!d->folds || !d->percpu || !d->node) {
		decisions_free(d);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	d->rb = ring_buffer__new(deps->refusals_fd, on_refusal, d, NULL);
	if (!d->rb) {
		ret = -errno;
		decisions_free(d);
		return errmsg_set(err, ret, "cannot read the refusals ring buffer: %s",
				  strerror(-ret));
	}
	*out = d;
	return 0;
}

int decisions_fd(const struct decisions *d)
{
	return ring_buffer__epoll_fd(d->rb);
}

void decisions_run(void *ctx)
{
	struct decisions *d = ctx;
	int n = ring_buffer__consume(d->rb);

	if (n < 0)
		pr_warn("refusals: cannot read the ring buffer: %s", strerror(-n));
}

static __u64 refusals_lost(struct decisions *d)
{
	__u32 idx = SLUICE_CNT_REFUSALS_LOST;
	__u64 sum = 0;

	if (bpf_map_lookup_elem(d->deps.dp_counters_fd, &idx, d->percpu))
		return d->st.lost_in_bpf;
	for (int i = 0; i < d->nr_cpus; i++)
		sum += d->percpu[i];
	return sum;
}

void decisions_tick(struct decisions *d)
{
	__u64 now = mono_ns(), lost;
	char detail[160];

	/* What is in the ring now belongs to this second. */
	decisions_run(d);
	for (int i = 0; i < DECISIONS_FOLD_SLOTS; i++) {
		struct fold *f = &d->folds[i];

		if (f->used && now - f->window_ns >= FOLD_WINDOW_NS) {
			fold_flush(d, f);
			f->used = false;
		}
	}
	if (d->unitemised_pending) {
		snprintf(detail, sizeof(detail),
			 "refusals of more distinct (workload, destination, reason) in one "
			 "second than the %d the agent folds; the last was %s",
			 DECISIONS_FOLD_SLOTS, policy_reason_name(d->unitemised_reason));
		write_unitemised(d, d->unitemised_pending, "unitemised", detail);
		d->unitemised_pending = 0;
	}
	lost = refusals_lost(d);
	if (lost > d->st.lost_in_bpf) {
		write_unitemised(d, lost - d->st.lost_in_bpf, "refusals-lost",
				 "refusals BPF made while the refusals ring buffer was full "
				 "(counted in dp_counters, not itemised)");
		pr_warn("refusals: %llu not itemised in the audit log: the ring buffer was full",
			(unsigned long long)(lost - d->st.lost_in_bpf));
	}
	d->st.lost_in_bpf = lost;
}

void decisions_flow_closed(struct decisions *d, const struct sluice_orig_dst *od,
			   const struct flow_end *e)
{
	char wl[SLUICE_NAME_LEN], svc[SLUICE_NAME_LEN], dst[SOCKADDR_STR_LEN];
	struct tracectx tc;
	bool traced = !tracectx_new(&tc);
	struct timespec ts;
	struct audit_rec r = {
		.direction = "outbound",
		.src_node = d->deps.node,
		.dst = dst,
		.verdict = "allow",
		.reason = "ok",
		.generation = od->generation,
		.trace_id = traced ? tc.trace_id : NULL,
		.span_id = traced ? tc.span_id : NULL,
		.proto = "tcp",
		.closed = true,
		.bytes_up = e->bytes_up,
		.bytes_down = e->bytes_down,
		.duration_ns = e->duration_ns,
		.connect_us = e->connect_us,
		.srtt_us = e->srtt_us,
		.status = !e->status ? "ok" : strerrorname_np(-e->status),
	};

	addr_port_str(od->family, od->addr, od->port, dst, sizeof(dst));
	if (!names_lookup(d->deps.names_fd, SLUICE_NAME_IDENTITY, od->identity, wl, sizeof(wl)))
		r.src_workload = wl;
	if (od->service &&
	    !names_lookup(d->deps.names_fd, SLUICE_NAME_SERVICE, od->service, svc, sizeof(svc)))
		r.service = svc;
	if (od->rule && d->deps.rule_name)
		r.rule = d->deps.rule_name(d->deps.ctx, od->generation, od->rule);
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_write(d->deps.audit, &r);
	d->st.lines_flow++;
}

void decisions_get_stats(const struct decisions *d, struct decisions_stats *out)
{
	*out = d->st;
}

void decisions_free(struct decisions *d)
{
	if (!d)
		return;
	if (d->rb) {
		decisions_run(d);
		for (int i = 0; i < DECISIONS_FOLD_SLOTS; i++)
			fold_flush(d, &d->folds[i]);
		ring_buffer__free(d->rb);
	}
	rule_counts_free(&d->st.would_deny);
	free(d->folds);
	free(d->percpu);
	free(d->node);
	free(d);
}
