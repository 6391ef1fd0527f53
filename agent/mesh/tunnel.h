/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The identity side of the tunnel (docs/tunnel.md): the node's credentials
 * and TLS contexts, the workloads' tokens, and the proxy callbacks that
 * route outbound flows to peer agents and decide on inbound ones.
 *
 * Outbound, for a destination inside a peer's CIDRs: a token for the
 * source workload (minted with the node key, or the IdP's cached one),
 * an OPEN frame, and a TLS client resuming the peer's last session; the
 * peer's certificate must carry spiffe://TD/node/<that peer>.
 *
 * Inbound, on an OPEN: the peer's certificate verified again (resumption
 * skips it; pki_verify_peer() remembers a certificate for a few seconds,
 * never past its notAfter), the token verified (its key decoded once per
 * peer certificate) and bound to that certificate, its subject
 * equal to the frame's source, the destination local to this node, then
 * the policy. Every decision is one audit line; allowed flows are written
 * at close, with bytes and duration, and with why in their status when
 * their bytes never got to flow (proxy_ops.setup_failed). Lines that
 * cannot be written are counted, said in the log at most every 10 s, and
 * published in credentials.json.
 *
 * Rotation, on every tunnel_tick (once a second): node certificate and key
 * reloaded when their files change (new contexts for new tunnels; open
 * tunnels keep theirs; cached sessions and tokens bound to the old
 * certificate, and the peers' keys and verdicts trusted through the old CA,
 * are dropped), embedded tokens re-minted at two thirds of
 * their life, the IdP's JWKS re-parsed when it changed, and
 * <run_dir>/credentials.json rewritten when any of it changed.
 */
#ifndef SLUICE_TUNNEL_H
#define SLUICE_TUNNEL_H

#include <stdint.h>
#include <openssl/evp.h>

#include "config.h"
#include "credfile.h"
#include "errmsg.h"
#include "pki.h"
#include "policy.h"
#include "proxy.h"
#include "rulecount.h"
#include "workloads.h"

struct tunnel;
struct audit;
struct oidc;

/*
 * TLS handshakes with one peer: outbound, the peer route chose; inbound,
 * the configured peer named in the verified certificate, or, for a
 * handshake that did not complete, the configured peer whose tunnel
 * address is the source's host. Anyone else is TUNNEL_HS_UNKNOWN, so
 * there are at most as many as peers ever configured, plus one.
 */
#define TUNNEL_HS_UNKNOWN "unknown"
struct tunnel_hs_peer {
	char peer[CONFIG_NAME_MAX];
	/* [outbound 0, inbound 1][result]; PROXY_HS_OK is in buckets. */
	uint64_t ended[2][PROXY_HS_NR];
	/* Completed ones: [direction][full 0, resumed 1], log2 buckets of
	 * their duration (bucket i: [2^i, 2^(i+1)) us), and its sum. */
	__u64 buckets[2][2][SLUICE_LAT_BUCKETS];
	uint64_t sum_us[2][2];
};

/* Credentials replaced by new ones (rotations) and renewals that failed,
 * by enum cred_kind (credfile.h): node-cert (reloaded from its files),
 * token (re-minted, or fetched again from the IdP), jwks (the IdP's key
 * set changed). */
#define TUNNEL_CRED_KINDS (CRED_JWKS + 1)

struct tunnel_stats {
	/* Decisions on tunnel flows, one per flow as its audit line:
	 * [outbound 0, inbound 1][deny 0, allow 1][session: enum
	 * audit_resumed, unknown when no handshake completed]. */
	uint64_t decisions[2][2][3];
	uint64_t rotations[TUNNEL_CRED_KINDS];
	uint64_t renewal_failures[TUNNEL_CRED_KINDS];
	/* Valid until the tunnel's next call: credentials.json's entries as
	 * of the last tunnel_tick, and the handshakes per peer. */
	const struct cred_entry *creds;
	int nr_creds;
	const struct tunnel_hs_peer *hs;
	int nr_hs;
	/* Inbound flows let through as would-deny, by rule; its rows are
	 * valid until the tunnel's next call. */
	struct rule_counts would_deny;
};

struct http_authz;

/* Loads and checks the node's credentials (refusing a key open to others,
 * an expired certificate, one not from the CA) and, with identity.oidc,
 * starts the OIDC client. Decisions are written to audit, the agent's;
 * http decides the requests of inbound flows to protocol: http services.
 * Both must outlive the tunnel. */
int tunnel_new(const struct config *cfg, struct audit *audit, struct http_authz *http,
	       struct tunnel **out, struct errmsg *err);

/* What decisions use from now on. The pointers must stay valid until the
 * next call or tunnel_free. */
void tunnel_set_policy(struct tunnel *t, const struct config *cfg, const struct policy *pol,
		       const struct workload_set *wls, uint32_t generation);

/* Fills the tunnel callbacks of ops (ctx must be the tunnel). */
void tunnel_proxy_ops(struct proxy_ops *ops);

/* For proxy_ops.flow_closed: the close record of a tunnel flow. */
void tunnel_flow_closed(struct tunnel *t, void *flow_ctx, const struct flow_end *e);

/* Once a second: rotation and the credentials file. */
void tunnel_tick(struct tunnel *t);

/* The OIDC client's eventfd (-1 without OIDC) and what to do when it
 * fires. */
int tunnel_oidc_fd(const struct tunnel *t);
void tunnel_oidc_event(void *t);

/*
 * For the edge (edge.h), which verifies IdP tokens as the tunnel does and
 * signs with the node's key. The IdP key for kid, as jwt_verify_opts.get_key
 * (ctx the tunnel; an unknown kid schedules a JWKS refetch). The node's
 * current credentials, valid until the next tunnel_tick(). The OIDC client
 * (NULL without identity.oidc).
 */
int tunnel_idp_key(void *t, const char *kid, EVP_PKEY **pkey);
const struct pki_creds *tunnel_creds(void *t);
struct oidc *tunnel_oidc(const struct tunnel *t);
void tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *out);
void tunnel_free(struct tunnel *t);

#endif
