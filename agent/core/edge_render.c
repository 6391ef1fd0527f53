// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Policy edge: section -> nginx config text. Every value that comes from
 * the policy is checked against a small character set before it is
 * written, so no policy can add a directive, a variable or a comment to
 * the file: nginx quoting is not relied on to neutralise anything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_render.h"

#define DEFAULT_HTTP_PORT 80
/* nginx refuses a proxy_connect_timeout much above this. */
#define CONNECT_TIMEOUT_MAX_MS 75000

/* RFC 3986 pchar and '/', minus what nginx's parser treats specially
 * (';', '{', '}', '#', quotes, '$', '\\', whitespace). */
static const char path_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789-._~/!&()*+,=:@%";
static const char host_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789-.";

/* The first byte of s outside allowed, or NULL. */
static const char *bad_char(const char *s, const char *allowed)
{
	for (; *s; s++)
		if (!strchr(allowed, *s))
			return s;
	return NULL;
}

static int bad_value(const struct policy *pol, int line, const char *what, const char *c,
		     struct errmsg *err)
{
	if (*c > 0x20 && *c < 0x7f)
		return errmsg_set(err, -EINVAL, "%s:%d: edge %s: '%c' cannot go into the nginx "
				  "config (%s)", pol->path, line, what, *c,
				  "use plain path, host or file name characters");
	return errmsg_set(err, -EINVAL, "%s:%d: edge %s: byte 0x%02x cannot go into the nginx "
			  "config (use plain path, host or file name characters)", pol->path, line,
			  what, (unsigned char)*c);
}

static int check_host(const struct policy *pol, const char *host, struct errmsg *err)
{
	/* "*.example" as in policy.h; a leading '~' would make it a regex. */
	const char *h = strncmp(host, "*.", 2) ? host : host + 2;
	const char *c = bad_char(h, host_chars);

	if (!*h)
		return errmsg_set(err, -EINVAL, "%s:%d: edge hosts: empty host name", pol->path,
				  pol->edge.line);
	return c ? bad_value(pol, pol->edge.line, "hosts", c, err) : 0;
}

static int check_tls_path(const struct policy *pol, const char *what, const char *path,
			  struct errmsg *err)
{
	const unsigned char *c;

	if (!path)
		return errmsg_set(err, -EINVAL, "%s:%d: edge tls needs both cert and key",
				  pol->path, pol->edge.line);
	/* nginx would resolve a relative one against its own config
	 * directory, which the policy's author cannot know. */
	if (path[0] != '/')
		return errmsg_set(err, -EINVAL, "%s:%d: edge %s %s: not an absolute path (nginx "
				  "reads it; give the full path)", pol->path, pol->edge.line, what,
				  path);
	for (c = (const unsigned char *)path; *c; c++)
		if (*c < 0x20 || *c == 0x7f || *c == '"' || *c == '\\' || *c == '$' ||
		    *c == '\'')
			return bad_value(pol, pol->edge.line, what, (const char *)c, err);
	return 0;
}

static int check_route(const struct policy *pol, int i, struct errmsg *err)
{
	const struct policy_edge_route *r = &pol->edge.routes[i];
	const struct policy_service *s;
	const char *c;

	if (r->prefix[0] != '/')
		return errmsg_set(err, -EINVAL, "%s:%d: edge route prefix %s: must start with '/'",
				  pol->path, r->line, r->prefix);
	c = bad_char(r->prefix, path_chars);
	if (c)
		return bad_value(pol, r->line, "route prefix", c, err);
	for (int j = 0; j < i; j++)
		if (!strcmp(pol->edge.routes[j].prefix, r->prefix))
			return errmsg_set(err, -EINVAL, "%s:%d: edge route prefix %s: already "
					  "routed at line %d", pol->path, r->line, r->prefix,
					  pol->edge.routes[j].line);
	if (r->service < 0 || r->service >= pol->nr_services)
		return errmsg_set(err, -EINVAL, "%s:%d: edge route %s: no such service", pol->path,
				  r->line, r->prefix);
	s = &pol->services[r->service];
	if (!s->http)
		return errmsg_set(err, -EINVAL, "%s:%d: edge route %s: service %s is not "
				  "protocol: http (the edge routes HTTP services only)", pol->path,
				  r->line, r->prefix, s->name);
	if (!s->nr_addrs)
		return errmsg_set(err, -EINVAL, "%s:%d: edge route %s: service %s has no address",
				  pol->path, r->line, r->prefix, s->name);
	if (s->addrs[0].prefixlen != (s->addrs[0].family == AF_INET ? 32 : 128))
		return errmsg_set(err, -EINVAL, "%s:%d: edge route %s: the first address of "
				  "service %s is a network; list the host the edge should reach "
				  "first", pol->path, r->line, r->prefix, s->name);
	return 0;
}

