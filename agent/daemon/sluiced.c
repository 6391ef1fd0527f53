// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluiced: the per-node agent. Loads and attaches the datapath, registers
 * workloads, makes the policy live and proxies the connections BPF steers
 * to it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "bpffs.h"
#include "addr.h"
#include "cgroup.h"
#include "clock.h"
#include "config.h"
#include "datapath.h"
#include "decisions.h"
#include "edge.h"
#include "edge_nginx.h"
#include "local_http.h"
#include "fdlimit.h"
#include "log.h"
#include "mapfull.h"
#include "oidc.h"
#include "otlp.h"
#include "policy.h"
#include "policy_map.h"
#include "probe.h"
#include "proxy.h"
#include "http_authz.h"
#include "tunnel.h"
#include "violations.h"
#include "workloads.h"

#define HS_REFUSED_LOG_NS (10 * 1000000000ull)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluiced [OPTIONS]\n"
		"\n"
		"The sluice node agent: attaches the BPF datapath to the cgroup root, enforces\n"
		"the policy at connect() and proxies the connections it steers.\n"
		"\n"
		"Options:\n"
		"  -c, --config PATH   config file (default " CONFIG_DEFAULT_PATH ")\n"
		"  -k, --keep-pinned   on exit, leave programs attached and maps pinned so a\n"
		"                      restart loses no counters (failure_mode then applies)\n"
		"      --check         validate the config and the policy, then exit\n"
		"      --probe         list the kernel features sluice uses, then exit\n"
		"  -v, --verbose       debug logging, including libbpf's\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop; SIGHUP re-reads the config and the policy and,\n"
		"when the policy file's content changed since it last made one, makes it the\n"
		"new policy generation (a bad file leaves the live one); SIGUSR2 rolls back\n"
		"to the previous generation. `sluicectl policy apply|rollback|history` do the\n"
		"same through the control socket (control.socket, docs/control.md). The live\n"
		"generation and its rollback target are kept under <run_dir>/policies and\n"
		"come back after a restart. With edge: in both the config and the policy,\n"
		"each generation's nginx config is rendered and checked with nginx -t before\n"
		"it goes live, and switched with it.\n");
}

static int proxy_lookup(void *ctx, const struct sockaddr_storage *peer,
			struct sluice_orig_dst *out)
{
	return datapath_orig_dst(&((struct agent *)ctx)->dp, peer, out);
}

static void proxy_upstream_created(void *ctx, int fd, const struct sluice_orig_dst *dst)
{
	datapath_link_upstream(&((struct agent *)ctx)->dp, fd, dst);
}

/* While the application's socket is surely open: an application that
 * closes first takes its flow record with it. */
static void proxy_upstream_connected(void *ctx, const struct sluice_orig_dst *dst,
				     uint32_t *connect_us)
{
	datapath_flow_connect_us(&((struct agent *)ctx)->dp, dst->cookie, connect_us);
}

static void proxy_flow_closed(void *ctx, void *flow_ctx, const struct sluice_orig_dst *dst,
			      const struct flow_end *e)
{
	struct agent *a = ctx;
	char d[SOCKADDR_STR_LEN];
	struct sockaddr_storage ss;
	/* A flow BPF redirected carries its workload's identity; an inbound
	 * tunnel flow the tunnel let go of (a refused OPEN) carries none, and
	 * the tunnel wrote its line. */
	if (flow_ctx)
		tunnel_flow_closed(a->tun, flow_ctx, e);
	else if (dst->identity != SLUICE_IDENTITY_NONE)
		decisions_flow_closed(a->dec, dst, e);
	orig_dst_sockaddr(dst, &ss);
	format_sockaddr(&ss, d, sizeof(d));
	pr_debug("flow closed: identity %u -> %s gen %u: %llu bytes up, %llu down, %.3f ms%s%s",
		 dst->identity, d, dst->generation, (unsigned long long)e->bytes_up,
		 (unsigned long long)e->bytes_down, e->duration_ns / 1e6, e->status ? ", error: " : "",
		 e->status ? strerror(-e->status) : "");
}

/* A flow that goes straight to a protocol: http service (on this node, or
 * off the mesh's nodes): its requests are decided here, for the workload
 * that connected. */
