// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "datapath.h"
#include "metrics.h"
#include "names.h"
#include "policy.h"
#include "sluice.skel.h"

#define BATCH 4096

const uint64_t metrics_le_us[METRICS_NR_LE] = {
	16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
};

void metrics_cumulate(const __u64 *b, int nr_b, uint64_t cum[METRICS_NR_LE])
{
	uint64_t sum = 0;
	int i = 0;

	/* le 2^k us holds buckets 0..k-1: every value under 2^k. */
	for (int k = 0; k < METRICS_NR_LE; k++) {
		int upto = __builtin_ctzll(metrics_le_us[k]);

		for (; i < upto && i < nr_b; i++)
			sum += b[i];
		cum[k] = sum;
	}
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. out holds 2 * SLUICE_NAME_LEN. */
static void escape(const char *v, char *out)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			*out++ = '\\';
		*out++ = *v == '\n' ? 'n' : *v;
	}
	*out = '\0';
}

/* Names of one kind, looked up and escaped once per scrape: ids are small
 * and dense. */
struct name_cache {
	int fd;
	__u32 kind;
	char (*names)[2 * SLUICE_NAME_LEN];
	bool *have;
	__u32 cap;
};

static const char *name_of(struct name_cache *c, __u32 id)
{
	static char tmp[2 * SLUICE_NAME_LEN];
	char raw[SLUICE_NAME_LEN];

	if (id < c->cap && c->have[id])
		return c->names[id];
	if (!id)
		snprintf(raw, sizeof(raw), "unknown");
	else
		names_lookup(c->fd, c->kind, id, raw, sizeof(raw));
	if (id >= c->cap) {
		escape(raw, tmp);
		return tmp;
	}
	escape(raw, c->names[id]);
	c->have[id] = true;
	return c->names[id];
}

struct render {
	struct strbuf *b;
	int nr_cpus;
	struct name_cache ids, svcs;
	uint64_t dropped_svc, dropped_violations;
	void *walk;			/* what the walk's fn adds to */
	uint64_t walked;		/* and how many it has seen */
	/* Entries of the maps the families walked (-1: the walk failed),
	 * so that sluice_map_entries need not walk them again. */
	long svc_entries, rtt_entries, violation_entries;
};

static void label(struct strbuf *b, const char *key, const char *v, bool first)
{
	char esc[2 * SLUICE_NAME_LEN];

	escape(v, esc);
	if (!first)
		strbuf_put(b, ",", 1);
	strbuf_puts(b, key);
	strbuf_put(b, "=\"", 2);
	strbuf_puts(b, esc);
	strbuf_put(b, "\"", 1);
}

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The labels of a (workload, service) pair, escaped, into lbl. */
static void pair_labels(struct render *r, __u32 identity, __u32 service, char *lbl, size_t len)
{
	snprintf(lbl, len, "source_workload=\"%s\",destination_service=\"%s\"",
		 name_of(&r->ids, identity), name_of(&r->svcs, service));
}

#define PAIR_LABELS_LEN (4 * SLUICE_NAME_LEN + 64)

/* The le bounds as labels, in seconds. */
static const char *const le_label[METRICS_NR_LE] = {
	",le=\"1.6e-05\"",  ",le=\"6.4e-05\"",  ",le=\"0.000256\"", ",le=\"0.001024\"",
	",le=\"0.004096\"", ",le=\"0.016384\"", ",le=\"0.065536\"", ",le=\"0.262144\"",
	",le=\"1.048576\"", ",le=\"4.194304\"", ",le=\"16.777216\"",
};

/* name{lbl<extra>} v: the line of every series. This and the histograms
 * below are what a scrape spends its time on (a line per bucket per pair),
 * so they append without a format string. */
static void series(struct strbuf *b, const char *name, const char *suffix, const char *lbl,
		   const char *extra, uint64_t v)
{
	strbuf_puts(b, name);
	strbuf_puts(b, suffix);
	strbuf_put(b, "{", 1);
	strbuf_puts(b, lbl);
	strbuf_puts(b, extra);
	strbuf_put(b, "} ", 2);
	strbuf_u64(b, v);
	strbuf_put(b, "\n", 1);
}

