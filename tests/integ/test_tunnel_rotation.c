// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Credentials that live a few seconds, rolled over the way cert-manager and
 * the agents' own schedule would do it, under traffic: node certificates of
 * 8 s re-issued on disk every 3 s, embedded tokens of 3 s re-minted by the
 * agent. A job's connection trickles bytes through the tunnel across
 * several rotations and stays byte-exact, a new connection every second
 * keeps working, both agents reload each certificate and publish it, node
 * B sees the new certificate (kid) and new tokens (jti) and refuses
 * nothing, with a clock skew of 1 s, so no expired token was presented.
 * When node A's certificate is not renewed, its flows are refused before
 * they leave (node-cert-expired), and a re-issue brings them back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_proc.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "scrape.h"
#include "servers.h"

#define CERT_LIFETIME "12s"
#define CERT_LIFETIME_S 12
#define REISSUE_EVERY_S 3
#define TOKEN_LIFETIME "3s"
#define SKEW "1s"
/* Re-issues at 3, 6, 9 and 12 s; tokens re-minted every 2 s at least. */
#define ROTATION_S 14
#define MIN_ISSUES 3
#define MIN_TOKENS (ROTATION_S / 3)
#define TRICKLE_MS 12000
#define TRICKLE_CHUNK 16384
#define TRICKLE_GAP_MS 50
/* Two a second at least, even under qemu without KVM. */
#define MIN_TRICKLE_CHUNKS (2 * TRICKLE_MS / 1000)
#define READ_MS 5000
#define FLOW_BYTES 65536
#define MAX_DISTINCT 64
#define RELOADED "node certificate reloaded"
#define PROMTOOL "/usr/bin/promtool"

/* The long transfer: a job's connection to B's echo server that sends a
 * chunk, reads it back and pauses, for TRICKLE_MS. */
struct trickle_res {
	int err;
	char call[16];
	struct payload_stream sent;
	struct payload_stream recvd;
	bool eof;
};

struct trickle {
	pid_t pid;
	int res_fd;
};

/* Distinct strings seen, up to MAX_DISTINCT. */
struct distinct {
	char v[MAX_DISTINCT][72];
	int nr;
};

static void distinct_add(struct distinct *d, const char *v)
{
	if (!v || !*v)
		return;
	for (int i = 0; i < d->nr; i++) {
		if (!strcmp(d->v[i], v))
			return;
	}
	if (d->nr < MAX_DISTINCT)
		snprintf(d->v[d->nr++], sizeof(d->v[0]), "%s", v);
}

static bool trickle_fail(struct trickle_res *r, const char *call, int err)
{
	r->err = err;
	snprintf(r->call, sizeof(r->call), "%s", call);
	return false;
}

static bool trickle_run(struct sl_env *env, struct trickle_res *r, char *buf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(PORT_ECHO) };
	long long end = now_ms() + TRICKLE_MS;
	int fd, ret;

	if ((ret = env_cgroup_join(env, "job")) || (ret = netns_join(env->ns_a)))
		return trickle_fail(r, "join", -ret);
	inet_pton(AF_INET, env->ip4_b, &sin.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		return trickle_fail(r, "connect", errno);
	while (now_ms() < end) {
		payload_next(&r->sent, buf, TRICKLE_CHUNK);
		if ((ret = write_full(fd, buf, TRICKLE_CHUNK)))
			return trickle_fail(r, "write", -ret);
		if ((ret = read_full(fd, buf, TRICKLE_CHUNK, READ_MS)))
			return trickle_fail(r, "read", -ret);
		payload_feed(&r->recvd, buf, TRICKLE_CHUNK);
		sleep_ms(TRICKLE_GAP_MS);
	}
	if (shutdown(fd, SHUT_WR))
		return trickle_fail(r, "shutdown", errno);
	r->eof = read_full(fd, buf, 1, READ_MS) == -EPIPE;
	close(fd);
	return true;
}

