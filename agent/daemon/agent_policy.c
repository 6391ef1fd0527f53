// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Policy generations: which policy is live, how a new one gets there and
 * how the previous one comes back. Start, SIGHUP, SIGUSR2 and the control
 * socket all go through make_live() and agent_policy_rollback().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "edge.h"
#include "edge_nginx.h"
#include "http_authz.h"
#include "log.h"
#include "otlp.h"
#include "policy_diff.h"
#include "policy_map.h"
#include "tunnel.h"
#include "yamlx.h"

/* Where a candidate generation comes from, and its bytes. */
struct candidate {
	enum gen_source source;
	const struct control_peer *peer;	/* source socket */
	const char *content;
	size_t len;
	const char *sha256;
	bool dry_run;
};

/* What decides outside BPF (tunnel OPENs, edge requests, requests to
 * protocol: http services) follows the generation BPF enforces. */
static void decide_with(struct agent *a, const struct config *cfg, const struct policy *pol)
{
	if (a->tun)
		tunnel_set_policy(a->tun, cfg, pol, &a->wls, a->generation);
	if (a->edge)
		edge_set_policy(a->edge, pol, a->generation);
	http_authz_set_policy(a->httpz, cfg, pol, a->generation);
}

static bool edge_on(const struct config *cfg, const struct policy *pol)
{
	return cfg->edge.enabled && pol->edge.present;
}

/* Renders and tests the edge's nginx config for generation gen before
 * any map changes. */
static int edge_prepare(struct agent *a, const struct config *cfg, const struct policy *pol,
			uint32_t gen, struct errmsg *err)
{
	int ret;

	if (!edge_on(cfg, pol))
		return 0;
	/* nginx -t ends a second inside heartbeat_timeout (edge_nginx.h). */
	datapath_heartbeat(&a->dp);
	ret = edge_nginx_prepare(cfg, pol, gen, err);
	datapath_heartbeat(&a->dp);
	return ret;
}

/* The generation is live in BPF: nginx follows. A failure here leaves
 * nginx on the previous generation's file, which was tested too. */
static void edge_switch(const struct config *cfg, const struct policy *pol, uint32_t gen)
{
	struct errmsg err = {};

	if (edge_on(cfg, pol) && edge_nginx_switch(cfg, gen, &err))
		pr_err("%s", err.msg);
}

static uint32_t next_generation(struct agent *a)
{
	uint32_t gen = genstore_max(&a->store), m = policy_map_max_generation(&a->dp);

	if (m > gen)
		gen = m;
	if (a->generation > gen)
		gen = a->generation;
	return gen + 1;
}

/* Resolves workloads and makes pol live as gen, in the order that never
 * enforces a workload against a generation that lacks its entries. */
static int apply(struct agent *a, const struct config *cfg, const struct policy *pol,
		 uint32_t gen, struct errmsg *err)
{
	struct policy_map_result res;
	struct workload_set wls;
	int ret;

	ret = workloads_resolve(&a->dp, cfg, a->cg_root, &wls, err);
	if (!ret)
		ret = edge_prepare(a, cfg, pol, gen, err);
	if (!ret)
		ret = policy_map_apply(&a->dp, pol, wls.ids, wls.nr, gen, true, &res, err);
	if (!ret)
		ret = workloads_publish(&a->dp, &wls, err);
	if (ret) {
		workloads_free(&wls);
		return ret;
	}
	workloads_free(&a->wls);
	a->wls = wls;
	a->prev_generation = a->generation;
	a->generation = gen;
	edge_switch(cfg, pol, gen);
	pr_info("policy generation %u live (slot %u, %d entries, %d workloads, default %s) from %s",
		gen, res.slot, res.nr_entries, wls.nr, pol->default_allow ? "allow" : "deny",
		pol->path);
	return 0;
}

static int read_text(const char *path, struct policy_text *t, struct errmsg *err)
{
	int ret = yamlx_read(path, &t->buf, &t->len, err);

	if (!ret)
		sha256_hex(t->buf, t->len, t->sha256);
	return ret;
}

int agent_load_files(const char *path, struct config *cfg, struct policy *pol,
		     struct policy_text *text, struct errmsg *err)
{
	int ret;

