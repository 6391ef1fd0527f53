/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Nginx edge's world for test_edge.c (issue 12), on top of mesh.h:
 *
 *   node A: Debian's nginx, master and workers in the enrolled workload
 *     cgroup "edge" (ID_EDGE), from the outer config <tmp>/edge-nginx.conf
 *     that includes <tmp>/edge-render/live.conf, the file node A's agent
 *     renders from its policy's edge: section; pid <tmp>/edge-nginx.pid,
 *     errors <tmp>/edge-nginx-error.log. Its workers run as root: the
 *     agent's socket is root's 0660 and the temp dir is 0700.
 *   node B: the internal API, a second nginx on <ip4_b>:EDGE_API_PORT that
 *     answers each request with the identity headers it got (one
 *     "name=value" line each), errors <tmp>/edge-api-error.log.
 *   clients: curl in node A, outside every workload, its headers from a
 *     0600 file (a token never reaches a command line or the output).
 *
 * Teardown kills what the test did not stop (env_track_child).
 */
#ifndef SLUICE_INTEG_EDGE_ENV_H
#define SLUICE_INTEG_EDGE_ENV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_proc.h"

struct sl_env;

#define EDGE_CGROUP "edge"
#define ID_EDGE "spiffe://" TRUST_DOMAIN "/service/edge"
#define EDGE_SVC "api"
#define EDGE_SVC_ID "spiffe://" TRUST_DOMAIN "/service/" EDGE_SVC
#define EDGE_HOST "edge.acme.example"
/* The edge's HTTP port in node A, the API's on node B, and the agent's
 * loopback listener (authz, /v1/ca.pem, /v1/jwks.json) in node A. */
#define EDGE_PORT 8080
#define EDGE_API_PORT 7300
#define EDGE_AGENT_LISTEN_PORT 15010
#define EDGE_AGENT_LISTEN "127.0.0.1:15010"
/* Node A's local HTTP listener (/v1/ca.pem, /v1/jwks.json, never authz):
 * listen.http's default, on since node A has identity. */
#define EDGE_AGENT_HTTP_PORT 15020
#define EDGE_AGENT_HTTP "127.0.0.1:15020"
#define EDGE_RENDER_DIR "edge-render"
#define EDGE_LIVE_CONF EDGE_RENDER_DIR "/live.conf"
#define EDGE_NGINX_CONF "edge-nginx.conf"
#define EDGE_NGINX_PID "edge-nginx.pid"
#define EDGE_WORKERS 2

struct edge_nginx {
	pid_t pid; /* the master */
	char conf[PATH_MAX];
	char pidfile[PATH_MAX];
	char error_log[PATH_MAX];
};

/* Creates the render dir (root's, 0750) and writes the outer config. */
int edge_prepare(struct sl_env *env, struct edge_nginx *n);

/* The edge: section of node A's config (top-level YAML): socket in A's run
 * dir, the loopback listener, render_dir, nginx_conf and nginx_pid as
 * above, then extra (lines at two spaces' indent, e.g. "  cache:...");
 * extra NULL: none. */
void edge_config_yaml(const struct sl_env *env, const char *extra, char *buf, size_t len);

/* Waits for the agent's live.conf, then starts nginx in node A inside the
 * edge cgroup and waits for its pid file. */
int edge_nginx_start(struct sl_env *env, struct edge_nginx *n);
void edge_nginx_stop(struct sl_env *env, struct edge_nginx *n);
/* The number of nginx's workers (children of the master) in the edge
 * cgroup, -1 when the master is not in it. */
int edge_nginx_workers_in_cgroup(struct sl_env *env, const struct edge_nginx *n);

/* Starts the API in node B; returns its pid or -1. */
pid_t edge_api_start(struct sl_env *env);

struct edge_http_req {
	const char *method;  /* NULL: GET */
	const char *url;     /* NULL: http://127.0.0.1:EDGE_PORT<path> */
	const char *path;    /* sent as is (curl --path-as-is) */
	const char *host;    /* the Host header; NULL: EDGE_HOST */
	const char *token;   /* Authorization: Bearer <token>; NULL: none */
	const char *headers; /* more header lines, each ending in "\n" */
	const char *body_file; /* the request's body; NULL: none */
};

struct edge_http_resp {
	long status;
	char *head; /* the status line and headers */
	char *body;
};

/* One request by curl in node A. 0 with resp filled (free it), or a
 * negative errno when curl failed (its error is printed; the request's
 * headers are not). */
int edge_http(struct sl_env *env, const struct edge_http_req *req, struct edge_http_resp *resp);
void edge_http_resp_free(struct edge_http_resp *resp);
/* The value of header name in resp (case-insensitive), copied into buf;
 * false when absent. */
bool edge_http_header(const struct edge_http_resp *resp, const char *name, char *buf, size_t len);
/* The value of "name=" in the API's answer (one line), into buf; false
 * when the line is missing. */
bool edge_api_field(const char *body, const char *name, char *buf, size_t len);

#endif