/* One histogram series: lbl is its labels, already escaped. */
static void histogram_series(struct strbuf *b, const char *name, const char *lbl,
			     const __u64 *buckets, uint64_t sum_us)
{
	uint64_t cum[METRICS_NR_LE], count = 0;
	char frac[8];

	for (int i = 0; i < SLUICE_LAT_BUCKETS; i++)
		count += buckets[i];
	metrics_cumulate(buckets, SLUICE_LAT_BUCKETS, cum);
	for (int k = 0; k < METRICS_NR_LE; k++)
		series(b, name, "_bucket", lbl, le_label[k], cum[k]);
	series(b, name, "_bucket", lbl, ",le=\"+Inf\"", count);
	/* The sum in seconds, exactly: whole seconds, then the microseconds. */
	strbuf_puts(b, name);
	strbuf_put(b, "_sum{", 5);
	strbuf_puts(b, lbl);
	strbuf_put(b, "} ", 2);
	strbuf_u64(b, sum_us / 1000000);
	snprintf(frac, sizeof(frac), ".%06u", (unsigned int)(sum_us % 1000000));
	strbuf_puts(b, frac);
	strbuf_put(b, "\n", 1);
	series(b, name, "_count", lbl, "", count);
}

static void histogram(struct render *r, const char *name, __u32 identity, __u32 service,
		      const __u64 *buckets, uint64_t sum_us)
{
	char lbl[PAIR_LABELS_LEN];

	pair_labels(r, identity, service, lbl, sizeof(lbl));
	histogram_series(r->b, name, lbl, buckets, sum_us);
}

/* Every entry of a hash map, in batches: fn(key, value) each. */
static int walk(int fd, size_t key_size, size_t value_size,
		void (*fn)(struct render *r, const void *k, const void *v), struct render *r)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = malloc(BATCH * key_size), *vals = malloc(BATCH * value_size);
	__u64 token = 0;
	bool started = false, done = false;
	int ret = keys && vals ? 0 : -ENOMEM;

	while (!ret && !done) {
		__u32 n = BATCH;

		if (bpf_map_lookup_batch(fd, started ? &token : NULL, &token, keys, vals, &n,
					 &opts)) {
			if (errno != ENOENT) {
				ret = -errno;
				break;
			}
			done = true;
		}
		started = true;
		for (__u32 i = 0; i < n; i++)
			fn(r, (char *)keys + i * key_size, (char *)vals + i * value_size);
	}
	free(keys);
	free(vals);
	return ret;
}

/* The svc_stats families, one series per (workload, service) pair. */
struct pair_row {
	struct sluice_svc_key k;
	struct sluice_svc_stats s;
};

struct pairs {
	struct pair_row *rows;
	size_t nr, cap;
	uint64_t dropped;
};

static void pair_add(struct render *r, const void *k, const void *v)
{
	struct pairs *p = r->walk;

	if (p->nr == p->cap) {
		p->dropped++;
		return;
	}
	memcpy(&p->rows[p->nr].k, k, sizeof(p->rows[p->nr].k));
	memcpy(&p->rows[p->nr].s, v, sizeof(p->rows[p->nr].s));
	p->nr++;
}

static void counter_rows(struct render *r, const struct pairs *p, const char *name,
			 const char *type, const char *help, size_t off, const char *extra)
{
	char lbl[PAIR_LABELS_LEN];

	family(r->b, name, type, help);
	for (size_t i = 0; i < p->nr; i++) {
		pair_labels(r, p->rows[i].k.identity, p->rows[i].k.service, lbl, sizeof(lbl));
		series(r->b, name, "", lbl, extra ? extra : "",
		       *(const __u64 *)((const char *)&p->rows[i].s + off));
	}
}