	memset(text, 0, sizeof(*text));
	ret = config_load(path, cfg, err);
	if (ret)
		return ret;
	ret = read_text(cfg->policy_path, text, err);
	if (!ret)
		ret = policy_load_buf(cfg->policy_path, text->buf, text->len, pol, err);
	if (!ret) {
		ret = policy_check_config(pol, cfg, err);
		if (ret)
			policy_free(pol);
	}
	if (ret) {
		free(text->buf);
		text->buf = NULL;
		config_free(cfg);
	}
	return ret;
}

static int diff_of(struct agent *a, const struct policy *pol, json_t **diff, char *summary,
		   size_t len, struct errmsg *err)
{
	int ret = policy_diff(a->generation ? &a->pol : NULL, pol, a->wls.ids, a->wls.nr, diff,
			      err);

	if (!ret)
		policy_diff_summary(*diff, summary, len);
	return ret;
}

static void record(struct agent *a, const struct candidate *c, const char *name,
		   const char *summary, const char *config_sha, json_t *result)
{
	struct gen_entry e = {
		.generation = a->generation,
		.source = c->source,
		.name = (char *)name,
		.summary = (char *)summary,
	};
	struct errmsg err = {};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	e.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (c->peer) {
		e.has_peer = true;
		e.uid = c->peer->uid;
		e.gid = c->peer->gid;
		e.pid = c->peer->pid;
	}
	memcpy(e.sha256, c->sha256, SHA256_HEX_LEN);
	if (genstore_add(&a->store, &e, c->content, c->len,
			 c->source == GEN_FILE ? c->sha256 : NULL, config_sha, &err)) {
		pr_err("policy generation %u is live but not kept on disk: %s (a restart goes "
		       "back to generation %u)", a->generation, err.msg, a->store.live);
		json_object_set_new(result, "warning", json_string(err.msg));
	}
}

/*
 * Makes pol (taken on success) live as a new generation, with cfg (taken
 * too when it is not a->cfg), or with a dry run only says what it would
 * change. *result: the diff, and the generation and hash.
 */
static int make_live(struct agent *a, struct config *cfg, struct policy *pol,
		     const struct candidate *c, const char *config_sha, json_t **result,
		     struct errmsg *err)
{
	uint32_t gen = next_generation(a);
	char summary[256] = "";
	json_t *diff;
	int ret;

	datapath_heartbeat(&a->dp);
	ret = diff_of(a, pol, &diff, summary, sizeof(summary), err);
	if (ret)
		return ret;
	*result = json_pack("{s:b, s:I, s:s, s:o, s:s, s:o}", "dry_run", c->dry_run,
			    "generation", (json_int_t)gen, "sha256", c->sha256, "live_generation",
			    a->generation ? json_integer(a->generation) : json_null(), "summary",
			    summary, "diff", diff);
	if (c->dry_run)
		return 0;
	datapath_heartbeat(&a->dp);
	ret = apply(a, cfg, pol, gen, err);
	if (ret) {
		a->applies_failed++;
		return ret;
	}
	a->applies_ok++;
	record(a, c, pol->path, summary, config_sha, *result);
	policy_free(&a->prev_pol);
	a->prev_pol = a->pol;
	a->pol = *pol;
	memset(pol, 0, sizeof(*pol));
	memcpy(a->prev_sha256, a->sha256, SHA256_HEX_LEN);
	memcpy(a->sha256, c->sha256, SHA256_HEX_LEN);
	if (cfg != &a->cfg) {
		config_free(&a->cfg);
		a->cfg = *cfg;
		memset(cfg, 0, sizeof(*cfg));
	}
	decide_with(a, &a->cfg, &a->pol);
	return 0;
}

/* A kept generation's policy, checked against the config; *sha points
 * into the store. */
static int load_kept(struct agent *a, uint32_t gen, struct policy *pol, const char **sha,
		     struct errmsg *err)
{
	const struct gen_entry *e = genstore_find(&a->store, gen);
	const char *buf;
	size_t len;
	int ret;

