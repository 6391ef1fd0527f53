/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's config file (/etc/sluice/sluice.yaml by default):
 *
 *   node: node-a                          # required, [a-z0-9.-]{1,63},
 *                                         # not "." or ".." (peers' too)
 *   trust_domain: acme.example            # required, DNS name
 *   cgroup_root: sluice/node-a            # required; relative to the cgroup2
 *                                         # mount, or absolute under it
 *   agent_cgroup: sluiced                 # optional, relative to cgroup_root;
 *                                         # the agent moves itself there
 *   listen:
 *     outbound: 127.0.0.1:15001           # default 127.0.0.1:15001
 *     outbound6: "[::1]:15001"            # default [::1]:<outbound port>;
 *                                         # must use the same port
 *     tunnel: 0.0.0.0:15008               # inbound mTLS tunnel, default
 *                                         # 0.0.0.0:15008; only with identity
 *     http: 127.0.0.1:15020               # the agent's local HTTP listener
 *                                         # (docs/http.md): /metrics, and with
 *                                         # identity /v1/ca.pem, /v1/jwks.json;
 *                                         # default shown, or off
 *     http_routable: false                # an http that is not loopback is
 *                                         # an error unless true
 *   identity:                             # optional; without it flows to
 *                                         # peers' CIDRs go plain TCP
 *     ca: pki/ca.crt                      # required; paths relative to the
 *     cert: pki/node.crt                  # config file's directory
 *     key: pki/node.key                   # mode 0600 or stricter
 *     token_lifetime: 300s                # embedded tokens, default 300s
 *     clock_skew: 30s                     # token checks, default 30s,
 *                                         # whole seconds, 1s to 5m
 *     resumption: true                    # TLS session resumption between
 *                                         # agents, default true
 *     oidc:                               # optional: tokens from an IdP
 *       issuer: https://idp.acme.example  # required
 *       audience: spiffe://acme.example   # default spiffe://<trust_domain>
 *       ca_file: pki/idp-ca.crt           # optional: IdP trust anchors
 *       bind_cert: true                   # default true: present the node
 *                                         # certificate (RFC 8705 cnf); false:
 *                                         # tokens replay from other nodes
 *                                         # (docs/tunnel.md), warned at start
 *   audit_log: /run/sluice/audit.jsonl    # default <run_dir>/audit.jsonl
 *   audit:
 *     http_allows: false                  # an audit line for every allowed
 *                                         # request to a protocol: http
 *                                         # service, not only the denied
 *                                         # ones; default false
 *   http:                                 # protocol: http services (docs/http.md)
 *     max_request_line: 8k                # default 8k, as nginx's
 *                                         # large_client_header_buffers; 414
 *     max_header_size: 32k                # the whole head, default 32k (nginx:
 *                                         # 4 x 8k); 431; at most 64k
 *     max_headers: 100                    # header fields, default 100, as
 *                                         # Apache's LimitRequestFields; 431
 *     edge_workloads:                     # whose requests may carry a caller
 *       - spiffe://acme.example/service/edge  # assertion, decided as its caller;
 *                                         # patterns as peers' workloads;
 *                                         # default none
 *   otlp:                                 # optional: spans to a collector
 *     endpoint: http://127.0.0.1:4318     # required; OTLP/HTTP JSON is
 *                                         # POSTed to <endpoint>/v1/traces
 *     ca_file: pki/collector-ca.crt       # optional: https trust anchors
 *     timeout: 10s                        # one export, default 10s
 *     queue: 2048                         # spans waiting, default 2048;
 *                                         # more are dropped and counted
 *     batch: 512                          # spans per export, default 512
 *     interval: 1s                        # export at least this often,
 *                                         # default 1s
 *   tunnel:                               # tunnel handshakes in flight
 *     max_handshakes: 1024                # each way (accepted, not yet
 *                                         # pumping; to peers); default an
 *                                         # eighth of the fd limit, 16-1024
 *     max_handshakes_per_address: 256     # from one source, to one peer;
 *                                         # default a quarter of the above
 *                                         # At a cap the oldest is dropped.
 *     handshake_timeout: 10s              # TCP connect to VERDICT, each
 *                                         # way; default 10s, 100ms to 5m
 *   peers:                                # other nodes' agents
 *     - node: node-b
 *       tunnel: 10.99.0.2:15008
 *       cidrs: [10.99.0.2/32, "fd99::2/128"]  # destinations on that node
 *       workloads:                        # IDs node-b may vouch for, inbound;
 *         - spiffe://acme.example/job/etl-*    # default none. An ID of this
 *         - spiffe://acme.example/notebook/77  # trust domain; a '*' ending
 *                                         # the name matches any rest of it
 *                                         # (a name of "*": the whole kind)
 *   edge:                                 # optional: the authorization
 *                                         # endpoint nginx asks; needs
 *                                         # identity.oidc
 *     socket: /run/sluice/authz.sock      # default <run_dir>/authz.sock,
 *     socket_group: www-data              # mode 0660; group (name or gid)
 *                                         # of nginx's workers, default 0
 *     listen: 127.0.0.1:15010             # optional HTTP listener: authz,
 *                                         # /v1/ca.pem and /v1/jwks.json
 *     listen_routable: false              # a listen that is not loopback
 *                                         # is an error unless true
 *     audience: https://api.acme.example  # edge tokens' aud, default
 *                                         # identity.oidc.audience
 *     cache:                              # verified tokens, by SHA-256
 *       max: 10000                        # entries, default 10000; 0: off
 *       ttl: 60s                          # default 60s, never past exp
 *     assertion_lifetime: 60s             # the caller assertion, 1s-5m
 *     introspection:                      # optional: opaque tokens,
 *       client_id: sluice-edge            # RFC 7662, with
 *       secret_file: secrets/edge         # client_secret_basic
 *     render_dir: /etc/sluice/edge        # rendered nginx configs, one per
 *                                         # generation; default shown
 *     nginx: /usr/sbin/nginx              # runs nginx -t; default shown
 *     nginx_conf: /etc/nginx/sluice-edge.conf  # outer config that
 *                                         # includes the rendered one
 *     nginx_pid: /run/nginx-sluice-edge.pid    # gets SIGHUP when a
 *                                         # generation goes live; optional
 *   control:                              # the control socket (docs/control.md)
 *     socket: /run/sluice/ctl/control.sock  # default <run_dir>/ctl/control.sock;
 *                                         # mode 0660, its directory 0750, both
 *                                         # of read_group (else root's group)
 *     read_group: sluice-read             # may read (status, history), name
 *                                         # or gid; default none: root only
 *     admin_group: sluice-admin           # may also change (apply, rollback);
 *                                         # default none: root only. With both
 *                                         # set, admins reach the socket as
 *                                         # members of read_group
 *     history: 10                         # policy generations kept on disk
 *                                         # under <run_dir>/policies, 2-1000
 *   bpf_pin_path: /sys/fs/bpf/sluice      # default
 *   run_dir: /run/sluice                  # default
 *   policy: /etc/sluice/policy.yaml       # required; relative paths are
 *                                         # relative to the config file
 *   failure_mode: closed                  # closed | open, default closed
 *   heartbeat_timeout: 3s                 # default 3s (ms, s, m suffixes)
 *   idle_timeout: off                     # default off: an idle connection
 *                                         # is never reset; or a duration
 *   keepalive:                            # TCP keepalive on the app,
 *     idle: 60s                           # upstream and tunnel sockets, so
 *     interval: 10s                       # a dead peer is found within
 *     count: 6                            # idle + interval * count (2 min);
 *                                         # defaults as shown, whole seconds;
 *                                         # `keepalive: off` turns it off
 *   log_level: info                       # error | warn | info | debug
 *   workloads:
 *     - cgroup: job-1234                  # relative to cgroup_root
 *       id: spiffe://acme.example/job/1234
 *       roles: [etl]                      # optional
 *       inbound: mesh-only                # open (default) | mesh-only:
 *                                         # only the agent may connect in
 *       oidc:                             # with identity.oidc, required
 *         client_id: job-1234             # default: the SPIFFE ID
 *         secret_file: secrets/job-1234   # client_secret_basic, or
 *         key_file: keys/job-1234.pem     # private_key_jwt (exactly one)
 *
 * A workload's kind is the first path segment of its SPIFFE ID (job,
 * notebook, cluster, service); the ID's trust domain must be the config's.
 * The file itself is bounded as yamlx.h says (1 MiB, 64 levels of nesting,
 * ...), like the policy.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "keepalive.h"
