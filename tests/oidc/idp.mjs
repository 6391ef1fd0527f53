// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// A real OpenID provider (oidc-provider) on loopback for sluice's tests:
// client credentials grant, JWT access tokens (typ at+jwt, ES256) for one
// resource and opaque ones for another, token introspection (RFC 7662) and
// revocation (RFC 7009), custom claims per client, key rotation at runtime
// and request counters. Run tests/oidc/setup.sh first.
//
//   node tests/oidc/idp.mjs --clients FILE [--host ADDR] [--port N] [--resource URI]
//        [--opaque-resource URI] [--ttl SECONDS] [--tls-cert FILE --tls-key FILE]
//
// Every flag also reads from the environment (IDP_HOST, IDP_PORT, IDP_CLIENTS,
// IDP_RESOURCE, IDP_OPAQUE_RESOURCE, IDP_TOKEN_TTL, IDP_TLS_CERT, IDP_TLS_KEY).
// Port 0 picks a free port. Once listening it prints one line on stdout:
//
//   READY http://127.0.0.1:PORT
//
// The clients file is a JSON array of oidc-provider client metadata with
// these additions (stripped before the provider sees them):
//   claims     object merged into every access token of that client
//   key_file   PEM (public or private EC key) whose public half becomes the
//              client's jwks, for token_endpoint_auth_method private_key_jwt
//   token_ttl  access token lifetime in seconds for this client
// grant_types defaults to ["client_credentials"], with no redirect URIs.
//
// Resources (RFC 8707 `resource` of the token request): --resource
// (default spiffe://acme.example) gets JWT access tokens, --opaque-resource
// (default urn:sluice:opaque) opaque ones, which only introspection reads.
// Any other resource is refused (invalid_target).
//
// Clients always present besides the file's (a file client of the same
// client_id replaces one), test-only secrets on loopback:
//   edge-introspect  secret "edge-introspect-secret", client_secret_basic:
//                    what the edge introspects opaque tokens with
//   edge-user        secret "edge-user-secret", client_secret_basic: its
//                    tokens carry groups ["ops", "readers"]; an opaque one
//                    introspects with sub "alice@acme.example" (a JWT one's
//                    sub is the client_id, as oidc-provider always makes it)
// Introspection (POST /token/introspection) answers any confidential
// client; revocation (POST /token/revocation) only the token's own client.
//
// With --tls-cert/--tls-key the issuer is https and the server asks every
// client for a certificate (any certificate is accepted: RFC 8705 binding
// needs no CA); clients with tls_client_certificate_bound_access_tokens
// get cnf.x5t#S256 in their tokens and must present one.
//
// Admin endpoints (not part of OIDC, loopback test use only):
//   POST /admin/rotate-keys  new signing key; the previous one stays in the
//                            JWKS. Answers {"kid": NEW, "keys": [kids]}.
//   GET  /admin/stats        {"discovery": n, "jwks": n, "token": n,
//                            "introspection": n, "revocation": n,
//                            "kid": SIGNING}: requests served since start
//                            and the kid that signs tokens now.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: opts } = parseArgs({
	options: {
		host: { type: 'string', default: process.env.IDP_HOST ?? '127.0.0.1' },
		port: { type: 'string', default: process.env.IDP_PORT ?? '0' },
		clients: { type: 'string', default: process.env.IDP_CLIENTS },
		resource: { type: 'string', default: process.env.IDP_RESOURCE ?? 'spiffe://acme.example' },
		'opaque-resource': {
			type: 'string', default: process.env.IDP_OPAQUE_RESOURCE ?? 'urn:sluice:opaque',
		},
		ttl: { type: 'string', default: process.env.IDP_TOKEN_TTL ?? '300' },
		'tls-cert': { type: 'string', default: process.env.IDP_TLS_CERT },
		'tls-key': { type: 'string', default: process.env.IDP_TLS_KEY },
	},
});

function die(msg) {
	process.stderr.write(`idp: ${msg}\n`);
	process.exit(2);
}

function seconds(name, s) {
	const n = Number(s);
	if (!Number.isInteger(n) || n <= 0)
		die(`${name}: not a positive number of seconds: ${s}`);
	return n;
}

if (!opts.clients)
	die('--clients FILE is required');
if (!!opts['tls-cert'] !== !!opts['tls-key'])
	die('--tls-cert and --tls-key go together');
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535)
	die(`--port: not a port: ${opts.port}`);
const defaultTtl = seconds('--ttl', opts.ttl);
const tls = !!opts['tls-cert'];

