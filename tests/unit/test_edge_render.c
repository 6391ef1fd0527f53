// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's rendered nginx config: the security-relevant lines of a
 * two-route TLS policy, values the renderer refuses to carry, and, with
 * Debian's nginx, the whole cycle in a temporary directory: nginx -t
 * accepts the render inside an outer config, refuses an invalid one
 * (live.conf stays), switch and rollback move live.conf, old generations
 * are pruned, an unsafe render directory is refused, and a running nginx
 * with the rendered config against the stand-ins of edge_standin.h passes
 * 200 with the verified identity only, turns 401 (with WWW-Authenticate)
 * and 403 into the client's answer, and fails closed with 503.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edge_nginx.h"
#include "edge_render.h"
#include "edge_standin.h"
#include "log.h"
#include "sock_util.h"

#define NGINX "/usr/sbin/nginx"
#define POLICY_PATH "/etc/sluice/policy.yaml"
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQifQ.client-secret-token"

struct fx {
	char dir[64];
	char render[256], outer[256], sock[100], pid[256];
	char cert[256], key[256], missing[256];
	struct policy pol;
	struct policy_service svcs[3];
	struct cidr addrs[3];
	uint16_t ports[3];
	struct policy_edge_route routes[4];
	char *hosts[2];
	struct config cfg;
	uint16_t edge_port, up_port;
	pid_t nginx, authz, upstream;
};

static uint16_t free_port(void)
{
	struct sockaddr_storage ss;
	int fd = bind_loopback(AF_INET, &ss);
	uint16_t port = sockaddr_port(&ss);

	close(fd);
	return port;
}

static void host_addr(struct cidr *c, const char *ip)
{
	memset(c, 0, sizeof(*c));
	c->family = AF_INET;
	c->prefixlen = 32;
	assert_int_equal(inet_pton(AF_INET, ip, c->addr), 1);
}

/* What policy_load() would make of: services api and models (protocol:
 * http on the upstream stand-in's port) and warehouse (tcp); edge hosts
 * api.acme.example and *.edge.acme.example, routes /api/ -> api and
 * /models/ -> models. */
static void build_policy(struct fx *fx)
{
	static char *names[] = { "api", "models", "warehouse" };
	struct policy *pol = &fx->pol;

	for (int i = 0; i < 3; i++) {
		host_addr(&fx->addrs[i], "127.0.0.1");
		fx->ports[i] = i == 2 ? 5432 : fx->up_port;
		fx->svcs[i] = (struct policy_service){
			.name = names[i], .addrs = &fx->addrs[i], .nr_addrs = 1,
			.ports = &fx->ports[i], .nr_ports = 1, .proto = IPPROTO_TCP,
			.http = i < 2, .mesh = true, .line = 10 + i,
		};
	}
	fx->hosts[0] = "api.acme.example";
	fx->hosts[1] = "*.edge.acme.example";
	fx->routes[0] = (struct policy_edge_route){ .prefix = "/api/", .service = 0, .line = 31 };
	fx->routes[1] = (struct policy_edge_route){ .prefix = "/models/", .service = 1,
						    .line = 33 };
	*pol = (struct policy){ .path = POLICY_PATH, .services = fx->svcs, .nr_services = 3 };
	pol->edge = (struct policy_edge){
		.present = true, .hosts = fx->hosts, .nr_hosts = 2, .port = fx->edge_port,
		.max_body = 10 << 20, .timeout_ms = 30000, .routes = fx->routes, .nr_routes = 2,
		.line = 25,
	};
}