static int check_edge(const struct policy *pol, struct errmsg *err)
{
	const struct policy_edge *e = &pol->edge;
	int ret;

	if (!e->nr_hosts || !e->nr_routes)
		return errmsg_set(err, -EINVAL, "%s:%d: edge needs hosts and routes", pol->path,
				  e->line);
	/* 0 means "no limit" to nginx. */
	if (!e->max_body || !e->timeout_ms || !e->port)
		return errmsg_set(err, -EINVAL, "%s:%d: edge max_body, timeout and port must "
				  "be above 0", pol->path, e->line);
	for (int i = 0; i < e->nr_hosts; i++) {
		ret = check_host(pol, e->hosts[i], err);
		if (ret)
			return ret;
	}
	if (e->tls_cert || e->tls_key) {
		ret = check_tls_path(pol, "tls cert", e->tls_cert, err);
		if (!ret)
			ret = check_tls_path(pol, "tls key", e->tls_key, err);
		if (ret)
			return ret;
	}
	for (int i = 0; i < e->nr_routes; i++) {
		ret = check_route(pol, i, err);
		if (ret)
			return ret;
	}
	return 0;
}

/* The policy path goes into a comment: one line, printable. */
static void put_comment_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s >= 0x20 && *s < 0x7f ? *s : '?', f);
}

static void put_upstream(FILE *f, const struct policy_service *s)
{
	const struct cidr *a = &s->addrs[0];
	char ip[INET6_ADDRSTRLEN];
	unsigned int port = s->nr_ports ? s->ports[0] : DEFAULT_HTTP_PORT;

	inet_ntop(a->family, a->addr, ip, sizeof(ip));
	fprintf(f, "upstream " EDGE_UPSTREAM_PREFIX "%s {\n", s->name);
	if (a->family == AF_INET6)
		fprintf(f, "    server [%s]:%u;\n", ip, port);
	else
		fprintf(f, "    server %s:%u;\n", ip, port);
	fprintf(f, "    keepalive 32;\n}\n\n");
}

/* One upstream per routed service, in the order routes first name them. */
static void put_upstreams(FILE *f, const struct policy *pol)
{
	const struct policy_edge *e = &pol->edge;

	for (int i = 0; i < e->nr_routes; i++) {
		bool seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = e->routes[j].service == e->routes[i].service;
		if (!seen)
			put_upstream(f, &pol->services[e->routes[i].service]);
	}
}

static void put_authz_upstream(FILE *f, const char *socket)
{
	fprintf(f,
		"# The agent's authorization endpoint (nginx's auth_request contract).\n"
		"upstream sluice_authz {\n"
		"    server unix:%s;\n"
		"    keepalive 32;\n"
		"}\n\n", socket);
}

static void put_listen(FILE *f, const struct policy_edge *e, const char *extra)
{
	fprintf(f, "    listen %u%s%s;\n", e->port, e->tls_cert ? " ssl" : "", extra);
	if (e->tls_cert)
		fprintf(f,
			"    ssl_certificate \"%s\";\n"
			"    ssl_certificate_key \"%s\";\n"
			"    ssl_protocols TLSv1.2 TLSv1.3;\n", e->tls_cert, e->tls_key);
}

/* Request headers are parsed before nginx picks a server by name, with
 * the settings of the port's default server: this one. Underscores stay
 * invalid (and so dropped), or a client's X_Sluice_Assertion would reach
 * upstreams that fold '_' and '-' together (CGI, WSGI, PHP) as the real
 * header. */
static void put_header_rules(FILE *f)
{
	fprintf(f,
		"    underscores_in_headers off;\n"
		"    ignore_invalid_headers on;\n"
		"    server_tokens off;\n");
}

static void put_default_server(FILE *f, const struct policy_edge *e)
{
	fprintf(f, "# Hosts the edge does not serve.\nserver {\n");
	put_listen(f, e, " default_server");
	put_header_rules(f);
	if (e->tls_cert)
		fprintf(f, "    ssl_reject_handshake on;\n");
	fprintf(f, "    return 404;\n}\n\n");
}