#include "errmsg.h"
#include "spiffe.h"

#define CONFIG_DEFAULT_PATH "/etc/sluice/sluice.yaml"
#define CONFIG_MAX_ROLES 16
#define CONFIG_NAME_MAX SPIFFE_ID_MAX
#define CONFIG_MAX_PEERS 256
#define CONFIG_MAX_CIDRS 64		/* per peer */

struct workload_cfg {
	char *cgroup;			/* as written, relative to cgroup_root */
	char *id;			/* spiffe://td/kind/name */
	enum workload_kind kind;
	char *roles[CONFIG_MAX_ROLES];
	int nr_roles;
	int line;			/* line of the list item, for messages */
	int roles_line;
	bool mesh_only;			/* inbound: mesh-only */
	char *oidc_client_id;		/* NULL without identity.oidc */
	char *oidc_secret_file;		/* resolved; exactly one of these two */
	char *oidc_key_file;
};

struct peer_cfg {
	char *node;
	struct sockaddr_storage tunnel;
	struct cidr *cidrs;
	int nr_cidrs;
	char **workloads;		/* ID patterns; see config_peer_vouches() */
	int nr_workloads;
	int line;
};

/* tunnel: caps on handshakes in flight (proxy_set_handshake_limit). */
struct handshake_caps {
	unsigned int max;		/* each way; 0 until config_handshake_defaults() */
	unsigned int per_address;	/* at most max */
	unsigned int timeout_ms;	/* 0 until config_handshake_defaults() */
};