static void use_tls(struct fx *fx)
{
	fx->pol.edge.tls_cert = fx->cert;
	fx->pol.edge.tls_key = fx->key;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The operator's outer config, as deploy/nginx-edge.conf, scaled down to
 * a temporary prefix. */
static void write_outer(struct fx *fx, bool with_include)
{
	char text[8192];

	snprintf(text, sizeof(text),
		 "%s"
		 "daemon off;\n"
		 "pid %s;\n"
		 "error_log %s/error.log;\n"
		 "events { worker_connections 64; }\n"
		 "http {\n"
		 "    access_log off;\n"
		 "    client_body_temp_path %s/body;\n"
		 "    proxy_temp_path %s/proxy;\n"
		 "    fastcgi_temp_path %s/fastcgi;\n"
		 "    uwsgi_temp_path %s/uwsgi;\n"
		 "    scgi_temp_path %s/scgi;\n"
		 "    %s %s/live.conf;\n"
		 "}\n",
		 geteuid() ? "" : "user root;\n", fx->pid, fx->dir, fx->dir, fx->dir, fx->dir,
		 fx->dir, fx->dir, with_include ? "include" : "# include", fx->render);
	write_file(fx->outer, text);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char cmd[PATH_MAX * 3];

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/test_edge_render.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->render, sizeof(fx->render), "%s/render", fx->dir);
	snprintf(fx->outer, sizeof(fx->outer), "%s/nginx-edge.conf", fx->dir);
	snprintf(fx->sock, sizeof(fx->sock), "%s/authz.sock", fx->dir);
	snprintf(fx->pid, sizeof(fx->pid), "%s/nginx.pid", fx->dir);
	snprintf(fx->cert, sizeof(fx->cert), "%s/edge.crt", fx->dir);
	snprintf(fx->key, sizeof(fx->key), "%s/edge.key", fx->dir);
	snprintf(fx->missing, sizeof(fx->missing), "%s/missing.crt", fx->dir);
	fx->edge_port = free_port();
	fx->up_port = free_port();
	build_policy(fx);
	fx->cfg = (struct config){ .path = "sluice.yaml", .run_dir = fx->dir };
	fx->cfg.edge = (struct edge_cfg){
		.enabled = true, .socket = fx->sock, .render_dir = fx->render, .nginx = NGINX,
		.nginx_conf = fx->outer, .nginx_pid = fx->pid,
	};
	write_outer(fx, true);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-subj /CN=api.acme.example -days 1 -keyout %s -out %s >/dev/null 2>&1",
		 fx->key, fx->cert);
	assert_int_equal(system(cmd), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[PATH_MAX];

	if (fx->nginx > 0) {
		kill(fx->nginx, SIGTERM);
		waitpid(fx->nginx, NULL, 0);
	}
	standin_stop(fx->authz);
	standin_stop(fx->upstream);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

static char *render(struct fx *fx, uint32_t gen)
{
	struct errmsg err = {};
	char *text = NULL;
	int ret = edge_render(&fx->pol, &fx->cfg, gen, &text, &err);

	if (ret)
		fail_msg("edge_render: %s", err.msg);
	return text;
}

static void test_render_lines(void **state)
{
	struct fx *fx = *state;
	char line[PATH_MAX + 64];
	char *t;

	use_tls(fx);
	t = render(fx, 7);
	assert_non_null(strstr(t, "# Generated by sluice from " POLICY_PATH
				  ", policy generation 7.\n# Do not edit"));
	snprintf(line, sizeof(line), "    server unix:%s;\n    keepalive 32;", fx->sock);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "upstream sluice_svc_api {\n    server 127.0.0.1:%u;",
		 fx->up_port);
	assert_non_null(strstr(t, line));
	assert_non_null(strstr(t, "upstream sluice_svc_models {"));
	assert_null(strstr(t, "warehouse"));

	/* Every route asks the agent first, and goes to its own upstream. */
	assert_non_null(strstr(t, "    location ^~ /api/ {\n        set $sluice_service \"api\";\n"
				  "        auth_request /_sluice/authz;\n"));
	assert_non_null(strstr(t, "    location ^~ /models/ {\n        set $sluice_service "
				  "\"models\";\n        auth_request /_sluice/authz;\n"));
	assert_int_equal(count(t, "auth_request /_sluice/authz;"), 2);
	assert_non_null(strstr(t, "proxy_pass http://sluice_svc_api;"));
	assert_non_null(strstr(t, "proxy_pass http://sluice_svc_models;"));

	/* The upstream sees the verified identity and nothing a client
	 * wrote in its place, nor the client's token. */
	assert_int_equal(count(t, "proxy_set_header Authorization \"\";"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Sluice-Assertion $sluice_assertion;"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Sluice-Caller $sluice_caller;"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Sluice-Roles $sluice_roles;"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Sluice-Rule \"\";"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Sluice-Identity \"\";"), 2);
	assert_int_equal(count(t, "proxy_set_header X-Forwarded-For $remote_addr;"), 2);
	assert_null(strstr(t, "proxy_add_x_forwarded_for"));
	assert_int_equal(count(t, "underscores_in_headers off;"), 2);
	assert_null(strstr(t, "underscores_in_headers on"));

	/* The subrequest: the original request in X-Original-*, no body. */
	assert_non_null(strstr(t, "    location = /_sluice/authz {\n        internal;\n"
				  "        proxy_pass http://sluice_authz/v1/authz;\n"));
	assert_non_null(strstr(t, "proxy_pass_request_body off;"));
	assert_non_null(strstr(t, "proxy_pass_request_headers off;"));
	assert_non_null(strstr(t, "proxy_set_header Content-Length \"\";"));
	assert_non_null(strstr(t, "proxy_set_header Authorization $http_authorization;"));
	assert_non_null(strstr(t, "proxy_set_header X-Original-Method $request_method;"));
	assert_non_null(strstr(t, "proxy_set_header X-Original-URI $request_uri;"));
	assert_non_null(strstr(t, "proxy_set_header X-Original-Host $host;"));
	assert_non_null(strstr(t, "proxy_set_header X-Original-Remote-Addr $remote_addr;"));
	assert_non_null(strstr(t, "proxy_set_header X-Sluice-Service $sluice_service;"));
	assert_non_null(strstr(t, "proxy_set_header X-Sluice-Generation 7;"));
	assert_non_null(strstr(t, "proxy_connect_timeout 1s;"));
	assert_non_null(strstr(t, "proxy_read_timeout 2s;"));

	/* The agent's answers become the client's; a failing agent, 503. */
	assert_int_equal(count(t, "error_page 401 = @sluice_401;"), 2);
	assert_int_equal(count(t, "error_page 403 = @sluice_403;"), 2);
	assert_int_equal(count(t, "error_page 500 = @sluice_503;"), 2);
	assert_non_null(strstr(t, "return 401 \"$sluice_reason\\n\";"));
	assert_non_null(strstr(t, "return 403 \"$sluice_reason\\n\";"));
	assert_non_null(strstr(t, "return 503 \"edge: authorization unavailable\\n\";"));

	/* The server: names, TLS, limits; anything unrouted is a 404. */
	snprintf(line, sizeof(line), "server {\n    listen %u ssl;\n", fx->edge_port);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "    listen %u ssl default_server;\n", fx->edge_port);
	assert_non_null(strstr(t, line));
	assert_non_null(strstr(t, "ssl_reject_handshake on;"));
	assert_non_null(strstr(t, "    server_name api.acme.example *.edge.acme.example;\n"));
	snprintf(line, sizeof(line), "    ssl_certificate \"%s\";\n    ssl_certificate_key \"%s\";"
		 "\n    ssl_protocols TLSv1.2 TLSv1.3;\n", fx->cert, fx->key);
	assert_int_equal(count(t, line), 2);
	assert_non_null(strstr(t, "client_max_body_size 10485760;"));
	assert_int_equal(count(t, "proxy_read_timeout 30000ms;"), 2);
	assert_int_equal(count(t, "proxy_send_timeout 30000ms;"), 2);
	assert_non_null(strstr(t, "    location / {\n        return 404;\n    }\n"));
	free(t);
}