static void put_authz_location(FILE *f, uint32_t generation)
{
	fprintf(f,
		"    # The subrequest every route makes before its upstream sees a byte.\n"
		"    location = /_sluice/authz {\n"
		"        internal;\n"
		"        proxy_pass http://sluice_authz/v1/authz;\n"
		"        proxy_method GET;\n"
		"        proxy_http_version 1.1;\n"
		"        proxy_set_header Connection \"\";\n"
		"        proxy_pass_request_body off;\n"
		"        # The agent reads only what is set below: the client's other\n"
		"        # headers (cookies) stay out of it, and out of its buffers.\n"
		"        proxy_pass_request_headers off;\n"
		"        proxy_set_header Content-Length \"\";\n"
		"        proxy_set_header Authorization $http_authorization;\n"
		"        proxy_set_header X-Original-Method $request_method;\n"
		"        proxy_set_header X-Original-URI $request_uri;\n"
		"        proxy_set_header X-Original-Host $host;\n"
		"        proxy_set_header X-Original-Remote-Addr $remote_addr;\n"
		"        proxy_set_header X-Sluice-Service $sluice_service;\n"
		"        # The client's trace context: the agent's span joins it.\n"
		"        proxy_set_header Traceparent $http_traceparent;\n"
		"        proxy_set_header X-Sluice-Generation %u;\n"
		"        # The assertion carries a certificate chain: more than the\n"
		"        # default 4k of response headers.\n"
		"        proxy_buffer_size 16k;\n"
		"        proxy_buffers 4 16k;\n"
		"        # A slow or absent agent fails closed, and fast.\n"
		"        proxy_connect_timeout 1s;\n"
		"        proxy_send_timeout 2s;\n"
		"        proxy_read_timeout 2s;\n"
		"    }\n\n", generation);
}

/* auth_request sets the $sluice_* variables before these run, and passes
 * the agent's WWW-Authenticate on a 401 by itself. A 500 is what
 * auth_request makes of an agent that is down, slow or failing. */
static void put_error_locations(FILE *f)
{
	fprintf(f,
		"    location @sluice_401 {\n"
		"        default_type \"text/plain; charset=utf-8\";\n"
		"        return 401 \"$sluice_reason\\n\";\n"
		"    }\n\n"
		"    location @sluice_403 {\n"
		"        default_type \"text/plain; charset=utf-8\";\n"
		"        return 403 \"$sluice_reason\\n\";\n"
		"    }\n\n"
		"    location @sluice_503 {\n"
		"        default_type \"text/plain; charset=utf-8\";\n"
		"        add_header Retry-After 1 always;\n"
		"        return 503 \"edge: authorization unavailable\\n\";\n"
		"    }\n\n");
}

/* What the upstream gets: the verified caller, nothing a client wrote in
 * an identity header, and not the client's token. */
static void put_upstream_headers(FILE *f)
{
	fprintf(f,
		"        proxy_http_version 1.1;\n"
		"        proxy_set_header Connection \"\";\n"
		"        proxy_set_header Host $host;\n"
		"        proxy_set_header Authorization \"\";\n"
		"        proxy_set_header X-Sluice-Assertion $sluice_assertion;\n"
		"        proxy_set_header X-Sluice-Caller $sluice_caller;\n"
		"        proxy_set_header X-Sluice-Roles $sluice_roles;\n"
		"        proxy_set_header X-Sluice-Rule \"\";\n"
		"        proxy_set_header X-Sluice-Reason \"\";\n"
		"        proxy_set_header X-Sluice-Service \"\";\n"
		"        proxy_set_header X-Sluice-Generation \"\";\n"
		"        proxy_set_header X-Sluice-Identity \"\";\n"
		"        proxy_set_header X-Original-Method \"\";\n"
		"        proxy_set_header X-Original-URI \"\";\n"
		"        proxy_set_header X-Original-Host \"\";\n"
		"        proxy_set_header X-Original-Remote-Addr \"\";\n"
		"        proxy_set_header X-Real-IP $remote_addr;\n"
		"        proxy_set_header X-Forwarded-For $remote_addr;\n"
		"        proxy_set_header X-Forwarded-Host $host;\n"
		"        proxy_set_header X-Forwarded-Proto $scheme;\n");
}