static int svc_families(struct render *r, const struct datapath *dp)
{
	struct pairs p = { .cap = METRICS_MAX_SERIES };
	int ret;

	p.rows = calloc(p.cap, sizeof(*p.rows));
	if (!p.rows)
		return -ENOMEM;
	r->walk = &p;
	ret = walk(bpf_map__fd(dp->skel->maps.svc_stats), sizeof(struct sluice_svc_key),
		   sizeof(struct sluice_svc_stats), pair_add, r);
	r->dropped_svc += p.dropped;
	r->svc_entries = ret ? -1 : (long)(p.nr + p.dropped);
	counter_rows(r, &p, "sluice_tcp_connections_opened_total", "counter",
		     "Connections the agent relayed whose upstream connect succeeded (verdict "
		     "allow); refused ones are in sluice_violations_total",
		     offsetof(struct sluice_svc_stats, flows), ",verdict=\"allow\"");
	counter_rows(r, &p, "sluice_tcp_connections_closed_total", "counter",
		     "Relayed connections closed", offsetof(struct sluice_svc_stats, closed),
		     NULL);
	counter_rows(r, &p, "sluice_tcp_sent_bytes_total", "counter",
		     "Bytes from the workload to the destination, acknowledged, at close",
		     offsetof(struct sluice_svc_stats, bytes_sent), NULL);
	counter_rows(r, &p, "sluice_tcp_received_bytes_total", "counter",
		     "Bytes from the destination to the workload, at close",
		     offsetof(struct sluice_svc_stats, bytes_received), NULL);
	family(r->b, "sluice_tcp_connect_duration_seconds", "histogram",
	       "Upstream connect time (SYN to established) from sockops");
	for (size_t i = 0; i < p.nr; i++)
		histogram(r, "sluice_tcp_connect_duration_seconds", p.rows[i].k.identity,
			  p.rows[i].k.service, p.rows[i].s.lat_buckets, p.rows[i].s.connect_us_sum);
	free(p.rows);
	return ret;
}

static void rtt_row(struct render *r, const void *k, const void *v)
{
	const struct sluice_svc_key *key = k;
	const struct sluice_svc_rtt *rt = v;

	if (r->walked++ >= METRICS_MAX_SERIES) {
		r->dropped_svc++;
		return;
	}
	histogram(r, "sluice_tcp_rtt_seconds", key->identity, key->service, rt->rtt_buckets,
		  rt->rtt_us_sum);
}

static int rtt_family(struct render *r, const struct datapath *dp)
{
	int ret;

	r->walked = 0;
	family(r->b, "sluice_tcp_rtt_seconds", "histogram",
	       "Upstream smoothed RTT of each relayed connection when it closed");
	ret = walk(bpf_map__fd(dp->skel->maps.svc_rtt), sizeof(struct sluice_svc_key),
		   sizeof(struct sluice_svc_rtt), rtt_row, r);
	r->rtt_entries = ret ? -1 : (long)r->walked;
	return ret;
}

static void violation_row(struct render *r, const void *k, const void *v)
{
	const struct sluice_violation_key *key = k;
	const struct sluice_counter *c = v;
	size_t stride = (sizeof(*c) + 7) & ~7ul;
	char lbl[PAIR_LABELS_LEN], reason[64];
	__u64 sum = 0;

	if (r->walked++ >= METRICS_MAX_SERIES) {
		r->dropped_violations++;
		return;
	}
	for (int cpu = 0; cpu < r->nr_cpus; cpu++)
		sum += ((const struct sluice_counter *)((const char *)c + cpu * stride))->count;
	pair_labels(r, key->identity, key->service, lbl, sizeof(lbl));
	/* Reason names are the policy's own identifiers: nothing to escape. */
	snprintf(reason, sizeof(reason), ",reason=\"%s\"", policy_reason_name(key->reason));
	series(r->b, "sluice_violations_total", "", lbl, reason, sum);
}

static int violation_family(struct render *r, const struct datapath *dp)
{
	int ret;

	r->walked = 0;
	family(r->b, "sluice_violations_total", "counter",
	       "Refused (and, failure mode open, bypassing) connects and datagrams, and "
	       "connections refused at mesh-only workloads (reason not-via-mesh: "
	       "source_workload is the protected workload)");
	ret = walk(bpf_map__fd(dp->skel->maps.violations), sizeof(struct sluice_violation_key),
		   ((sizeof(struct sluice_counter) + 7) & ~7ul) * r->nr_cpus, violation_row, r);
	r->violation_entries = ret ? -1 : (long)r->walked;
	return ret;
}

static void count_row(struct render *r, const void *k, const void *v)
{
	(void)k;
	(void)v;
	r->walked++;
}

static long map_entries(struct render *r, const struct datapath *dp, const struct bpf_map *m)
{
	size_t vs = bpf_map__value_size(m);

	if (m == dp->skel->maps.svc_stats)
		return r->svc_entries;
	if (m == dp->skel->maps.svc_rtt)
		return r->rtt_entries;
	if (m == dp->skel->maps.violations)
		return r->violation_entries;
	if (bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_HASH)
		vs = ((vs + 7) & ~7ul) * r->nr_cpus;
	r->walked = 0;
	if (walk(bpf_map__fd(m), bpf_map__key_size(m), vs, count_row, r))
		return -1;
	return r->walked;
}