static void test_render_exact_and_root_routes(void **state)
{
	struct fx *fx = *state;
	char *t;

	fx->routes[2] = (struct policy_edge_route){ .prefix = "/status", .service = 0, .line = 35 };
	fx->routes[3] = (struct policy_edge_route){ .prefix = "/", .service = 1, .line = 37 };
	fx->pol.edge.nr_routes = 4;
	t = render(fx, 3);
	/* "/status" routes that one path, not "/statusx" or "/status/x". */
	assert_non_null(strstr(t, "    location = /status {\n"));
	assert_non_null(strstr(t, "    location ^~ / {\n"));
	/* The catch-all route replaces the 404 location (nginx refuses two). */
	assert_null(strstr(t, "    location / {"));
	assert_int_equal(count(t, "auth_request /_sluice/authz;"), 4);
	/* Two routes to one service, one upstream. */
	assert_int_equal(count(t, "upstream sluice_svc_api {"), 1);
	free(t);

	/* An IPv6 first address, no ports: port 80, in brackets. */
	fx->addrs[1] = (struct cidr){ .family = AF_INET6, .prefixlen = 128 };
	assert_int_equal(inet_pton(AF_INET6, "fd77::2", fx->addrs[1].addr), 1);
	fx->svcs[1].nr_ports = 0;
	t = render(fx, 3);
	assert_non_null(strstr(t, "upstream sluice_svc_models {\n    server [fd77::2]:80;\n"));
	free(t);
}