static int proxy_gate(void *ctx, const struct sluice_orig_dst *dst, struct http_gate **out)
{
	struct agent *a = ctx;
	const struct policy_identity *id = NULL;
	struct http_source src = { .node = a->cfg.node };
	char d[SOCKADDR_STR_LEN];
	struct sockaddr_storage ss;
	int svc;

	*out = NULL;
	svc = policy_service_at(&a->pol, dst->family, dst->addr, ntohs(dst->port), IPPROTO_TCP);
	if (svc < 0 || !a->pol.services[svc].http)
		return 0;
	for (int i = 0; i < a->wls.nr && !id; i++) {
		if (a->wls.ids[i].id == dst->identity)
			id = &a->wls.ids[i];
	}
	/* Gone in a reload since connect(): nobody to decide for. */
	if (!id)
		return -EACCES;
	orig_dst_sockaddr(dst, &ss);
	src.workload = id->spiffe_id;
	src.kind = id->kind;
	src.roles = (const char *const *)id->roles;
	src.nr_roles = id->nr_roles;
	src.dst = format_sockaddr(&ss, d, sizeof(d));
	src.service = a->pol.services[svc].name;
	*out = http_authz_gate(a->httpz, &src);
	return *out ? 0 : -ENOMEM;
}

/* The mesh CA, for caller assertions: the tunnel's, kept current as the
 * credentials rotate. */
static X509_STORE *ca_store(void *ctx)
{
	struct agent *a = ctx;

	return a->tun ? tunnel_creds(a->tun)->store : NULL;
}

static int setup_cgroups(struct agent *a, struct errmsg *err)
{
	char self[PATH_MAX], path[PATH_MAX];
	int ret;

	ret = cgroup2_mount(a->cg_mount, sizeof(a->cg_mount), err);
	if (ret)
		return ret;
	ret = cgroup_path(a->cg_mount, a->cfg.cgroup_root, a->cg_root, sizeof(a->cg_root));
	if (!ret && access(a->cg_root, F_OK))
		ret = -errno;
	if (ret)
		return errmsg_set(err, ret, "%s: cgroup_root %s: %s (create it, or fix cgroup_root)",
				  a->cfg.path, a->cg_root, strerror(-ret));
	if (a->cfg.agent_cgroup) {
		cgroup_path(a->cg_root, a->cfg.agent_cgroup, path, sizeof(path));
		ret = cgroup_join(path, err);
		if (ret)
			return ret;
	}
	ret = cgroup_self(a->cg_mount, self, sizeof(self));
	if (!ret)
		ret = cgroup_id(self, &a->agent_cg_id);
	if (ret)
		return errmsg_set(err, ret, "cannot find the agent's own cgroup: %s", strerror(-ret));
	ret = workloads_check_cgroups(&a->cfg, a->cg_root, err);
	if (ret)
		return ret;
	if (strncmp(self, a->cg_root, strlen(a->cg_root)))
		pr_warn("the agent's cgroup %s is outside cgroup_root %s: flows will lack upstream "
			"RTT and bytes (set agent_cgroup)", self, a->cg_root);
	return 0;
}

/* Like listen addresses, a reload leaves them (it warns). */
static int handshake_caps(struct agent *a, unsigned long fd_limit, struct errmsg *err)
{
	const struct handshake_caps *hc = &a->hs_caps;

	/* a->cfg keeps what the file said, for reload to compare. */
	a->hs_caps = a->cfg.handshakes;
	config_handshake_defaults(&a->hs_caps, fd_limit);
	if (proxy_set_handshake_limit(a->proxy, hc->max, hc->per_address))
		return errmsg_set(err, -ENOMEM, "out of memory");
	proxy_set_handshake_timeout(a->proxy, hc->timeout_ms);
	if (a->tun)
		pr_info("tunnel: at most %u handshakes in flight each way, %u per address (fd "
			"limit %lu), %u ms each", hc->max, hc->per_address, fd_limit,
			hc->timeout_ms);
	return 0;
}

/* The OIDC client's eventfd serves both: the tunnel clears it, then the
 * edge's requests that wait for introspection ask again. */
static void on_oidc(void *ctx)
{
	struct agent *a = ctx;

	tunnel_oidc_event(a->tun);
	if (a->edge)
		edge_oidc_event(a->edge);
}

/* The authorization endpoint nginx asks, on the tunnel's IdP keys, node
 * credentials and audit log; config_load() made sure identity.oidc is on. */