	ret = genstore_content(&a->store, gen, &buf, &len, err);
	if (!ret)
		ret = policy_load_buf(e->name, buf, len, pol, err);
	if (!ret && (ret = policy_check_config(pol, &a->cfg, err)))
		policy_free(pol);
	if (!ret)
		*sha = e->sha256;
	return ret;
}

/* The live generation kept on disk, live again under its own number, and
 * then its rollback target loaded beside it. */
static int restore(struct agent *a, struct errmsg *err)
{
	uint32_t live = a->store.live, prev = a->store.previous;
	struct policy_map_result res;
	const char *sha;
	struct policy pol;
	int ret;

	ret = load_kept(a, live, &pol, &sha, err);
	if (!ret && (ret = apply(a, &a->cfg, &pol, live, err)))
		policy_free(&pol);
	if (ret)
		return ret;
	policy_free(&a->pol);
	a->pol = pol;
	memcpy(a->sha256, sha, SHA256_HEX_LEN);
	a->prev_generation = 0;
	if (prev && !load_kept(a, prev, &pol, &sha, err)) {
		ret = edge_prepare(a, &a->cfg, &pol, prev, err);
		if (!ret)
			ret = policy_map_apply(&a->dp, &pol, a->wls.ids, a->wls.nr, prev, false,
					       &res, err);
		if (!ret) {
			a->prev_pol = pol;
			a->prev_generation = prev;
			memcpy(a->prev_sha256, sha, SHA256_HEX_LEN);
		} else {
			policy_free(&pol);
		}
	}
	if (prev && !a->prev_generation)
		pr_warn("generation %u (the rollback target) cannot be loaded: %s", prev, err->msg);
	decide_with(a, &a->cfg, &a->pol);
	pr_info("policy generation %u restored from %s", live, a->store.dir);
	return 0;
}

static void config_sha(const struct config *cfg, char out[SHA256_HEX_LEN])
{
	struct policy_text t;
	struct errmsg err = {};

	out[0] = '\0';
	if (!read_text(cfg->path, &t, &err)) {
		memcpy(out, t.sha256, SHA256_HEX_LEN);
		free(t.buf);
	}
}

int agent_policy_start(struct agent *a, struct policy_text *text, struct errmsg *err)
{
	struct candidate c = {
		.source = GEN_FILE,
		.content = text->buf,
		.len = text->len,
		.sha256 = text->sha256,
	};
	char csha[SHA256_HEX_LEN];
	struct errmsg rerr = {};
	struct policy pol;
	json_t *result = NULL;
	int ret;

	ret = genstore_open(&a->store, a->cfg.run_dir, a->cfg.control.history, err);
	if (ret == -EINVAL || ret == -ENOMEM)
		return ret;
	if (ret)
		pr_err("%s: policy generations will not survive a restart", err->msg);
	config_sha(&a->cfg, csha);
	if (a->store.live) {
		ret = restore(a, &rerr);
		if (ret)
			pr_warn("the live generation %u kept in %s does not load: %s; starting "
				"from %s", a->store.live, a->store.dir, rerr.msg, a->cfg.policy_path);
		else if (!strcmp(a->store.file_sha256, text->sha256))
			return 0;
	}
	/* make_live() takes the policy from a->pol's place. */
	pol = a->pol;
	if (a->generation) {
		ret = policy_load_buf(a->cfg.policy_path, text->buf, text->len, &pol, err);
		if (ret)
			return ret;
	} else {
		memset(&a->pol, 0, sizeof(a->pol));
	}
	ret = make_live(a, &a->cfg, &pol, &c, csha, &result, err);
	json_decref(result);
	if (ret)
		policy_free(&pol);
	return ret;
}

/* SIGHUP with an unchanged policy: file but a changed config: the live
 * policy again, compiled for the config's workloads. */
static int recompile_live(struct agent *a, struct config *cfg, const char *csha,
			  struct errmsg *err)
{
	struct candidate c = { .source = GEN_CONFIG };
	json_t *result = NULL;
	struct policy pol;
	const char *buf;
	size_t len;
	int ret;