static void expect_refused(struct fx *fx, const char *what)
{
	struct errmsg err = {};
	char *t = NULL;

	assert_int_equal(edge_render(&fx->pol, &fx->cfg, 1, &t, &err), -EINVAL);
	assert_null(t);
	if (!strstr(err.msg, what))
		fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
}

static void test_render_refuses(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	char *t = NULL;

	/* A prefix that would close the location and add directives. */
	fx->routes[0].prefix = "/api/;} location / {";
	expect_refused(fx, POLICY_PATH ":31: edge route prefix: ';' cannot go into the nginx");
	fx->routes[0].prefix = "/api/$host/";
	expect_refused(fx, ":31: edge route prefix: '$'");
	fx->routes[0].prefix = "/api/\n";
	expect_refused(fx, ":31: edge route prefix: byte 0x0a");
	fx->routes[0].prefix = "/models/";
	expect_refused(fx, ":33: edge route prefix /models/: already routed at line 31");
	fx->routes[0].prefix = "/api/";

	fx->hosts[1] = "~^(?<x>.+)$";
	expect_refused(fx, POLICY_PATH ":25: edge hosts: '~'");
	fx->hosts[1] = "*.edge.acme.example";

	use_tls(fx);
	fx->pol.edge.tls_key = "edge.key";
	expect_refused(fx, ":25: edge tls key edge.key: not an absolute path");
	fx->pol.edge.tls_key = "/etc/tls/edge\".key";
	expect_refused(fx, ":25: edge tls key: '\"'");
	fx->pol.edge.tls_key = NULL;
	expect_refused(fx, ":25: edge tls needs both cert and key");
	use_tls(fx);

	fx->routes[1].service = 2;
	expect_refused(fx, ":33: edge route /models/: service warehouse is not protocol: http");
	fx->routes[1].service = 1;
	fx->addrs[1].prefixlen = 24;
	expect_refused(fx, ":33: edge route /models/: the first address of service models is a "
		       "network");
	fx->addrs[1].prefixlen = 32;

	fx->pol.edge.max_body = 0;
	expect_refused(fx, ":25: edge max_body, timeout and port must be above 0");
	fx->pol.edge.max_body = 1 << 20;

	fx->pol.edge.present = false;
	assert_int_equal(edge_render(&fx->pol, &fx->cfg, 1, &t, &err), -ENOENT);
	fx->pol.edge.present = true;

	/* Without an edge socket in the config: the run dir's default. */
	fx->cfg.edge.socket = NULL;
	fx->cfg.run_dir = "/run/sluice-test";
	t = render(fx, 1);
	assert_non_null(strstr(t, "server unix:/run/sluice-test/authz.sock;"));
	free(t);
	t = NULL;
	assert_int_equal(edge_render(&fx->pol, NULL, 1, &t, &err), 0);
	assert_non_null(strstr(t, "server unix:/run/sluice/authz.sock;"));
	free(t);
}

static bool have_nginx(void)
{
	return access(NGINX, X_OK) == 0;
}

static void live_target(struct fx *fx, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/live.conf", fx->render);
	n = readlink(path, buf, len - 1);
	buf[n < 0 ? 0 : n] = 0;
}

static bool gen_file(struct fx *fx, uint32_t gen, struct stat *st)
{
	char path[PATH_MAX];
	struct stat tmp;

	snprintf(path, sizeof(path), "%s/edge-%u.conf", fx->render, gen);
	return !lstat(path, st ? st : &tmp);
}

static void prepare_ok(struct fx *fx, uint32_t gen)
{
	struct errmsg err = {};

	if (edge_nginx_prepare(&fx->cfg, &fx->pol, gen, &err))
		fail_msg("edge_nginx_prepare(%u): %s", gen, err.msg);
}

static void switch_ok(struct fx *fx, uint32_t gen)
{
	struct errmsg err = {};

	if (edge_nginx_switch(&fx->cfg, gen, &err))
		fail_msg("edge_nginx_switch(%u): %s", gen, err.msg);
}