static int start_edge(struct agent *a, struct errmsg *err)
{
	const struct edge_cfg *ec = &a->cfg.edge;
	struct edge_deps deps = {
		.idp_key = tunnel_idp_key,
		.creds = tunnel_creds,
		.ctx = a->tun,
		.oidc = tunnel_oidc(a->tun),
		.audit = a->audit,
	};
	char listen[SOCKADDR_STR_LEN] = "";
	int fds[2], n, ret = 0;

	if (ec->introspection_client_id)
		ret = oidc_set_introspection_client(deps.oidc, ec->introspection_client_id,
						    ec->introspection_secret_file, err);
	if (!ret)
		ret = edge_new(&a->cfg, &deps, &a->edge, err);
	if (ret)
		return ret;
	n = edge_fds(a->edge, fds, 2);
	for (int i = 0; i < n && !ret; i++)
		ret = proxy_watch(a->proxy, fds[i], edge_run, a->edge);
	if (ret)
		return errmsg_set(err, ret, "edge: cannot watch its sockets: %s", strerror(-ret));
	if (ec->has_listen)
		format_sockaddr(&ec->listen, listen, sizeof(listen));
	pr_info("edge: authorization endpoint on %s%s%s, audience %s, cache %u tokens for %u s",
		ec->socket, listen[0] ? " and " : "", listen, ec->audience, ec->cache_max,
		ec->cache_ttl_s);
	return 0;
}

static void metrics_agent(void *ctx, struct metrics_agent *out)
{
	struct agent *a = ctx;

	proxy_get_stats(a->proxy, &out->proxy);
	audit_get_health(a->audit, &out->audit);
	decisions_get_stats(a->dec, &out->dec);
	out->applies_ok = a->applies_ok;
	out->applies_failed = a->applies_failed;
	out->rollbacks = a->rollbacks;
	out->generation = a->generation;
	out->sha256 = a->sha256;
	out->has_tunnel = a->tun;
	if (a->tun)
		tunnel_get_stats(a->tun, &out->tunnel);
	out->has_otlp = a->otlp;
	if (a->otlp)
		otlp_get_stats(a->otlp, &out->otlp);
	http_authz_get_stats(a->httpz, &out->http);
}

/* The local HTTP listener: /metrics, and the tunnel's node credentials. */
static int start_http(struct agent *a, struct errmsg *err)
{
	struct local_http_deps deps = {
		.creds = a->tun ? tunnel_creds : NULL,
		.ctx = a->tun,
		.metrics = { .dp = &a->dp, .agent = metrics_agent, .ctx = a },
	};
	char addr[SOCKADDR_STR_LEN];
	int ret;

	ret = local_http_new(&a->cfg, &deps, &a->http, err);
	if (ret)
		return ret;
	ret = proxy_watch(a->proxy, local_http_fd(a->http), local_http_run, a->http);
	if (ret)
		return errmsg_set(err, ret, "listen.http: cannot watch its socket: %s",
				  strerror(-ret));
	pr_info("local HTTP listener on %s: /metrics%s",
		format_sockaddr(&a->cfg.http, addr, sizeof(addr)),
		a->tun ? ", /v1/ca.pem, /v1/jwks.json" : "");
	return 0;
}

/* The rule's name in the generation that decided: the live one or the
 * one SIGUSR2 rolls back to; older ones are gone. */
static const char *rule_name(void *ctx, uint32_t generation, uint32_t rule)
{
	struct agent *a = ctx;
	const struct policy *pol;

	if (generation == a->generation)
		pol = &a->pol;
	else if (generation && generation == a->prev_generation)
		pol = &a->prev_pol;
	else
		return NULL;
	return rule && rule <= (uint32_t)pol->nr_rules ? pol->rules[rule - 1].name : NULL;
}

/* The audit lines of BPF's refusals and of the flows proxied without a
 * tunnel; before the first policy, so that its refusals are heard. */
static int start_decisions(struct agent *a, struct errmsg *err)
{
	struct decisions_deps deps = {
		.audit = a->audit,
		.node = a->cfg.node,
		.refusals_fd = a->dp.refusals_fd,
		.names_fd = a->dp.names_fd,
		.dp_counters_fd = a->dp.dp_counters_fd,
		.rule_name = rule_name,
		.ctx = a,
	};
	int ret;

	ret = decisions_new(&deps, &a->dec, err);
	if (ret)
		return ret;
	ret = proxy_watch(a->proxy, decisions_fd(a->dec), decisions_run, a->dec);
	return ret ? errmsg_set(err, ret, "cannot watch the refusals ring buffer: %s",
				strerror(-ret)) : 0;
}