const builtinClients = [
	{
		client_id: 'edge-introspect',
		client_secret: 'edge-introspect-secret',
		token_endpoint_auth_method: 'client_secret_basic',
	},
	{
		client_id: 'edge-user',
		client_secret: 'edge-user-secret',
		token_endpoint_auth_method: 'client_secret_basic',
		claims: { sub: 'alice@acme.example', groups: ['ops', 'readers'] },
	},
];
const fileClients = JSON.parse(fs.readFileSync(opts.clients, 'utf8'));
const fileIds = new Set(fileClients.map((c) => c.client_id));

const extraClaims = new Map();
const ttls = new Map();
const clients = [
	...builtinClients.filter((c) => !fileIds.has(c.client_id)),
	...fileClients,
].map((c) => {
	const { claims, key_file: keyFile, token_ttl: ttl, ...meta } = c;
	if (claims)
		extraClaims.set(meta.client_id, claims);
	if (ttl !== undefined)
		ttls.set(meta.client_id, seconds(`${meta.client_id}: token_ttl`, ttl));
	if (keyFile) {
		const pub = crypto.createPublicKey(fs.readFileSync(keyFile));
		meta.jwks = { keys: [{ ...pub.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' }] };
	}
	return {
		grant_types: ['client_credentials'],
		redirect_uris: [],
		response_types: [],
		...meta,
	};
});

// Newest first: the first key signs, the second stays published so tokens
// signed before a rotation still verify.
let keys = [];
let keySerial = 0;

function newKey() {
	const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	keySerial += 1;
	return { ...privateKey.export({ format: 'jwk' }), kid: `idp-key-${keySerial}`, use: 'sig', alg: 'ES256' };
}

const stats = { discovery: 0, jwks: 0, token: 0, introspection: 0, revocation: 0 };
let app;
let issuer;

function buildProvider() {
	const p = new Provider(issuer, {
		clients,
		jwks: { keys },
		clientDefaults: { id_token_signed_response_alg: 'ES256' },
		clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
		features: {
			devInteractions: { enabled: false },
			clientCredentials: { enabled: true },
			introspection: {
				enabled: true,
				allowedPolicy: (ctx, client) => client.clientAuthMethod !== 'none',
			},
			revocation: {
				enabled: true,
				allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
			},
			resourceIndicators: {
				enabled: true,
				defaultResource: () => opts.resource,
				useGrantedResource: () => true,
				getResourceServerInfo(ctx, indicator, client) {
					const ttl = ttls.get(client.clientId) ?? defaultTtl;

					if (indicator === opts['opaque-resource'])
						return { audience: indicator, scope: '', accessTokenFormat: 'opaque', accessTokenTTL: ttl };
					if (indicator !== opts.resource)
						throw new errors.InvalidTarget();
					return {
						audience: opts.resource,
						scope: '',
						accessTokenFormat: 'jwt',
						accessTokenTTL: ttl,
						jwt: { sign: { alg: 'ES256', kid: keys[0].kid } },
					};
				},
			},
			mTLS: {
				enabled: tls,
				certificateBoundAccessTokens: tls,
				getCertificate: (ctx) => ctx.socket.getPeerX509Certificate?.(),
			},
		},
		extraTokenClaims: (ctx, token) => extraClaims.get(token.clientId),
	});
	p.on('server_error', (ctx, err) => process.stderr.write(`idp: server error: ${err.stack}\n`));
	return p;
}

function rotateKeys() {
	keys = [newKey(), keys[0]];
	app = buildProvider().callback();
	return { kid: keys[0].kid, keys: keys.map((k) => k.kid) };
}

function json(res, code, body) {
	res.writeHead(code, { 'content-type': 'application/json' });
	res.end(JSON.stringify(body));
}

const counted = {
	'/.well-known/openid-configuration': 'discovery',
	'/jwks': 'jwks',
	'/token': 'token',
	'/token/introspection': 'introspection',
	'/token/revocation': 'revocation',
};

function handle(req, res) {
	const path = new URL(req.url, issuer).pathname;

	if (path === '/admin/rotate-keys' && req.method === 'POST')
		return json(res, 200, rotateKeys());
	if (path === '/admin/stats' && req.method === 'GET')
		return json(res, 200, { ...stats, kid: keys[0].kid });
	if (counted[path])
		stats[counted[path]] += 1;
	return app(req, res);
}

const server = tls
	? https.createServer({
		cert: fs.readFileSync(opts['tls-cert']),
		key: fs.readFileSync(opts['tls-key']),
		requestCert: true,
		rejectUnauthorized: false,
	}, handle)
	: http.createServer(handle);

// --host: an IdP that agents in other network namespaces reach too.
server.listen(port, opts.host, () => {
	issuer = `${tls ? 'https' : 'http'}://${opts.host}:${server.address().port}`;
	keys = [newKey()];
	app = buildProvider().callback();
	process.stdout.write(`READY ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));