/* Only the rendered files and live.conf: no candidate or test copy. */
static void assert_no_leftovers(struct fx *fx)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep -v '^edge-[0-9]*\\.conf$' | "
		 "grep -v '^live\\.conf$')\" && test ! -e '%s/.nginx-edge.conf.sluice-test'",
		 fx->render, fx->dir);
	assert_int_equal(system(cmd), 0);
}

static void test_nginx_accepts_and_switches(void **state)
{
	struct fx *fx = *state;
	char target[PATH_MAX];
	struct stat st;

	if (!have_nginx())
		skip();
	use_tls(fx);
	prepare_ok(fx, 7);
	assert_true(gen_file(fx, 7, &st));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_true(S_ISREG(st.st_mode));
	/* Tested, not live: live.conf moves only with the generation. */
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "");
	assert_int_equal(stat(fx->render, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	switch_ok(fx, 7);
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "edge-7.conf");
	assert_no_leftovers(fx);
}

static void test_nginx_refusal_keeps_live(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	char target[PATH_MAX];

	if (!have_nginx())
		skip();
	use_tls(fx);
	prepare_ok(fx, 7);
	switch_ok(fx, 7);

	fx->pol.edge.tls_cert = fx->missing;
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 8, &err), -EINVAL);
	if (!strstr(err.msg, "edge: nginx -t refused generation 8: [emerg] cannot load certificate") ||
	    !strstr(err.msg, "missing.crt"))
		fail_msg("unexpected message: %s", err.msg);
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "edge-7.conf");
	assert_false(gen_file(fx, 8, NULL));
	assert_no_leftovers(fx);
}

static void test_switch_rollback_prune(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	char target[PATH_MAX];

	if (!have_nginx())
		skip();
	for (uint32_t gen = 1; gen <= 8; gen++) {
		prepare_ok(fx, gen);
		switch_ok(fx, gen);
	}
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "edge-8.conf");
	for (uint32_t gen = 1; gen <= 8; gen++)
		assert_int_equal(gen_file(fx, gen, NULL), gen > 8 - EDGE_NGINX_KEEP);

	/* Rollback: the previous generation's file, as it was tested. */
	switch_ok(fx, 7);
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "edge-7.conf");
	/* A pruned generation: refused, live.conf stays. */
	assert_int_equal(edge_nginx_switch(&fx->cfg, 2, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "edge-2.conf for generation 2"));
	live_target(fx, target, sizeof(target));
	assert_string_equal(target, "edge-7.conf");
	assert_no_leftovers(fx);
}

static void test_refuses_unsafe_setup(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};

	assert_int_equal(mkdir(fx->render, 0750), 0);
	assert_int_equal(chmod(fx->render, 0777), 0);
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 1, &err), -EPERM);
	if (!strstr(err.msg, "mode 0777 is writable by others: chmod 750"))
		fail_msg("unexpected message: %s", err.msg);
	assert_int_equal(edge_nginx_switch(&fx->cfg, 1, &err), -EPERM);
	assert_int_equal(chmod(fx->render, 0770), 0);
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 1, &err), -EPERM);
	assert_non_null(strstr(err.msg, "writable by its group"));
	assert_int_equal(chmod(fx->render, 0750), 0);

	/* An outer config that does not include live.conf. */
	write_outer(fx, false);
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 1, &err), -ENOENT);
	if (!strstr(err.msg, "does not include") || !strstr(err.msg, "/render/live.conf;`"))
		fail_msg("unexpected message: %s", err.msg);
	assert_false(gen_file(fx, 1, NULL));
	assert_no_leftovers(fx);
}

/* Running, not gone or a zombie nobody has reaped yet. */
static bool alive(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = 0;
	fclose(f);
	return state && state != 'Z';
}

/* An nginx that hangs is killed at the timeout, heartbeat_timeout less a
 * second, with whatever it started; one that cannot run is named. */