static const char *group_name(unsigned int gid)
{
	static char buf[16];
	struct group *gr = getgrgid(gid);

	if (gr)
		return gr->gr_name;
	snprintf(buf, sizeof(buf), "%u", gid);
	return buf;
}

/* The control socket, once a generation is live for it to speak of. */
static int start_control(struct agent *a, struct errmsg *err)
{
	struct control_deps deps = {
		.handler = agent_control,
		.ctx = a,
		.audit = a->audit,
		.node = a->cfg.node,
	};
	int ret;

	ret = control_new(&a->cfg.control, &deps, &a->ctl, err);
	if (ret)
		return ret;
	ret = proxy_watch(a->proxy, control_fd(a->ctl), control_run, a->ctl);
	if (ret)
		return errmsg_set(err, ret, "control: cannot watch its socket: %s", strerror(-ret));
	pr_info("control socket %s (reads: root%s%s, changes: root%s%s), %u generations kept",
		a->cfg.control.socket, a->cfg.control.has_read_group ? " and group " : "",
		a->cfg.control.has_read_group ? group_name(a->cfg.control.read_gid) : "",
		a->cfg.control.has_admin_group ? " and group " : "",
		a->cfg.control.has_admin_group ? group_name(a->cfg.control.admin_gid) : "",
		a->cfg.control.history);
	return 0;
}

/* Spans from the audit records, when otlp: is configured. */
static int start_otlp(struct agent *a, struct errmsg *err)
{
	const struct otlp_cfg *oc = &a->cfg.otlp;
	int ret;

	if (!oc->endpoint)
		return 0;
	ret = otlp_new(oc, a->cfg.node, &a->otlp, err);
	if (ret)
		return ret;
	audit_set_hook(a->audit, otlp_audit_hook, a->otlp);
	pr_info("otlp: spans to %s (queue %u, batches of %u, every %u ms)", oc->traces_url,
		oc->queue, oc->batch, oc->interval_ms);
	return 0;
}