static uint64_t dp_counter(struct render *r, const struct datapath *dp, __u32 idx)
{
	__u64 v[r->nr_cpus], sum = 0;

	if (bpf_map_lookup_elem(dp->dp_counters_fd, &idx, v))
		return 0;
	for (int i = 0; i < r->nr_cpus; i++)
		sum += v[i];
	return sum;
}

static void map_families(struct render *r, const struct datapath *dp)
{
	const struct bpf_map *maps[] = {
		dp->skel->maps.workloads, dp->skel->maps.policy4,     dp->skel->maps.policy6,
		dp->skel->maps.orig_dst,  dp->skel->maps.redirects,   dp->skel->maps.flows,
		dp->skel->maps.flow_links, dp->skel->maps.violations, dp->skel->maps.violation_dst,
		dp->skel->maps.refused_syns, dp->skel->maps.svc_stats, dp->skel->maps.svc_rtt,
		dp->skel->maps.names,
	};
	long entries[sizeof(maps) / sizeof(maps[0])];
	uint64_t tracked, untracked, live;

	family(r->b, "sluice_map_entries", "gauge", "Entries in each BPF map");
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		entries[i] = map_entries(r, dp, maps[i]);
		if (entries[i] >= 0)
			strbuf_printf(r->b, "sluice_map_entries{map=\"%s\"} %ld\n",
				      bpf_map__name(maps[i]), entries[i]);
	}
	family(r->b, "sluice_map_capacity", "gauge", "max_entries of each BPF map");
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		strbuf_printf(r->b, "sluice_map_capacity{map=\"%s\"} %u\n", bpf_map__name(maps[i]),
			      bpf_map__max_entries(maps[i]));
	tracked = dp_counter(r, dp, SLUICE_CNT_FLOWS_TRACKED);
	untracked = dp_counter(r, dp, SLUICE_CNT_FLOWS_UNTRACKED);
	live = entries[5] > 0 ? entries[5] : 0;
	family(r->b, "sluice_map_evictions_total", "counter",
	       "Entries the LRU flows map evicted: flows tracked - untracked - live (derived)");
	strbuf_printf(
	    r->b, "sluice_map_evictions_total{map=\"flows\"} %llu\n",
	    (unsigned long long)(tracked > untracked + live ? tracked - untracked - live : 0));
	family(r->b, "sluice_map_insert_failures_total", "counter",
	       "New keys a full map refused: their counts were not kept");
	strbuf_printf(r->b, "sluice_map_insert_failures_total{map=\"violations\"} %llu\n",
		      (unsigned long long)dp_counter(r, dp, SLUICE_CNT_VIOLATIONS_UNCOUNTED));
	strbuf_printf(r->b, "sluice_map_insert_failures_total{map=\"svc_stats\"} %llu\n",
		      (unsigned long long)dp_counter(r, dp, SLUICE_CNT_STATS_UNCOUNTED));
	family(r->b, "sluice_refusal_events_total", "counter",
	       "Refusal events BPF sent to the agent through the refusals ring buffer, and "
	       "those lost because it was full");
	strbuf_printf(r->b, "sluice_refusal_events_total{result=\"sent\"} %llu\n",
		      (unsigned long long)dp_counter(r, dp, SLUICE_CNT_REFUSALS_SENT));
	strbuf_printf(r->b, "sluice_refusal_events_total{result=\"lost\"} %llu\n",
		      (unsigned long long)dp_counter(r, dp, SLUICE_CNT_REFUSALS_LOST));
}

static void one(struct strbuf *b, const char *name, const char *type, const char *help, double v)
{
	family(b, name, type, help);
	strbuf_printf(b, "%s %.17g\n", name, v);
}