struct identity_cfg {
	bool enabled;			/* the identity: section is present */
	char *ca, *cert, *key;		/* resolved against the config's dir */
	unsigned int token_lifetime_s;
	unsigned int clock_skew_s;
	bool resumption;
	bool oidc;			/* identity.oidc is present */
	char *oidc_issuer;
	char *oidc_audience;		/* default spiffe://<trust_domain> */
	char *oidc_ca_file;		/* NULL: system store */
	bool oidc_bind_cert;
};

/* otlp: (see the top). endpoint NULL: no tracing. */
struct otlp_cfg {
	char *endpoint;
	char *traces_url;		/* endpoint + "/v1/traces" */
	char *ca_file;
	unsigned int timeout_ms;
	unsigned int queue;
	unsigned int batch;
	unsigned int interval_ms;
};

/* http: (see the top). */
struct http_cfg {
	unsigned int max_request_line;
	unsigned int max_header_size;
	unsigned int max_headers;
	char **edge_workloads;		/* ID patterns; see config_edge_workload() */
	int nr_edge_workloads;
};

/* edge: (see the top). Paths resolved against the config's directory. */
struct edge_cfg {
	bool enabled;			/* the edge: section is present */
	char *socket;
	unsigned int socket_gid;
	bool has_listen;
	struct sockaddr_storage listen;
	bool listen_routable;
	char *audience;
	unsigned int cache_max;
	unsigned int cache_ttl_s;
	unsigned int assertion_lifetime_s;
	char *introspection_client_id;	/* NULL: opaque tokens are refused */
	char *introspection_secret_file;
	char *render_dir;
	char *nginx;
	char *nginx_conf;
	char *nginx_pid;		/* NULL: nginx is not signalled */
};

/* control: (see the top). */
struct control_cfg {
	char *socket;
	bool has_read_group, has_admin_group;
	unsigned int read_gid, admin_gid;
	unsigned int history;
};

struct config {
	char *path;			/* the file it was read from */
	char *node;
	char *trust_domain;
	char *cgroup_root;		/* as written */
	char *agent_cgroup;		/* NULL: stay where started */
	struct sockaddr_in outbound4;
	struct sockaddr_in6 outbound6;
	struct sockaddr_storage tunnel;	/* inbound tunnel listener */
	bool has_http;			/* listen.http: not off */
	struct sockaddr_storage http;	/* the agent's local HTTP listener */
	bool http_routable;
	char *pin_path;
	char *run_dir;
	char *policy_path;		/* resolved against the config's dir */
	bool fail_open;
	unsigned int heartbeat_timeout_ms;
	unsigned int idle_timeout_ms;	/* 0: never */
	struct keepalive_cfg keepalive;
	int log_level;			/* enum log_level */
	struct workload_cfg *workloads;
	int nr_workloads;
	struct identity_cfg identity;
	char *audit_log;
	bool audit_http_allows;		/* audit.http_allows */
	struct http_cfg http_svc;	/* http: */
	struct otlp_cfg otlp;
	struct handshake_caps handshakes;
	struct edge_cfg edge;
	struct control_cfg control;
	struct peer_cfg *peers;
	int nr_peers;
};

/* Fills the handshake caps a file left out (0) from the process's fd limit
 * nofile: an eighth of it each way (at most 1024, at least 16), so that
 * both ways at their caps (an fd inbound, two outbound) hold under half of
 * it, and a quarter of that per address; and the timeout, 10 s. */
void config_handshake_defaults(struct handshake_caps *hc, unsigned long nofile);

/* The peer whose cidrs hold addr (network order, family AF_INET/AF_INET6),
 * longest prefix first; NULL when it is on no peer (local or off-mesh). */
const struct peer_cfg *config_peer_for(const struct config *cfg, int family,
				       const uint32_t *addr);
/* The peer named node, or NULL. */
const struct peer_cfg *config_peer_by_node(const struct config *cfg, const char *node);
/* Whether peer may vouch for the workload id: one of its workloads
 * patterns is id, or ends in '*' and id starts with the rest of it and goes
 * on with at least one character and no '/'. A peer without patterns
 * vouches for nobody. */
bool config_peer_vouches(const struct peer_cfg *peer, const char *id);
/* Whether id matches http.edge_workloads, as config_peer_vouches(). */
bool config_edge_workload(const struct config *cfg, const char *id);
/* The workload with SPIFFE ID id, or NULL. */
const struct workload_cfg *config_workload_by_id(const struct config *cfg, const char *id);

/* Reads and validates path. On error returns a negative errno and leaves
 * `file:line: reason` in err; cfg is then empty (nothing to free). */
int config_load(const char *path, struct config *cfg, struct errmsg *err);
void config_free(struct config *cfg);

/* Parses "250ms", "3s", "5m", "1h"; a bare number is seconds. */
int parse_duration_ms(const char *s, unsigned int *out);

struct yamlx;
struct yamlx_val;
/* parse_duration_ms() of a YAML scalar, for the config and the policy:
 * errors name the key and line. */
int parse_duration(const struct yamlx *y, const struct yamlx_val *v, unsigned int *out,
		   struct errmsg *err);

#endif
