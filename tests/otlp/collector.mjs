// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The tracing tests' OTLP/HTTP collector: POST /v1/traces with OTLP's JSON
// encoding, decoded with OpenTelemetry's own message definitions (the
// ExportTraceServiceRequest of @opentelemetry/otlp-transformer's generated
// protobuf root), not with a parser of our own:
//
//   - the body becomes the message (hex ids as bytes, as OTLP/JSON says),
//     is encoded to the protobuf wire format and decoded back, and must
//     come back member for member: a member the definitions do not have,
//     or a value of the wrong type, is an error naming where it is;
//   - ids must be 16 and 8 bytes and not zero, kinds a SpanKind, start no
//     later than end.
//
// Every span received is one JSON line in --out; a request that fails the
// checks is answered 400 and written as {"error": "..."} there too.
// --status N answers N to every request instead (a failing collector).
//
//   node collector.mjs --host 10.0.0.1 --port 0 --out spans.jsonl
//
// Once listening it prints "READY http://HOST:PORT" on stdout.
import { createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
import http from 'node:http';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const SpanKind = root.opentelemetry.proto.trace.v1.Span.SpanKind;
const TO_OBJECT = { longs: String, bytes: String, enums: Number };

const args = {};
for (let i = 2; i < process.argv.length; i += 2)
	args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const host = args.host || '127.0.0.1';
const out = args.out;
const status = args.status ? Number(args.status) : 0;

const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);

// OTLP/JSON's ids are hex; the protobuf JSON mapping's bytes are base64.
function idsToBase64(v, path) {
	if (Array.isArray(v))
		return v.map((x, i) => idsToBase64(x, `${path}[${i}]`));
	if (v === null || typeof v !== 'object')
		return v;
	const o = {};
	for (const [k, x] of Object.entries(v)) {
		if (ID_KEYS.has(k)) {
			if (typeof x !== 'string' || !/^([0-9a-f]{2})+$/.test(x))
				throw new Error(`${path}.${k}: not lowercase hex: ${JSON.stringify(x)}`);
			o[k] = Buffer.from(x, 'hex').toString('base64');
		} else {
			o[k] = idsToBase64(x, `${path}.${k}`);
		}
	}
	return o;
}

// a must equal b member for member; numbers may come back as strings.
function same(a, b, path) {
	if (Array.isArray(a)) {
		if (!Array.isArray(b) || a.length !== b.length)
			throw new Error(`${path}: not a list the definitions keep`);
		a.forEach((x, i) => same(x, b[i], `${path}[${i}]`));
		return;
	}
	if (a !== null && typeof a === 'object') {
		for (const k of Object.keys(a)) {
			if (b === undefined || b === null || !(k in b))
				throw new Error(`${path}.${k}: no such member in the OTLP definitions`);
			same(a[k], b[k], `${path}.${k}`);
		}
		return;
	}
	if (String(a) !== String(b))
		throw new Error(`${path}: ${JSON.stringify(a)} decodes as ${JSON.stringify(b)}`);
}

function attrs(list) {
	const o = {};
	for (const kv of list || []) {
		const v = kv.value || {};
		o[kv.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) :
			v.boolValue ?? v.doubleValue);
	}
	return o;
}

const hex = (b64) => (b64 ? Buffer.from(b64, 'base64').toString('hex') : undefined);

function decode(body) {
	const json = JSON.parse(body);
	const converted = idsToBase64(json, 'request');
	const wire = Request.encode(Request.fromObject(converted)).finish();
	const back = Request.toObject(Request.decode(wire), TO_OBJECT);
	same(converted, back, 'request');
	const spans = [];
	for (const rs of back.resourceSpans || []) {
		const resource = attrs(rs.resource && rs.resource.attributes);
		for (const ss of rs.scopeSpans || []) {
			for (const s of ss.spans || []) {
				const span = {
					resource,
					scope: ss.scope && ss.scope.name,
					traceId: hex(s.traceId),
					spanId: hex(s.spanId),
					parentSpanId: hex(s.parentSpanId),
					name: s.name,
					kind: s.kind,
					start: s.startTimeUnixNano,
					end: s.endTimeUnixNano,
					status: s.status,
					attributes: attrs(s.attributes),
				};
				check(span);
				spans.push(span);
			}
		}
	}
	return spans;
}

function check(s) {
	const where = `span ${s.spanId}`;
	if (!s.traceId || s.traceId.length !== 32 || /^0+$/.test(s.traceId))
		throw new Error(`${where}: traceId is not 16 non-zero bytes`);
	if (!s.spanId || s.spanId.length !== 16 || /^0+$/.test(s.spanId))
		throw new Error(`${where}: spanId is not 8 non-zero bytes`);
	if (s.parentSpanId !== undefined && s.parentSpanId.length !== 16)
		throw new Error(`${where}: parentSpanId is not 8 bytes`);
	if (!Object.values(SpanKind).includes(s.kind) || s.kind === SpanKind.SPAN_KIND_UNSPECIFIED)
		throw new Error(`${where}: kind ${s.kind} is no SpanKind`);
	if (!s.start || !s.end || BigInt(s.start) > BigInt(s.end))
		throw new Error(`${where}: start ${s.start} is after end ${s.end}`);
}

function record(obj) {
	appendFileSync(out, JSON.stringify(obj) + '\n');
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		if (status) {
			res.writeHead(status, { 'Content-Type': 'application/json' });
			res.end('{}');
			return;
		}
		if (req.method !== 'POST' || req.url !== '/v1/traces') {
			res.writeHead(404).end();
			return;
		}
		if (!(req.headers['content-type'] || '').startsWith('application/json')) {
			record({ error: `Content-Type ${req.headers['content-type']}` });
			res.writeHead(415).end();
			return;
		}
		try {
			for (const s of decode(Buffer.concat(chunks).toString('utf8')))
				record(s);
		} catch (e) {
			record({ error: e.message });
			process.stderr.write(`collector: ${e.message}\n`);
			res.writeHead(400, { 'Content-Type': 'application/json' });
			res.end(JSON.stringify({ code: 3, message: e.message }));
			return;
		}
		res.writeHead(200, { 'Content-Type': 'application/json' });
		res.end('{}');
	});
});

server.listen(Number(args.port || 0), host, () => {
	process.stdout.write(`READY http://${host}:${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