	ret = genstore_content(&a->store, a->generation, &buf, &len, err);
	if (ret)
		return ret;
	ret = policy_load_buf(a->pol.path, buf, len, &pol, err);
	if (!ret && (ret = policy_check_config(&pol, cfg, err)))
		policy_free(&pol);
	if (!ret) {
		c.content = buf;
		c.len = len;
		c.sha256 = a->sha256;
		ret = make_live(a, cfg, &pol, &c, csha, &result, err);
		if (ret)
			policy_free(&pol);
	}
	json_decref(result);
	return ret;
}

static void warn_restart_only(const struct config *n, const struct config *o)
{
	if (strcmp(n->cgroup_root, o->cgroup_root) || strcmp(n->pin_path, o->pin_path) ||
	    memcmp(&n->outbound4, &o->outbound4, sizeof(n->outbound4)) ||
	    memcmp(&n->tunnel, &o->tunnel, sizeof(n->tunnel)) || n->has_http != o->has_http ||
	    memcmp(&n->http, &o->http, sizeof(n->http)) ||
	    n->identity.enabled != o->identity.enabled || n->edge.enabled != o->edge.enabled)
		pr_warn("cgroup_root, bpf_pin_path, listen, identity and edge changes take effect "
			"on restart");
	if (n->idle_timeout_ms != o->idle_timeout_ms ||
	    memcmp(&n->keepalive, &o->keepalive, sizeof(n->keepalive)) ||
	    memcmp(&n->handshakes, &o->handshakes, sizeof(n->handshakes)))
		pr_warn("idle_timeout, keepalive and tunnel changes take effect on restart");
	if (strcmp(n->control.socket, o->control.socket) ||
	    n->control.has_read_group != o->control.has_read_group ||
	    n->control.has_admin_group != o->control.has_admin_group ||
	    n->control.read_gid != o->control.read_gid ||
	    n->control.admin_gid != o->control.admin_gid)
		pr_warn("control changes take effect on restart");
}

void agent_policy_reload(struct agent *a)
{
	char csha[SHA256_HEX_LEN];
	struct errmsg err = {};
	struct policy_text text;
	json_t *result = NULL;
	struct config cfg;
	struct policy pol;
	int ret;

	pr_info("SIGHUP: reloading %s", a->cfg.path);
	if (audit_reopen(a->audit, &err))
		pr_err("audit: %s", err.msg);
	err = (struct errmsg){};
	/* A reload runs in the event loop: the files' bounds (yamlx.h,
	 * POLICY_MAX_CANDIDATES) keep parsing and compiling short, and a beat
	 * before each gives it the whole heartbeat_timeout. */
	datapath_heartbeat(&a->dp);
	ret = agent_load_files(a->cfg.path, &cfg, &pol, &text, &err);
	if (ret) {
		a->applies_failed++;
		pr_err("reload rejected, the live policy stays: %s", err.msg);
		return;
	}
	warn_restart_only(&cfg, &a->cfg);
	config_sha(&cfg, csha);
	if (strcmp(text.sha256, a->store.file_sha256)) {
		struct candidate c = {
			.source = GEN_FILE,
			.content = text.buf,
			.len = text.len,
			.sha256 = text.sha256,
		};

		ret = make_live(a, &cfg, &pol, &c, csha, &result, &err);
	} else {
		policy_free(&pol);
		if (strcmp(csha, a->store.config_sha256))
			ret = recompile_live(a, &cfg, csha, &err);
		else
			pr_info("%s and %s unchanged (policy sha256 %.12s): generation %u stays "
				"live", cfg.path, cfg.policy_path, text.sha256, a->generation);
	}
	if (ret)
		pr_err("reload rejected, the live policy stays: %s", err.msg);
	json_decref(result);
	policy_free(&pol);
	if (cfg.path)
		config_free(&cfg);
	free(text.buf);
}