static void otlp_families(struct strbuf *b, const struct otlp_stats *s)
{
	family(b, "sluice_otlp_spans_total", "counter",
	       "Spans made for the collector, by what became of them (queued: every span made)");
	strbuf_printf(b, "sluice_otlp_spans_total{result=\"queued\"} %llu\n",
		      (unsigned long long)s->queued);
	strbuf_printf(b, "sluice_otlp_spans_total{result=\"exported\"} %llu\n",
		      (unsigned long long)s->exported);
	strbuf_printf(b, "sluice_otlp_spans_total{result=\"dropped_queue_full\"} %llu\n",
		      (unsigned long long)s->dropped_queue_full);
	strbuf_printf(b, "sluice_otlp_spans_total{result=\"dropped_export_failed\"} %llu\n",
		      (unsigned long long)s->dropped_export_failed);
	strbuf_printf(b, "sluice_otlp_spans_total{result=\"rejected\"} %llu\n",
		      (unsigned long long)s->rejected);
	family(b, "sluice_otlp_export_requests_total", "counter",
	       "OTLP/HTTP export requests, each try counted");
	strbuf_printf(b, "sluice_otlp_export_requests_total{result=\"ok\"} %llu\n",
		      (unsigned long long)s->requests_ok);
	strbuf_printf(b, "sluice_otlp_export_requests_total{result=\"failed\"} %llu\n",
		      (unsigned long long)s->requests_failed);
	one(b, "sluice_otlp_queue_spans", "gauge", "Spans waiting to be exported", s->queue_len);
	one(b, "sluice_otlp_queue_capacity_spans", "gauge", "The span queue's size (otlp.queue)",
	    s->queue_cap);
}

static const char *const dir_name[] = { "outbound", "inbound" };

static void handshake_families(struct strbuf *b, const struct tunnel_stats *ts)
{
	static const char *const result[PROXY_HS_NR] = {
		[PROXY_HS_OK] = "ok",	      [PROXY_HS_FAILED] = "failed",
		[PROXY_HS_TIMEOUT] = "timeout", [PROXY_HS_DROPPED] = "dropped",
		[PROXY_HS_ABORTED] = "aborted",
	};
	static const char *const session[] = { "full", "resumed" };
	char peer[2 * CONFIG_NAME_MAX], lbl[3 * CONFIG_NAME_MAX];
	uint64_t n;

	family(b, "sluice_tunnel_handshakes_total", "counter",
	       "Tunnel TLS handshakes by peer node, direction, result and session (full or "
	       "resumed when it completed, none otherwise)");
	for (int i = 0; i < ts->nr_hs; i++) {
		const struct tunnel_hs_peer *h = &ts->hs[i];

		escape(h->peer, peer);
		for (int d = 0; d < 2; d++) {
			for (int s = 0; s < 2; s++) {
				n = 0;
				for (int k = 0; k < SLUICE_LAT_BUCKETS; k++)
					n += h->buckets[d][s][k];
				strbuf_printf(
				    b,
				    "sluice_tunnel_handshakes_total{peer=\"%s\",direction=\"%s\","
				    "result=\"ok\",session=\"%s\"} %llu\n",
				    peer, dir_name[d], session[s], (unsigned long long)n);
			}
			for (int res = PROXY_HS_OK + 1; res < PROXY_HS_NR; res++)
				strbuf_printf(
				    b,
				    "sluice_tunnel_handshakes_total{peer=\"%s\",direction=\"%s\","
				    "result=\"%s\",session=\"none\"} %llu\n",
				    peer, dir_name[d], result[res],
				    (unsigned long long)h->ended[d][res]);
		}
	}
	family(b, "sluice_tunnel_handshake_duration_seconds", "histogram",
	       "Completed tunnel TLS handshakes: outbound from the TCP connect to the peer, "
	       "inbound from accept");
	for (int i = 0; i < ts->nr_hs; i++) {
		escape(ts->hs[i].peer, peer);
		for (int d = 0; d < 2; d++) {
			for (int s = 0; s < 2; s++) {
				snprintf(lbl, sizeof(lbl),
					 "peer=\"%s\",direction=\"%s\",session=\"%s\"", peer,
					 dir_name[d], session[s]);
				histogram_series(b, "sluice_tunnel_handshake_duration_seconds", lbl,
						 ts->hs[i].buckets[d][s], ts->hs[i].sum_us[d][s]);
			}
		}
	}
}