static int trickle_start(struct sl_env *env, struct trickle *t)
{
	static char buf[TRICKLE_CHUNK];
	struct trickle_res r = {};
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	t->pid = fork();
	if (!t->pid) {
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		payload_init(&r.sent);
		payload_init(&r.recvd);
		trickle_run(env, &r, buf);
		_exit(write(pfd[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(pfd[1]);
	if (t->pid < 0) {
		close(pfd[0]);
		return -errno;
	}
	env_track_child(env, t->pid);
	t->res_fd = pfd[0];
	return 0;
}

static int trickle_finish(struct sl_env *env, struct trickle *t, struct trickle_res *r)
{
	int ret = read_full(t->res_fd, r, sizeof(*r), TRICKLE_MS + 2 * READ_MS);

	close(t->res_fd);
	if (ret)
		kill(t->pid, SIGKILL);
	wait_child(t->pid, NULL, CLIENT_MS);
	env_untrack_child(env, t->pid);
	return ret;
}

/* One new connection of the job to B's echo server; true when every byte
 * came back. */
static bool flow_ok(struct sl_env *env, uint64_t bytes)
{
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_ECHO,
	    .bytes = bytes,
	};
	struct client_res res = {};

	if (client_run(env, &req, &res))
		return false;
	if (res.err || res.recvd.bytes != bytes || res.recvd.mismatch_at != -1 || !res.eof) {
		printf("flow at %lld ms: %s: %s, %llu of %llu bytes back\n", now_ms(),
		       res.call[0] ? res.call : "-", strerror(res.err),
		       (unsigned long long)res.recvd.bytes, (unsigned long long)bytes);
		return false;
	}
	return true;
}

/* How many times the log at path says needle after from, waiting (a
 * reload follows a re-issue within a tick) until that is at least nr. */
static int wait_count(const char *path, long from, const char *needle, int nr)
{
	long long deadline = now_ms() + LOG_WAIT_MS;
	int n;

	for (;;) {
		char *text = read_file_from(path, from);

		n = count_substr(text, needle);
		free(text);
		if (n >= nr || now_ms() >= deadline)
			return n;
		sleep_ms(100);
	}
}

/* What B's audit log says after from. */
struct audit_scan {
	int allow, deny;
	struct distinct kids, jtis;
};

static void scan_audit(struct sl_env *env, char node, long from, struct audit_scan *s)
{
	char *text = mesh_audit(env, node, from), *line, *save = NULL;

	memset(s, 0, sizeof(*s));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *verdict = json_string_value(json_object_get(j, "verdict"));

		if (verdict && !strcmp(verdict, "allow")) {
			s->allow++;
		} else {
			s->deny++;
			printf("node %c refused: %s\n", node, line);
		}
		distinct_add(&s->kids, json_string_value(json_object_get(j, "kid")));
		distinct_add(&s->jtis, json_string_value(json_object_get(j, "jti")));
		json_decref(j);
	}
	free(text);
}

/* Waits until node B has audited at least nr flows after from. */
static void wait_audit_lines(struct sl_env *env, long from, int nr, struct audit_scan *s)
{
	long long deadline = now_ms() + LOG_WAIT_MS;

	do {
		scan_audit(env, 'b', from, s);
		if (s->allow + s->deny >= nr)
			return;
		sleep_ms(100);
	} while (now_ms() < deadline);
}

static int issue_both(struct sl_env *env, const char *lifetime)
{
	return mesh_issue(env, NODE_A, lifetime) ?: mesh_issue(env, NODE_B, lifetime);
}

/* What node A publishes now: its certificate's expiry, the job token's
 * issue time. */
static void sample_creds(struct sl_env *env, struct distinct *cert_na, struct distinct *token_iat)
{
	struct mesh_cred c;
	char v[32];

	if (!mesh_cred(env, 'a', "node-cert", NULL, &c)) {
		snprintf(v, sizeof(v), "%lld", c.not_after);
		distinct_add(cert_na, v);
	}
	if (!mesh_cred(env, 'a', "token", ID_JOB, &c) && c.updated) {
		snprintf(v, sizeof(v), "%lld", c.updated);
		distinct_add(token_iat, v);
	}
}

/* Re-issues both certificates on the clock, off the flows' thread: a flow
 * takes seconds in the VM, and one that delayed a re-issue past a
 * certificate's lifetime would see it expire. */
struct reissuer {
	struct sl_env *env;
	long long start;
	int tried, issued;
};

static void *reissue_loop(void *arg)
{
	struct reissuer *r = arg;
	long long due;

	while ((due = r->start + (r->tried + 1) * REISSUE_EVERY_S * 1000) <
	       r->start + ROTATION_S * 1000) {
		if (now_ms() < due)
			sleep_ms(due - now_ms());
		r->tried++;
		r->issued += !issue_both(r->env, CERT_LIFETIME);
	}
	return NULL;
}

#define HS(peer, dir, result, session)                                                        \
	"sluice_tunnel_handshakes_total{peer=\"" peer "\",direction=\"" dir "\",result=\"" result \
	"\",session=\"" session "\"}"
#define ROTATIONS(kind) "sluice_credential_rotations_total{kind=\"" kind "\"}"

/* A sample of node's /metrics; -1 when it cannot be read. */
static long long metric(struct sl_env *env, char node, const char *series)
{
	char *text = scrape(env, node == 'a' ? env->ns_a : env->ns_b, METRICS_URL);
	long long v = text ? scrape_sample(text, series) : -1;

	free(text);
	return v;
}

/* The completed handshakes, full and resumed, of one series' peer and
 * direction in text. */
static long long handshakes_ok(const char *text, bool inbound)
{
	if (!inbound)
		return scrape_sample(text, HS(NODE_B, "outbound", "ok", "full")) +
		       scrape_sample(text, HS(NODE_B, "outbound", "ok", "resumed"));
	return scrape_sample(text, HS(NODE_A, "inbound", "ok", "full")) +
	       scrape_sample(text, HS(NODE_A, "inbound", "ok", "resumed"));
}

/* What /metrics says of the rollover: each reload a node-cert rotation,
 * tokens re-minted, the certificate's expiry as published, and every flow's
 * handshake completed, counted on both sides under the other's name. */
static void rollover_metrics(struct sl_env *env, long log_a, long long rot0, int tunnel_flows)
{
	int reloads = wait_count(env->agent_log, log_a, RELOADED, 1);
	char *a = scrape(env, env->ns_a, METRICS_URL), *b = scrape(env, env->ns_b, METRICS_URL);
	struct mesh_cred c;

	if (!a || !b)
		goto out;
	/* Both nodes' handshake and credential families, with data in them;
	 * on the host: the VM's root has no prometheus package. */
	if (!access(PROMTOOL, X_OK)) {
		promtool_check(env, a);
		promtool_check(env, b);
	}
	ASSERT_EQ(scrape_sample(a, ROTATIONS("node-cert")) - rot0, reloads,
		  "node A's node-cert rotations, one per reload");
	ASSERT_GE(scrape_sample(a, ROTATIONS("token")), MIN_TOKENS - 1, "node A's token rotations");
	if (ASSERT_OK(mesh_cred(env, 'a', "node-cert", NULL, &c), "node A's published cert"))
		ASSERT_EQ(scrape_sample(a, "sluice_credential_expiry_timestamp_seconds{kind=\"node-cert\","
					   "name=\"spiffe://" TRUST_DOMAIN "/node/" NODE_A "\"}"),
			  c.not_after, "node-cert expiry, as credentials.json says");
	ASSERT_EQ(handshakes_ok(a, false), tunnel_flows, "node A's handshakes to node-b");
	ASSERT_EQ(handshakes_ok(b, true), tunnel_flows, "node B's handshakes from node-a");
	ASSERT_EQ(scrape_sample(a, HS(NODE_B, "outbound", "failed", "none")), 0,
		  "node A's failed handshakes");
	ASSERT_EQ(scrape_sample(b, HS(NODE_A, "inbound", "failed", "none")), 0,
		  "node B's failed handshakes");
	ASSERT_EQ(scrape_sample(b, HS("unknown", "inbound", "ok", "full")), -1,
		  "node B's handshakes from no configured peer: no series");
	ASSERT_EQ(scrape_sample(a, "sluice_tunnel_handshake_duration_seconds_count{peer=\"" NODE_B
				   "\",direction=\"outbound\",session=\"full\"}") +
			  scrape_sample(a, "sluice_tunnel_handshake_duration_seconds_count{peer=\"" NODE_B
					   "\",direction=\"outbound\",session=\"resumed\"}"),
		  tunnel_flows, "node A's handshake durations observed");
out:
	free(a);
	free(b);
}

static void rollover_under_load(struct sl_env *env)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	long log_a = agent_log_size(env), log_b = mesh_b_log_size(env);
	struct distinct cert_na = {}, token_iat = {};
	struct trickle_res tr = {};
	struct audit_scan sa, sb;
	struct trickle t = { .pid = -1, .res_fd = -1 };
	struct reissuer re = { .env = env };
	long long rot0 = metric(env, 'a', ROTATIONS("node-cert"));
	int flows = 0, ok = 0, issued;
	pthread_t reissue;
	long long start;

	/* Traffic starts under the fresh certificates: in the VM the ones
	 * mesh_setup issued may have run out by now, and an agent picks up a
	 * new file on its next tick, not at once. */
	if (!ASSERT_OK(issue_both(env, CERT_LIFETIME), "fresh certificates") ||
	    !ASSERT_GE(wait_count(env->agent_log, log_a, RELOADED, 1), 1,
		       "node A loaded its fresh certificate") ||
	    !ASSERT_GE(wait_count(env->agent_b_log, log_b, RELOADED, 1), 1,
		       "node B loaded its fresh certificate") ||
	    !ASSERT_OK(trickle_start(env, &t), "long transfer started"))
		return;
	start = re.start = now_ms();
	if (!ASSERT_OK(pthread_create(&reissue, NULL, reissue_loop, &re), "re-issuer")) {
		trickle_finish(env, &t, &tr);
		return;
	}
	for (int s = 0; now_ms() < start + ROTATION_S * 1000; s++) {
		flows++;
		ok += flow_ok(env, FLOW_BYTES);
		sample_creds(env, &cert_na, &token_iat);
		if (now_ms() < start + (s + 1) * 1000)
			sleep_ms(start + (s + 1) * 1000 - now_ms());
	}
	pthread_join(reissue, NULL);
	issued = re.issued;
	ASSERT_EQ(issued, re.tried, "certificates re-issued");
	ASSERT_GE(issued, MIN_ISSUES, "re-issues");
	ASSERT_EQ(ok, flows, "new connections that worked");

	if (ASSERT_OK(trickle_finish(env, &t, &tr), "long transfer's report")) {
		ASSERT_EQ(tr.err, 0, "long transfer errno");
		if (tr.err)
			printf("long transfer: %s: %s\n", tr.call, strerror(tr.err));
		ASSERT_GE(tr.sent.bytes, MIN_TRICKLE_CHUNKS * TRICKLE_CHUNK,
			  "long transfer: bytes sent");
		ASSERT_EQ(tr.recvd.bytes, tr.sent.bytes, "long transfer: bytes echoed");
		ASSERT_EQ(tr.recvd.crc, tr.sent.crc, "long transfer: crc");
		ASSERT_EQ(tr.recvd.mismatch_at, -1, "long transfer: first differing byte");
		ASSERT_TRUE(tr.eof, "long transfer: EOF");
	}

	/* Each re-issue was loaded and published by both agents. */
	ASSERT_GE(wait_count(env->agent_log, log_a, RELOADED, issued + 1), issued + 1,
		  "node A's certificate reloads");
	ASSERT_GE(wait_count(env->agent_b_log, log_b, RELOADED, issued + 1), issued + 1,
		  "node B's certificate reloads");
	/* One more under the last certificate, which the loop may have
	 * ended before using. */
	flows++;
	ASSERT_TRUE(flow_ok(env, FLOW_BYTES), "a connection after the last re-issue");
	sample_creds(env, &cert_na, &token_iat);
	ASSERT_GE(cert_na.nr, issued + 1, "node-cert expiries node A published");
	ASSERT_GE(token_iat.nr, MIN_TOKENS, "job tokens node A published");

	/* The flows and the long transfer, each audited once by B: never a
	 * refusal, and tokens under every certificate. */
	wait_audit_lines(env, audit_b, flows + 1, &sb);
	printf("%d re-issues; node A published %d certificates and %d job tokens; node B saw "
	       "%d kids and %d jtis\n",
	       issued, cert_na.nr, token_iat.nr, sb.kids.nr, sb.jtis.nr);
	ASSERT_EQ(sb.deny, 0, "node B's refusals");
	ASSERT_EQ(sb.allow, flows + 1, "node B's allowed flows");
	ASSERT_GE(sb.kids.nr, MIN_ISSUES + 1, "certificates (kid) node B saw");
	ASSERT_GE(sb.jtis.nr, MIN_TOKENS, "tokens (jti) node B saw");
	scan_audit(env, 'a', audit_a, &sa);
	ASSERT_EQ(sa.deny, 0, "node A's refusals");
	rollover_metrics(env, log_a, rot0, flows + 1);
}

static bool cert_expired(struct sl_env *env)
{
	struct mesh_cred c = {};

	return !mesh_cred(env, 'a', "node-cert", NULL, &c) && !strcmp(c.state, "expired");
}

static void expired_cert_refused(struct sl_env *env, struct server *echo)
{
	long long deadline;
	long log_a;

	/* Only A's certificate runs out; B's lasts. */
	if (!ASSERT_OK(mesh_issue(env, NODE_B, "1h"), "node B's certificate") ||
	    !ASSERT_OK(mesh_issue(env, NODE_A, CERT_LIFETIME), "node A's certificate"))
		return;
	deadline = now_ms() + (CERT_LIFETIME_S + 3) * 1000;
	while (!cert_expired(env) && now_ms() < deadline)
		sleep_ms(100);
	if (!ASSERT_TRUE(cert_expired(env), "node A published its certificate expired"))
		return;
	mesh_refused_on_a(env, echo, PORT_ECHO, "node-cert-expired");

	log_a = agent_log_size(env);
	if (!ASSERT_OK(mesh_issue(env, NODE_A, "1h"), "node A's certificate re-issued") ||
	    !ASSERT_TRUE(agent_log_wait(env, log_a, RELOADED, LOG_WAIT_MS), "node A reloaded it"))
		return;
	ASSERT_TRUE(flow_ok(env, FLOW_BYTES), "a flow after the re-issue");
}

void test_tunnel_rotation(struct sl_env *env)
{
	struct mesh_cfg cfg = {
	    .cert_lifetime = CERT_LIFETIME,
	    .token_lifetime = TOKEN_LIFETIME,
	    .clock_skew = SKEW,
	};
	struct server *echo;

	if (!ASSERT_OK(mesh_setup(env, &cfg), "two agents"))
		return;
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server"))
		return;
	if (test__start_subtest("rollover_under_load"))
		rollover_under_load(env);
	if (test__start_subtest("expired_cert_refused"))
		expired_cert_refused(env, echo);
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");
	ASSERT_TRUE(mesh_b_running(env), "node B's agent still runs");
}