static void put_route(FILE *f, const struct policy *pol, const struct policy_edge_route *r)
{
	const struct policy_edge *e = &pol->edge;
	const char *svc = pol->services[r->service].name;
	size_t n = strlen(r->prefix);
	unsigned int connect_ms = e->timeout_ms < CONNECT_TIMEOUT_MAX_MS ? e->timeout_ms
									 : CONNECT_TIMEOUT_MAX_MS;

	/* A prefix that does not end in '/' names one path: "/status" must
	 * not also route "/statusfoo". */
	fprintf(f, "    location %s %s {\n", r->prefix[n - 1] == '/' ? "^~" : "=", r->prefix);
	fprintf(f,
		"        set $sluice_service \"%s\";\n"
		"        auth_request /_sluice/authz;\n"
		"        auth_request_set $sluice_assertion $upstream_http_x_sluice_assertion;\n"
		"        auth_request_set $sluice_caller $upstream_http_x_sluice_caller;\n"
		"        auth_request_set $sluice_roles $upstream_http_x_sluice_roles;\n"
		"        auth_request_set $sluice_rule $upstream_http_x_sluice_rule;\n"
		"        auth_request_set $sluice_reason $upstream_http_x_sluice_reason;\n"
		"        error_page 401 = @sluice_401;\n"
		"        error_page 403 = @sluice_403;\n"
		"        error_page 500 = @sluice_503;\n"
		"        proxy_pass http://" EDGE_UPSTREAM_PREFIX "%s;\n", svc, svc);
	put_upstream_headers(f);
	fprintf(f,
		"        proxy_connect_timeout %ums;\n"
		"        proxy_send_timeout %ums;\n"
		"        proxy_read_timeout %ums;\n"
		"    }\n\n", connect_ms, e->timeout_ms, e->timeout_ms);
}

static bool has_root_route(const struct policy_edge *e)
{
	for (int i = 0; i < e->nr_routes; i++)
		if (!strcmp(e->routes[i].prefix, "/"))
			return true;
	return false;
}

static void put_server(FILE *f, const struct policy *pol, uint32_t generation)
{
	const struct policy_edge *e = &pol->edge;

	fprintf(f, "server {\n");
	put_listen(f, e, "");
	fprintf(f, "    server_name");
	for (int i = 0; i < e->nr_hosts; i++)
		fprintf(f, " %s", e->hosts[i]);
	fprintf(f, ";\n");
	put_header_rules(f);
	/* IdP tokens with many groups outgrow nginx's default 8k line. */
	fprintf(f,
		"    large_client_header_buffers 4 16k;\n"
		"    client_max_body_size %llu;\n\n", (unsigned long long)e->max_body);
	put_authz_location(f, generation);
	put_error_locations(f);
	for (int i = 0; i < e->nr_routes; i++)
		put_route(f, pol, &e->routes[i]);
	if (!has_root_route(e))
		fprintf(f,
			"    # No route: nothing behind the edge answers.\n"
			"    location / {\n"
			"        return 404;\n"
			"    }\n");
	fprintf(f, "}\n");
}

static const char *authz_socket(const struct config *cfg, char *buf, size_t len)
{
	if (cfg && cfg->edge.socket)
		return cfg->edge.socket;
	snprintf(buf, len, "%s/" EDGE_AUTHZ_SOCKET_NAME,
		 cfg && cfg->run_dir ? cfg->run_dir : EDGE_DEFAULT_RUN_DIR);
	return buf;
}

int edge_render(const struct policy *pol, const struct config *cfg, uint32_t generation,
		char **out, struct errmsg *err)
{
	char sockbuf[4096];
	const char *socket = authz_socket(cfg, sockbuf, sizeof(sockbuf));
	const char *c = bad_char(socket, path_chars);
	size_t len;
	FILE *f;
	int ret;

	if (!pol->edge.present)
		return errmsg_set(err, -ENOENT, "%s: no edge: section to render", pol->path);
	ret = check_edge(pol, err);
	if (ret)
		return ret;
	if (c)
		return errmsg_set(err, -EINVAL, "%s: edge socket %s: '%c' cannot go into the nginx "
				  "config (choose a plain path)", cfg && cfg->path ? cfg->path :
				  "config", socket, *c);
	f = open_memstream(out, &len);
	if (!f)
		return errmsg_set(err, -ENOMEM, "out of memory");
	fprintf(f, "# Generated by sluice from ");
	put_comment_text(f, pol->path);
	fprintf(f, ", policy generation %u.\n"
		"# Do not edit: the agent replaces it with every generation. Review a\n"
		"# change with `sluicectl edge render POLICY`.\n\n", generation);
	put_authz_upstream(f, socket);
	put_upstreams(f, pol);
	put_default_server(f, &pol->edge);
	put_server(f, pol, generation);
	if (fclose(f)) {
		free(*out);
		*out = NULL;
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}