static void credential_families(struct strbuf *b, const struct tunnel_stats *ts)
{
	static const enum cred_kind renewed[] = { CRED_NODE_CERT, CRED_TOKEN, CRED_JWKS };

	family(b, "sluice_credential_expiry_timestamp_seconds", "gauge",
	       "When each credential of credentials.json expires (unix time): the mesh CA, "
	       "the node certificate, each workload's token");
	for (int i = 0; i < ts->nr_creds; i++) {
		if (!ts->creds[i].not_after)
			continue;
		strbuf_puts(b, "sluice_credential_expiry_timestamp_seconds{");
		label(b, "kind", cred_kind_name(ts->creds[i].kind), true);
		label(b, "name", ts->creds[i].name, false);
		strbuf_printf(b, "} %lld\n", (long long)ts->creds[i].not_after);
	}
	family(b, "sluice_credential_rotations_total", "counter",
	       "Credentials replaced by new ones: node certificate reloaded, workload token "
	       "minted or fetched again, IdP key set changed");
	for (size_t i = 0; i < sizeof(renewed) / sizeof(renewed[0]); i++)
		strbuf_printf(b, "sluice_credential_rotations_total{kind=\"%s\"} %llu\n",
			      cred_kind_name(renewed[i]),
			      (unsigned long long)ts->rotations[renewed[i]]);
	family(b, "sluice_credential_renewal_failures_total", "counter",
	       "Renewals that failed: new node credentials refused, a token not minted or "
	       "not fetched, an IdP key set refused");
	for (size_t i = 0; i < sizeof(renewed) / sizeof(renewed[0]); i++)
		strbuf_printf(b, "sluice_credential_renewal_failures_total{kind=\"%s\"} %llu\n",
			      cred_kind_name(renewed[i]),
			      (unsigned long long)ts->renewal_failures[renewed[i]]);
}

static const char *const method_label[HTTP_M_NR] = { "read", "write", "other" };
static const char *const code_label[HTTP_STATUS_CLASSES] = {
	"none", "1xx", "2xx", "3xx", "4xx", "5xx",
};

/* One request series' labels, escaped, into lbl. */
static void http_series_labels(const struct http_series *e, char *lbl, size_t len)
{
	char w[2 * SLUICE_NAME_LEN], s[2 * SLUICE_NAME_LEN];

	escape(e->workload, w);
	escape(e->service, s);
	snprintf(lbl, len,
		 "source_workload=\"%s\",destination_service=\"%s\",method=\"%s\",code=\"%s\"", w,
		 s, method_label[e->method], code_label[e->status_class]);
}

/* The requests the agent in front of protocol: http services decided:
 * counted and timed per (source or edge caller, service, method class,
 * status class), and the refused ones per rule. */
static void http_families(struct strbuf *b, const struct http_authz_stats *h)
{
	char lbl[6 * SLUICE_NAME_LEN + 128], w[2 * SLUICE_NAME_LEN], s[2 * SLUICE_NAME_LEN],
	    r[2 * SLUICE_NAME_LEN];

	family(b, "sluice_http_requests_total", "counter",
	       "Requests to protocol: http services, by source workload (or the edge's caller), "
	       "destination service, method class (read: GET, HEAD, OPTIONS; write: POST, PUT, "
	       "PATCH, DELETE) and response status class (none: the flow ended first)");
	for (int i = 0; i < h->nr_series; i++) {
		const struct http_series *e = &h->series[i];

		http_series_labels(e, lbl, sizeof(lbl));
		series(b, "sluice_http_requests_total", "", lbl, "", e->count);
	}
	family(b, "sluice_http_request_duration_seconds", "histogram",
	       "From a request's head decided to its response's end, as the agent in front of "
	       "the service saw it");
	for (int i = 0; i < h->nr_series; i++) {
		const struct http_series *e = &h->series[i];

		http_series_labels(e, lbl, sizeof(lbl));
		histogram_series(b, "sluice_http_request_duration_seconds", lbl,
				 e->duration_us_log2, e->duration_sum_us);
	}
	family(b, "sluice_http_denied_total", "counter",
	       "Requests answered by the agent (403, 401, 400) by service, deciding rule "
	       "(\"default\" for the policy's default, \"\" when no rule decided) and reason");
	for (int i = 0; i < h->nr_denials; i++) {
		const struct http_denial *d = &h->denials[i];

		escape(d->service, s);
		escape(d->rule, r);
		escape(d->reason, w);
		snprintf(lbl, sizeof(lbl), "destination_service=\"%s\",rule=\"%s\",reason=\"%s\"",
			 s, r, w);
		series(b, "sluice_http_denied_total", "", lbl, "", d->count);
	}
	one(b, "sluice_http_connections_refused_total", "counter",
	    "Connections to protocol: http services refused whole: not HTTP/1.x, a TLS "
	    "ClientHello, HTTP/2, or a request another parser could frame differently",
	    h->refused);
	one(b, "sluice_http_series_dropped_total", "counter",
	    "Request counter updates left out past the series cap", h->series_dropped);
}

