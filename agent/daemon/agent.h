/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's state, shared by sluiced.c (start, loop, stop) and
 * agent_policy.c (policy generations: start, SIGHUP, SIGUSR2 and the
 * control socket's requests, one code path for all).
 */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "control.h"
#include "datapath.h"
#include "genstore.h"
#include "mapfull.h"
#include "policy.h"
#include "proxy.h"
#include "violations.h"
#include "workloads.h"

struct agent {
	struct config cfg;
	struct policy pol;
	struct policy prev_pol;		/* what a rollback makes live */
	uint32_t generation;
	uint32_t prev_generation;	/* prev_pol's */
	char sha256[SHA256_HEX_LEN];	/* pol's content */
	char prev_sha256[SHA256_HEX_LEN];
	struct genstore store;
	uint64_t applies_ok, applies_failed, rollbacks;	/* for /metrics */
	struct tunnel *tun;		/* NULL without identity: */
	struct http_authz *httpz;	/* requests to protocol: http services */
	struct edge *edge;		/* NULL without edge: */
	struct local_http *http;	/* NULL with listen.http off */
	struct control *ctl;
	struct audit *audit;
	struct otlp *otlp;		/* NULL without otlp: */
	struct decisions *dec;
	struct datapath dp;
	struct workload_set wls;
	struct proxy *proxy;
	struct violation_watch vw;
	struct mapfull mf;
	char cg_mount[PATH_MAX];
	char cg_root[PATH_MAX];
	uint64_t agent_cg_id;
	int signal_fd;
	int tick_fd;
	struct handshake_caps hs_caps;	/* the proxy's, from start on */
	uint64_t hs_refused_logged;	/* handshakes refused, as last logged */
	uint64_t hs_refused_log_ns;	/* and when */
	bool stop;
	bool keep_pinned;
	bool verbose;
};

/* A policy file's bytes, read once: what is parsed is what is hashed. */
struct policy_text {
	char *buf;
	size_t len;
	char sha256[SHA256_HEX_LEN];
};

/* Reads the config and its policy: file, checked against each other. */
int agent_load_files(const char *path, struct config *cfg, struct policy *pol,
		     struct policy_text *text, struct errmsg *err);
/* At start, with a->cfg and a->pol loaded: the live generation kept on
 * disk comes back (and its rollback target), unless the policy: file
 * changed since it last made one; then it becomes a new generation. */
int agent_policy_start(struct agent *a, struct policy_text *text, struct errmsg *err);
/* SIGHUP. */
void agent_policy_reload(struct agent *a);
/* SIGUSR2 (peer NULL) and policy.rollback. */
int agent_policy_rollback(struct agent *a, json_t **result, struct errmsg *err);
/* The control socket's requests (control_handler). */
int agent_control(void *ctx, const struct ctl_request *req, const struct control_peer *peer,
		  json_t **result, struct errmsg *err);

#endif