int agent_policy_rollback(struct agent *a, json_t **result, struct errmsg *err)
{
	struct policy_map_result res;
	struct errmsg serr = {};
	char sha[SHA256_HEX_LEN];
	struct policy tmp;
	int ret;

	/* Kept pins may hold an earlier run's slot that nothing here knows
	 * the rules of. */
	if (!a->prev_generation)
		return errmsg_set(err, -ENOENT, "no previous policy generation to roll back to");
	ret = policy_map_rollback(&a->dp, &res, err);
	if (ret)
		return ret;
	pr_info("rolled back: policy generation %u live (slot %u)", res.generation, res.slot);
	a->rollbacks++;
	a->prev_generation = a->generation;
	a->generation = res.generation;
	tmp = a->pol;
	a->pol = a->prev_pol;
	a->prev_pol = tmp;
	memcpy(sha, a->sha256, SHA256_HEX_LEN);
	memcpy(a->sha256, a->prev_sha256, SHA256_HEX_LEN);
	memcpy(a->prev_sha256, sha, SHA256_HEX_LEN);
	edge_switch(&a->cfg, &a->pol, res.generation);
	decide_with(a, &a->cfg, &a->pol);
	if (genstore_swap(&a->store, &serr))
		pr_err("rolled back, but %s: a restart makes generation %u live again", serr.msg,
		       a->prev_generation);
	*result = json_pack("{s:I, s:s, s:I}", "generation", (json_int_t)a->generation,
			    "sha256", a->sha256, "previous", (json_int_t)a->prev_generation);
	return 0;
}

static json_t *status_json(struct agent *a)
{
	const struct gen_entry *e = genstore_find(&a->store, a->generation);

	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:I, s:I, s:I}", "node",
			 a->cfg.node, "version", SLUICE_VERSION, "generation",
			 (json_int_t)a->generation, "sha256", a->sha256, "policy", a->pol.path,
			 "source", e ? json_string(gen_source_name(e->source)) : json_null(),
			 "previous", a->prev_generation ? json_integer(a->prev_generation)
							: json_null(),
			 "applies_ok", (json_int_t)a->applies_ok, "applies_failed",
			 (json_int_t)a->applies_failed, "rollbacks", (json_int_t)a->rollbacks);
}

static int policy_get(struct agent *a, json_t **result, struct errmsg *err)
{
	const char *buf;
	size_t len;
	int ret;

	ret = genstore_content(&a->store, a->generation, &buf, &len, err);
	if (ret)
		return ret;
	*result = json_pack("{s:I, s:s, s:s, s:s%}", "generation", (json_int_t)a->generation,
			    "name", a->pol.path, "sha256", a->sha256, "content", buf, len);
	return *result ? 0 : errmsg_set(err, -ENOMEM, "out of memory");
}

static int policy_apply(struct agent *a, const struct ctl_request *req,
			const struct control_peer *peer, json_t **result, struct errmsg *err)
{
	char sha[SHA256_HEX_LEN], csha[SHA256_HEX_LEN];
	struct candidate c = {
		.source = GEN_SOCKET,
		.peer = peer,
		.content = req->content,
		.len = req->content_len,
		.sha256 = sha,
		.dry_run = req->dry_run,
	};
	struct policy pol;
	int ret;

	sha256_hex(req->content, req->content_len, sha);
	ret = policy_load_buf(req->name, req->content, req->content_len, &pol, err);
	if (ret)
		return ret;
	ret = policy_check_config(&pol, &a->cfg, err);
	memcpy(csha, a->store.config_sha256, SHA256_HEX_LEN);
	if (!ret)
		ret = make_live(a, &a->cfg, &pol, &c, csha, result, err);
	if (ret || c.dry_run)
		policy_free(&pol);
	return ret;
}

int agent_control(void *ctx, const struct ctl_request *req, const struct control_peer *peer,
		  json_t **result, struct errmsg *err)
{
	struct agent *a = ctx;

	switch (req->cmd) {
	case CTL_STATUS:
		*result = status_json(a);
		return 0;
	case CTL_POLICY_GET:
		return policy_get(a, result, err);
	case CTL_POLICY_HISTORY:
		*result = genstore_json(&a->store);
		return 0;
	case CTL_POLICY_APPLY:
		return policy_apply(a, req, peer, result, err);
	case CTL_POLICY_ROLLBACK:
		return agent_policy_rollback(a, result, err);
	default:
		return errmsg_set(err, -EINVAL, "unknown command");
	}
}