static void would_deny_rows(struct strbuf *b, const struct rule_counts *t)
{
	for (int i = 0; i < t->nr; i++) {
		strbuf_puts(b, "sluice_policy_would_deny_total{");
		label(b, "rule", t->rows[i].rule, true);
		label(b, "where", t->rows[i].where, false);
		strbuf_printf(b, "} %llu\n", (unsigned long long)t->rows[i].count);
	}
}

void metrics_render_agent(const struct metrics_deps *d, struct strbuf *b)
{
	struct metrics_agent a = {};
	struct sluice_config cfg = {};
	struct timespec ts;
	double wall;

	d->agent(d->ctx, &a);
	datapath_config_get(d->dp, &cfg);
	clock_gettime(CLOCK_REALTIME, &ts);
	wall = ts.tv_sec + ts.tv_nsec / 1e9;
	family(b, "sluice_build_info", "gauge", "The agent's version and datapath ABI");
	strbuf_printf(b, "sluice_build_info{version=\"%s\",abi=\"%d\"} 1\n", SLUICE_VERSION,
		      SLUICE_ABI_VERSION);
	one(b, "sluice_agent_heartbeat_timestamp_seconds", "gauge",
	    "When the agent last wrote its heartbeat to sluice_cfg (unix time)",
	    wall - (mono_ns() - cfg.heartbeat_ns) / 1e9);
	one(b, "sluice_policy_generation", "gauge", "The live policy generation",
	    cfg.slot_loaded[cfg.active_slot & 1] ? cfg.slot_generation[cfg.active_slot & 1] : 0);
	family(b, "sluice_policy_info", "gauge",
	       "The live policy generation and its file's SHA-256, for checking a rollout "
	       "node by node");
	strbuf_printf(b, "sluice_policy_info{generation=\"%u\",sha256=\"%s\"} 1\n", a.generation,
		      a.sha256 ? a.sha256 : "");
	family(b, "sluice_policy_applies_total", "counter",
	       "Policy generations the agent tried to make live (start, SIGHUP, policy apply)");
	strbuf_printf(b, "sluice_policy_applies_total{result=\"ok\"} %llu\n",
		      (unsigned long long)a.applies_ok);
	strbuf_printf(b, "sluice_policy_applies_total{result=\"error\"} %llu\n",
		      (unsigned long long)a.applies_failed);
	one(b, "sluice_policy_rollbacks_total", "counter", "Rollbacks (SIGUSR2, policy rollback) that took effect",
	    a.rollbacks);
	family(b, "sluice_policy_would_deny_total", "counter",
	       "Decisions an audit-mode deny would have refused, let through, by rule (its "
	       "name, rule-N when it has none, default) and where: connect or sendmsg (BPF; "
	       "events lost in the refusals ring are not here), tunnel (inbound flows), "
	       "request (protocol: http requests)");
	would_deny_rows(b, &a.dec.would_deny);
	if (a.has_tunnel)
		would_deny_rows(b, &a.tunnel.would_deny);
	would_deny_rows(b, &a.http.would_deny);
	family(b, "sluice_audit_lines_total", "counter", "Audit log lines written and lost");
	strbuf_printf(b, "sluice_audit_lines_total{result=\"written\"} %llu\n",
		      (unsigned long long)a.audit.written);
	strbuf_printf(b, "sluice_audit_lines_total{result=\"lost\"} %llu\n",
		      (unsigned long long)a.audit.lost);
	one(b, "sluice_audit_refusals_folded_total", "counter",
	    "Refusals written as part of a folded line's count", a.dec.folded);
	one(b, "sluice_proxy_accepted_total", "counter", "Connections the agent accepted",
	    a.proxy.accepted);
	one(b, "sluice_proxy_active_connections", "gauge", "Connections the agent relays now",
	    a.proxy.active);
	one(b, "sluice_proxy_upstream_failures_total", "counter",
	    "Relayed connections whose upstream connect failed", a.proxy.upstream_failed);
	one(b, "sluice_proxy_idle_timeouts_total", "counter", "Relayed connections closed idle",
	    a.proxy.idle_timeouts);
	one(b, "sluice_proxy_unredirected_total", "counter",
	    "Connections accepted with no redirect record (dropped)", a.proxy.no_orig_dst);
	family(b, "sluice_tunnel_flows_total", "counter",
	       "Flows sent through a tunnel, accepted from one, and refused on either side");
	strbuf_printf(b, "sluice_tunnel_flows_total{direction=\"outbound\"} %llu\n",
		      (unsigned long long)a.proxy.tunnels_out);
	strbuf_printf(b, "sluice_tunnel_flows_total{direction=\"inbound\"} %llu\n",
		      (unsigned long long)a.proxy.tunnels_in);
	strbuf_printf(b, "sluice_tunnel_flows_total{direction=\"refused\"} %llu\n",
		      (unsigned long long)a.proxy.tunnels_refused);
	if (a.has_tunnel) {
		static const char *const verdict[] = { "deny", "allow" };
		static const char *const session[] = { "none", "full", "resumed" };

		family(b, "sluice_tunnel_decisions_total", "counter",
		       "Tunnel flows decided, one per audit line: session full or resumed is the "
		       "TLS handshake the flow rode on, none when none completed");
		for (int i = 0; i < 2 * 2 * 3; i++)
			strbuf_printf(
			    b,
			    "sluice_tunnel_decisions_total{direction=\"%s\",verdict=\"%s\","
			    "session=\"%s\"} %llu\n",
			    dir_name[i / 6], verdict[i / 3 % 2], session[i % 3],
			    (unsigned long long)a.tunnel.decisions[i / 6][i / 3 % 2][i % 3]);
		handshake_families(b, &a.tunnel);
		credential_families(b, &a.tunnel);
	}
	family(b, "sluice_tunnel_handshakes_in_flight", "gauge", "TLS handshakes under way");
	strbuf_printf(b, "sluice_tunnel_handshakes_in_flight{direction=\"outbound\"} %llu\n",
		      (unsigned long long)a.proxy.handshakes_out);
	strbuf_printf(b, "sluice_tunnel_handshakes_in_flight{direction=\"inbound\"} %llu\n",
		      (unsigned long long)a.proxy.handshakes_in);
	family(b, "sluice_tunnel_handshakes_refused_total", "counter",
	       "Handshakes dropped at the in-flight cap");
	strbuf_printf(b, "sluice_tunnel_handshakes_refused_total{direction=\"outbound\"} %llu\n",
		      (unsigned long long)a.proxy.handshakes_refused_out);
	strbuf_printf(b, "sluice_tunnel_handshakes_refused_total{direction=\"inbound\"} %llu\n",
		      (unsigned long long)a.proxy.handshakes_refused_in);
	if (a.has_otlp)
		otlp_families(b, &a.otlp);
	http_families(b, &a.http);
}