static int start(struct agent *a, struct policy_text *text, struct errmsg *err)
{
	struct probe_result probes[PROBE_MAX];
	struct sockaddr_storage l4 = {}, l6 = {};
	unsigned long fd_limit;
	struct proxy_ops ops = {
		.lookup = proxy_lookup,
		.upstream_created = proxy_upstream_created,
		.flow_closed = proxy_flow_closed,
		.upstream_connected = proxy_upstream_connected,
		.gate = proxy_gate,
		.ctx = a,
	};
	int ret;

	if (geteuid())
		return errmsg_set(err, -EPERM, "must run as root (needs CAP_BPF, CAP_NET_ADMIN "
				  "and CAP_SYS_ADMIN to load programs and attach to cgroups)");
	fd_limit = fd_limit_raise();
	ret = probe_check(probes, probe_kernel(probes), err);
	if (ret)
		return ret;
	ret = setup_cgroups(a, err);
	if (ret)
		return ret;
	ret = bpffs_prepare(a->cfg.pin_path, err);
	if (ret)
		return ret;
	ret = datapath_check_no_other_agent(a->cfg.pin_path, err);
	if (ret)
		return ret;

	ret = audit_open(a->cfg.audit_log, &a->audit, err);
	if (!ret)
		ret = start_otlp(a, err);
	if (!ret && (ret = http_authz_new(a->audit, ca_store, a, &a->httpz)))
		errmsg_set(err, ret, "out of memory");
	if (ret)
		return ret;
	if (a->cfg.identity.enabled) {
		ret = tunnel_new(&a->cfg, a->audit, a->httpz, &a->tun, err);
		if (ret)
			return ret;
		ops.tunnel_ctx = a->tun;
		tunnel_proxy_ops(&ops);
	}

	/* Listen before touching BPF: a port in use must leave the node as
	 * it was. */
	memcpy(&l4, &a->cfg.outbound4, sizeof(a->cfg.outbound4));
	memcpy(&l6, &a->cfg.outbound6, sizeof(a->cfg.outbound6));
	ret = proxy_new(&l4, &l6, a->cfg.idle_timeout_ms, &ops, &a->proxy, err);
	if (!ret) {
		proxy_set_keepalive(a->proxy, &a->cfg.keepalive);
		ret = handshake_caps(a, fd_limit, err);
	}
	if (!ret && a->tun)
		ret = proxy_listen_tunnel(a->proxy, &a->cfg.tunnel, err);
	if (!ret && a->tun && tunnel_oidc_fd(a->tun) >= 0)
		ret = proxy_watch(a->proxy, tunnel_oidc_fd(a->tun), on_oidc, a);
	if (!ret && a->tun && a->cfg.edge.enabled)
		ret = start_edge(a, err);
	if (!ret && a->cfg.has_http)
		ret = start_http(a, err);
	if (ret)
		return ret;

	ret = datapath_open(&a->dp, a->cfg.pin_path, a->cg_root, err);
	if (ret)
		return ret;
	ret = datapath_write_config(&a->dp, &a->cfg, a->agent_cg_id);
	if (ret)
		return errmsg_set(err, ret, "cannot write sluice_cfg: %s", strerror(-ret));
	ret = violation_watch_init(&a->vw, a->dp.violations_fd, a->dp.names_fd);
	if (ret)
		return errmsg_set(err, ret, "cannot read violations: %s", strerror(-ret));
	ret = start_decisions(a, err);
	if (ret)
		return ret;
	ret = agent_policy_start(a, text, err);
	if (!ret)
		ret = start_control(a, err);
	if (ret)
		return ret;
	pr_info("sluiced %s on node %s: attached to %s, pins in %s, outbound %s port %u, "
		"failure mode %s", SLUICE_VERSION, a->cfg.node, a->cg_root, a->cfg.pin_path,
		inet_ntoa(a->cfg.outbound4.sin_addr), ntohs(a->cfg.outbound4.sin_port),
		a->cfg.fail_open ? "open" : "closed");
	if (a->tun) {
		char tun[SOCKADDR_STR_LEN];

		pr_info("identity: mTLS tunnel on %s, %d peers, %s tokens, audit to %s",
			format_sockaddr(&a->cfg.tunnel, tun, sizeof(tun)), a->cfg.nr_peers,
			a->cfg.identity.oidc ? "OIDC" : "embedded", a->cfg.audit_log);
	}
	return 0;
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static int tick_fd(void)
{
	struct itimerspec its = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	int fd;

	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Refused handshakes come in floods: one line at most every
 * HS_REFUSED_LOG_NS, saying how many since the last. */
static void log_handshakes_refused(struct agent *a)
{
	const struct handshake_caps *hc = &a->hs_caps;
	uint64_t n, now = mono_ns();
	struct proxy_stats st;

	proxy_get_stats(a->proxy, &st);
	n = st.handshakes_refused_in + st.handshakes_refused_out;
	if (n == a->hs_refused_logged || (a->hs_refused_log_ns &&
					  now - a->hs_refused_log_ns < HS_REFUSED_LOG_NS))
		return;
	pr_warn("tunnel: %llu handshakes refused (in-flight cap %u each way, %u per address; the "
		"oldest go first), %llu inbound and %llu outbound since start",
		(unsigned long long)(n - a->hs_refused_logged), hc->max, hc->per_address,
		(unsigned long long)st.handshakes_refused_in,
		(unsigned long long)st.handshakes_refused_out);
	a->hs_refused_logged = n;
	a->hs_refused_log_ns = now;
}

static void on_tick(void *ctx)
{
	struct agent *a = ctx;
	uint64_t ticks;

	if (read(a->tick_fd, &ticks, sizeof(ticks)) < 0)
		return;
	datapath_heartbeat(&a->dp);
	violation_watch_poll(&a->vw);
	decisions_tick(a->dec);
	mapfull_poll(&a->mf, &a->dp);
	log_handshakes_refused(a);
	if (a->tun)
		tunnel_tick(a->tun);
	if (a->edge)
		edge_tick(a->edge);
	if (a->http)
		local_http_tick(a->http);
	if (a->ctl)
		control_tick(a->ctl);
}

static void on_rollback_signal(struct agent *a)
{
	struct errmsg err = {};
	json_t *result = NULL;

	if (agent_policy_rollback(a, &result, &err))
		pr_err("SIGUSR2: rollback: %s", err.msg);
	json_decref(result);
}

static void on_signal(void *ctx)
{
	struct agent *a = ctx;
	struct signalfd_siginfo si;

	while (read(a->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			agent_policy_reload(a);
		else if (si.ssi_signo == SIGUSR2)
			on_rollback_signal(a);
		else
			a->stop = true;
	}
}

/* One epoll for everything: the agent's signals and tick are served by
 * the proxy's loop, so a proxied byte costs no extra wakeup. */
static int run(struct agent *a)
{
	int ret;

	a->tick_fd = tick_fd();
	if (a->tick_fd < 0) {
		pr_err("cannot set up the event loop: %s", strerror(errno));
		return -errno;
	}
	ret = proxy_watch(a->proxy, a->signal_fd, on_signal, a);
	if (!ret)
		ret = proxy_watch(a->proxy, a->tick_fd, on_tick, a);
	if (ret) {
		pr_err("cannot set up the event loop: %s", strerror(-ret));
		return ret;
	}
	while (!a->stop) {
		ret = proxy_run(a->proxy, -1);
		if (ret) {
			pr_err("event loop: %s", strerror(-ret));
			return ret;
		}
	}
	pr_info("stopping: %s", a->keep_pinned ? "programs stay attached, maps stay pinned "
						  "(--keep-pinned)" : "detaching and unpinning");
	return 0;
}

/* keep_pinned is forced after a failed start: pins may hold an earlier
 * run's counters and workloads, and they are not ours to drop. */
static void cleanup(struct agent *a, bool keep_pinned)
{
	if (a->proxy)
		proxy_free(a->proxy);
	/* After the proxy, whose epoll watched its fds; before the tunnel,
	 * whose OIDC client and audit log it uses. */
	edge_free(a->edge);
	control_free(a->ctl);
	local_http_free(a->http);
	tunnel_free(a->tun);
	http_authz_free(a->httpz);
	decisions_free(a->dec);
	/* Last before the audit log: every record above may make a span. */
	otlp_free(a->otlp);
	audit_close(a->audit);
	if (a->signal_fd > 0)
		close(a->signal_fd);
	if (a->tick_fd > 0)
		close(a->tick_fd);
	if (a->dp.skel)
		datapath_close(&a->dp, keep_pinned);
	violation_watch_free(&a->vw);
	workloads_free(&a->wls);
	policy_free(&a->pol);
	policy_free(&a->prev_pol);
	genstore_free(&a->store);
	config_free(&a->cfg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "keep-pinned", no_argument, NULL, 'k' },
		{ "check", no_argument, NULL, 'C' },
		{ "probe", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *config_path = CONFIG_DEFAULT_PATH;
	struct policy_text text = {};
	struct agent a = {};
	struct errmsg err = {};
	bool check = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "c:kvVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			a.keep_pinned = true;
			break;
		case 'C':
			check = true;
			break;
		case 'P': {
			struct probe_result probes[PROBE_MAX];
			int n;

			datapath_set_verbose(false);
			n = probe_kernel(probes);
			probe_print(stdout, probes, n);
			return probe_check(probes, n, &err) ? 1 : 0;
		}
		case 'v':
			a.verbose = true;
			break;
		case 'V':
			printf("sluiced %s (ABI %d)\n", SLUICE_VERSION, SLUICE_ABI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	ret = agent_load_files(config_path, &a.cfg, &a.pol, &text, &err);
	if (ret) {
		pr_err("sluiced: %s", err.msg);
		return 1;
	}
	if (check) {
		printf("%s: ok (%d workloads); %s: ok (%d services, %d rules)\n", a.cfg.path,
		       a.cfg.nr_workloads, a.pol.path, a.pol.nr_services, a.pol.nr_rules);
		free(text.buf);
		cleanup(&a, true);
		return 0;
	}
	log_set_level(a.verbose ? LOG_DEBUG : (enum log_level)a.cfg.log_level);
	datapath_set_verbose(a.verbose);
	signal(SIGPIPE, SIG_IGN);
	/* Before start(): a SIGHUP sent once the "attached" line is out waits
	 * in the signalfd instead of killing the agent before its loop runs. */
	a.signal_fd = signal_fd();
	if (a.signal_fd < 0) {
		pr_err("sluiced: cannot set up the signalfd: %s", strerror(-a.signal_fd));
		free(text.buf);
		cleanup(&a, true);
		return 1;
	}

	ret = start(&a, &text, &err);
	free(text.buf);
	if (ret) {
		pr_err("sluiced: %s", err.msg);
		cleanup(&a, true);
		return 1;
	}
	ret = run(&a);
	cleanup(&a, a.keep_pinned);
	return ret ? 1 : 0;
}