static void test_nginx_timeout_and_missing(void **state)
{
	struct fx *fx = *state;
	char script[PATH_MAX], pidfile[PATH_MAX], text[PATH_MAX * 2];
	struct errmsg err = {};
	uint64_t start;
	pid_t child = 0;
	FILE *f;

	snprintf(script, sizeof(script), "%s/hanging-nginx", fx->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/hanging.pid", fx->dir);
	snprintf(text, sizeof(text), "#!/bin/sh\nsleep 30 &\necho $! > %s\nwait\n", pidfile);
	write_file(script, text);
	assert_int_equal(chmod(script, 0755), 0);
	fx->cfg.edge.nginx = script;
	fx->cfg.heartbeat_timeout_ms = 1500;
	start = mono_ns();
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 4, &err), -ETIMEDOUT);
	assert_true(mono_ns() - start < 2000000000ull);
	if (!strstr(err.msg, "nginx -t on generation 4 did not finish in 500 ms and was killed"))
		fail_msg("unexpected message: %s", err.msg);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &child), 1);
	fclose(f);
	/* Killed with its group, not left sleeping. */
	for (int i = 0; i < 100 && alive(child); i++)
		usleep(10000);
	assert_false(alive(child));
	assert_false(gen_file(fx, 4, NULL));
	assert_no_leftovers(fx);

	fx->cfg.edge.nginx = "/nonexistent/nginx";
	assert_int_equal(edge_nginx_prepare(&fx->cfg, &fx->pol, 4, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot run /nonexistent/nginx -t: No such file"));
}

/* One request on its own connection; the status, and the response in
 * resp. */
static int request(struct fx *fx, const char *method, const char *path, const char *host,
		   const char *extra, char *resp, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(fx->edge_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[2048];
	size_t used = 0;
	int fd, status = -1;
	ssize_t n;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeouts(fd, 5);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n",
		 method, path, host, extra);
	standin_send(fd, req);
	while (used + 1 < len && (n = read(fd, resp + used, len - 1 - used)) > 0)
		used += (size_t)n;
	resp[used] = 0;
	close(fd);
	sscanf(resp, "HTTP/1.1 %d", &status);
	return status;
}

static const char *body(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	return b ? b + 4 : "";
}

static pid_t start_nginx(struct fx *fx)
{
	char *argv[] = { NGINX, "-c", fx->outer, NULL };
	char resp[256];
	pid_t pid;

	assert_int_equal(posix_spawn(&pid, NGINX, NULL, NULL, argv, NULL), 0);
	for (int i = 0; i < 100; i++) {
		if (request(fx, "GET", "/", "api.acme.example", "", resp, sizeof(resp)) > 0)
			return pid;
		usleep(50000);
	}
	fail_msg("nginx did not answer on port %u (see %s/error.log)", fx->edge_port, fx->dir);
	return -1;
}

static int unix_listener(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static void start_standins(struct fx *fx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(fx->up_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, ufd, afd;

	ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ufd >= 0);
	setsockopt(ufd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(ufd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ufd, 64), 0);
	afd = unix_listener(fx->sock);
	fx->upstream = standin_start(ufd, standin_upstream);
	fx->authz = standin_start(afd, standin_authz);
	close(ufd);
	close(afd);
}

static void test_end_to_end(void **state)
{
	struct fx *fx = *state;
	char resp[STANDIN_HEAD_MAX + 1024], caller[512];
	int status = 0;

	if (!have_nginx())
		skip();
	start_standins(fx);
	prepare_ok(fx, 7);
	switch_ok(fx, 7);
	fx->nginx = start_nginx(fx);

	/* Allowed: the service sees the assertion the agent made, not the
	 * client's copies of identity headers, nor its token. */
	assert_int_equal(request(fx, "GET", "/api/jobs?x=1", "api.acme.example",
				 "Authorization: Bearer " TOKEN "\r\n"
				 "X-Sluice-Assertion: spoofed\r\n"
				 "x-sluice-caller: spoofed\r\n"
				 "X-Sluice-Roles: admin\r\n"
				 "X_Sluice_Assertion: spoofed\r\n"
				 "X-Forwarded-For: 10.9.9.9\r\n"
				 "X-Original-URI: /spoofed\r\n", resp, sizeof(resp)), 200);
	assert_non_null(strstr(body(resp), "GET /api/jobs?x=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(body(resp), "X-Sluice-Assertion: verified.assertion.sig\r\n"));
	snprintf(caller, sizeof(caller), "X-Sluice-Caller: svc=api gen=7 method=GET "
		 "uri=/api/jobs?x=1 host=api.acme.example\r\n");
	assert_non_null(strstr(body(resp), caller));
	assert_non_null(strstr(body(resp), "X-Sluice-Roles: etl\r\n"));
	assert_non_null(strstr(body(resp), "X-Forwarded-For: 127.0.0.1\r\n"));
	assert_null(strstr(body(resp), "spoofed"));
	assert_null(strstr(body(resp), "admin"));
	assert_null(strstr(body(resp), "10.9.9.9"));
	assert_null(strstr(body(resp), "client-secret-token"));
	assert_null(strcasestr(body(resp), "Authorization"));
	assert_null(strstr(body(resp), "X-Sluice-Rule"));

	assert_int_equal(request(fx, "GET", "/models/m1", "x.edge.acme.example", "", resp,
				 sizeof(resp)), 200);
	assert_non_null(strstr(body(resp), "svc=models gen=7"));

	/* 401 with the agent's WWW-Authenticate and reason. */
	status = request(fx, "GET", "/api/noauth", "api.acme.example", "", resp, sizeof(resp));
	assert_int_equal(status, 401);
	assert_non_null(strstr(resp, "\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n"));
	assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	assert_string_equal(body(resp), "invalid_token: signature does not verify\n");

	status = request(fx, "DELETE", "/api/deny", "api.acme.example", "", resp, sizeof(resp));
	assert_int_equal(status, 403);
	assert_string_equal(body(resp), "denied by rule no-writes\n");

	/* The agent failing: closed. */
	assert_int_equal(request(fx, "GET", "/api/boom", "api.acme.example", "", resp,
				 sizeof(resp)), 503);
	assert_string_equal(body(resp), "edge: authorization unavailable\n");

	/* Unrouted paths and hosts. */
	assert_int_equal(request(fx, "GET", "/other", "api.acme.example", "", resp,
				 sizeof(resp)), 404);
	assert_int_equal(request(fx, "GET", "/api/jobs", "evil.example", "", resp,
				 sizeof(resp)), 404);
	assert_int_equal(request(fx, "GET", "/_sluice/authz", "api.acme.example", "", resp,
				 sizeof(resp)), 404);

	/* A new generation with one more route: switched, nginx reloaded by
	 * its pid file. */
	fx->routes[2] = (struct policy_edge_route){ .prefix = "/v2/", .service = 0, .line = 35 };
	fx->pol.edge.nr_routes = 3;
	prepare_ok(fx, 8);
	switch_ok(fx, 8);
	for (int i = 0; i < 100 && status != 200; i++) {
		usleep(50000);
		status = request(fx, "GET", "/v2/jobs", "api.acme.example", "", resp,
				 sizeof(resp));
	}
	assert_int_equal(status, 200);
	assert_non_null(strstr(body(resp), "svc=api gen=8"));

	/* Rolled back: /v2/ is gone again. */
	switch_ok(fx, 7);
	for (int i = 0; i < 100 && status != 404; i++) {
		usleep(50000);
		status = request(fx, "GET", "/v2/jobs", "api.acme.example", "", resp,
				 sizeof(resp));
	}
	assert_int_equal(status, 404);

	/* The agent down: 503, no upstream reached. */
	standin_stop(fx->authz);
	fx->authz = 0;
	assert_int_equal(request(fx, "GET", "/api/jobs", "api.acme.example",
				 "Authorization: Bearer " TOKEN "\r\n", resp, sizeof(resp)), 503);
	assert_string_equal(body(resp), "edge: authorization unavailable\n");
}

/* The outer config the repository ships includes the default render_dir's
 * live.conf where edge_nginx_prepare() looks for it. */
static void test_shipped_outer_config(void **state)
{
	FILE *f = fopen("deploy/nginx-edge.conf", "r");
	char text[8192];
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	assert_non_null(strstr(text, "\nhttp {\n"));
	assert_non_null(strstr(text, "\n    include /etc/sluice/edge/" EDGE_NGINX_LIVE ";\n}\n"));
	assert_non_null(strstr(text, "\npid /run/nginx-sluice-edge.pid;\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_render_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_exact_and_root_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nginx_accepts_and_switches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nginx_refusal_keeps_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_rollback_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_unsafe_setup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nginx_timeout_and_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
		cmocka_unit_test(test_shipped_outer_config),
	};

	/* The warnings of a switch without a running nginx are expected. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