int metrics_render_maps(const struct datapath *dp, struct strbuf *b)
{
	struct render r = { .b = b, .nr_cpus = libbpf_num_possible_cpus() };
	__u32 cap = SLUICE_MAX_NAMES;
	int ret = 0;

	r.ids = (struct name_cache){ .fd = dp->names_fd, .kind = SLUICE_NAME_IDENTITY };
	r.svcs = (struct name_cache){ .fd = dp->names_fd, .kind = SLUICE_NAME_SERVICE };
	r.ids.names = calloc(cap, sizeof(*r.ids.names));
	r.ids.have = calloc(cap, sizeof(bool));
	r.svcs.names = calloc(cap, sizeof(*r.svcs.names));
	r.svcs.have = calloc(cap, sizeof(bool));
	r.ids.cap = r.svcs.cap = cap;
	if (r.nr_cpus <= 0 || !r.ids.names || !r.ids.have || !r.svcs.names || !r.svcs.have)
		ret = -ENOMEM;
	if (!ret) {
		svc_families(&r, dp);
		rtt_family(&r, dp);
		violation_family(&r, dp);
		map_families(&r, dp);
		family(b, "sluice_metrics_series_dropped_total", "counter",
		       "Series left out of this scrape: more label sets than "
		       "METRICS_MAX_SERIES (4096) per family");
		series(b, "sluice_metrics_series_dropped_total", "", "family=\"tcp\"", "",
		       r.dropped_svc);
		series(b, "sluice_metrics_series_dropped_total", "", "family=\"violations\"", "",
		       r.dropped_violations);
		ret = b->oom ? -ENOMEM : 0;
	}
	free(r.ids.names);
	free(r.ids.have);
	free(r.svcs.names);
	free(r.svcs.have);
	return ret;
}
