// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * HTTP-aware services (issue 14), end to end: Debian's nginx serves a
 * protocol: http service on node B (WebDAV PUT and DELETE on, so a DELETE
 * that reached it would delete the file) and another on node A; the job on
 * node A calls them through the agents, across the tunnel and on one node.
 * The policy lets jobs use both but never DELETE, lets the edge workload
 * GET /public/ only, and lets role readers in through the edge:
 *
 *   - GET then DELETE on one keep-alive connection (curl): 200, then the
 *     agent's 403 on the same connection; pipelined GET, DELETE, GET (one
 *     write): 200, 403, 200 in order; nginx's access log has both GETs and
 *     no DELETE, and the file is still there;
 *   - a 100 MiB chunked upload (curl -T) arrives byte-exact;
 *   - an upgrade to a server on node B that answers 101: after it, bytes
 *     that look like a DELETE are opaque and echo back untouched;
 *   - smuggling attempts, each refused with a 400 naming its reason and
 *     audited (across the tunnel node A's gate refuses them already, as
 *     B's would); none reaches nginx;
 *   - from the edge workload, a request with a caller assertion signed by
 *     node A's key is decided as the caller (a reader may GET /private,
 *     the edge itself may not); forged, expired, other-audience and
 *     other-node assertions are 401s with their reasons; from a workload
 *     that is not an edge workload, any assertion is a 401;
 *   - one with a traceparent keeps the client's trace id on A's span (the
 *     client side), on B's and in nginx's log; a request without one has
 *     both spans in the flow's trace and reaches nginx with the traceparent
 *     B added.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <time.h>

#include "agent_proc.h"
#include "assertion.h"
#include "edge_env.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "pki.h"
#include "scrape.h"
#include "util.h"
#include "workload_proc.h"

#define SVC_API "api"
#define SVC_LOCAL "local-api"
#define SVC_WS "ws"
#define PORT_API 7400
#define PORT_LOCAL 7401
#define PORT_WS 7402
#define READER "spiffe://" TRUST_DOMAIN "/service/reader-app"
#define UPLOAD_MIB 100
#define NGINX_READY_MS 10000
#define IO_MS 20000
#define CLIENT_TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define CLIENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"

struct world {
	char policy_a[4096], policy_b[4096], workloads[256];
	struct mesh_cfg cfg;
	pid_t nginx_b, nginx_a, ws;
	EVP_PKEY *key_a, *key_b;
	X509 *cert_a, *cert_b;
};

static int policy_text(const struct sl_env *env, char *buf, size_t len)
{
	return snprintf(buf, len,
			"version: 1\n"
			"default: deny\n"
			"roles:\n"
			"  - name: readers\n"
			"services:\n"
			"  - name: " SVC_API "\n"
			"    addresses: [%s/32]\n"
			"    ports: [%d]\n"
			"    protocol: http\n"
			"  - name: " SVC_LOCAL "\n"
			"    addresses: [%s/32]\n"
			"    ports: [%d]\n"
			"    protocol: http\n"
			"  - name: " SVC_WS "\n"
			"    addresses: [%s/32]\n"
			"    ports: [%d]\n"
			"    protocol: http\n"
			"rules:\n"
			"  - name: jobs-call-apis\n"
			"    from: {kind: job}\n"
			"    to: [" SVC_API ", " SVC_LOCAL ", " SVC_WS "]\n"
			"    action: allow\n"
			"  - name: no-delete\n"
			"    from: {kind: job}\n"
			"    to: [" SVC_API ", " SVC_LOCAL "]\n"
			"    methods: [DELETE]\n"
			"    action: deny\n"
			"  - name: edge-public\n"
			"    from: {workload: " ID_EDGE "}\n"
			"    to: [" SVC_API "]\n"
			"    paths: [/public/**]\n"
			"    action: allow\n"
			"  - name: readers-through-edge\n"
			"    from: {role: readers}\n"
			"    to: [" SVC_API "]\n"
			"    methods: [GET]\n"
			"    via: edge\n"
			"    action: allow\n",
			env->ip4_b, PORT_API, env->ip4_a, PORT_LOCAL, env->ip4_b, PORT_WS) >=
			       (int)len
		       ? -ENOSPC
		       : 0;
}

/* Debian's nginx in ns as root without workers, serving <tmp>/www-NAME
 * with WebDAV PUT and DELETE, its access log <tmp>/NAME-access.log:
 * "METHOD URI traceparent" per request. */
static pid_t nginx_start(struct sl_env *env, const char *name, const char *ns, const char *addr,
			 int port)
{
	char conf[PATH_MAX], pidfile[PATH_MAX], www[PATH_MAX], file[64];
	long long deadline;
	pid_t pid;

	snprintf(file, sizeof(file), "%s.pid", name);
	env_path(env, file, pidfile, sizeof(pidfile));
	snprintf(file, sizeof(file), "www-%s", name);
	env_path(env, file, www, sizeof(www));
	if (mkdir(www, 0755) && errno != EEXIST)
		return -1;
	snprintf(file, sizeof(file), "www-%s/a.txt", name);
	if (env_write_file(env, file, "hello from %s\n", name))
		return -1;
	snprintf(file, sizeof(file), "%s.conf", name);
	if (env_write_file(env, file,
			   "daemon off;\n"
			   "master_process off;\n"
			   "pid %s;\n"
			   "error_log %s/%s-error.log;\n"
			   "events { worker_connections 64; }\n"
			   "http {\n"
			   "  log_format req '$request_method $request_uri $http_traceparent';\n"
			   "  access_log %s/%s-access.log req;\n"
			   "  client_body_temp_path %s/%s-tmp;\n"
			   "  client_max_body_size 0;\n"
			   "  proxy_temp_path %s/%s-tmp;\n"
			   "  fastcgi_temp_path %s/%s-tmp;\n"
			   "  uwsgi_temp_path %s/%s-tmp;\n"
			   "  scgi_temp_path %s/%s-tmp;\n"
			   "  keepalive_requests 1000;\n"
			   "  server {\n"
			   "    listen %s:%d;\n"
			   "    root %s;\n"
			   "    dav_methods PUT DELETE;\n"
			   "    create_full_put_path on;\n"
			   "  }\n"
			   "}\n",
			   pidfile, env->tmp_dir, name, env->tmp_dir, name, env->tmp_dir, name,
			   env->tmp_dir, name, env->tmp_dir, name, env->tmp_dir, name, env->tmp_dir,
			   name, addr, port, www))
		return -1;
	env_path(env, file, conf, sizeof(conf));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		child_reset_signals();
		if (netns_join(ns))
			_exit(126);
		execlp("nginx", "nginx", "-c", conf, "-p", env->tmp_dir, (char *)NULL);
		_exit(127);
	}
	env_track_child(env, pid);
	deadline = now_ms() + NGINX_READY_MS;
	while (access(pidfile, F_OK)) {
		if (now_ms() > deadline || !wait_child(pid, NULL, 0)) {
			printf("nginx %s did not start (see %s/%s-error.log)\n", name, env->tmp_dir,
			       name);
			return -1;
		}
		sleep_ms(20);
	}
	return pid;
}

/* nginx writes a request's line once it has answered: the client may see
 * the answer first. */
static bool access_wait(struct sl_env *env, const char *name, const char *needle)
{
	char path[PATH_MAX], file[64];

	snprintf(file, sizeof(file), "%s-access.log", name);
	env_path(env, file, path, sizeof(path));
	return file_wait(path, 0, needle, LOG_WAIT_MS);
}

static char *access_log(struct sl_env *env, const char *name)
{
	char path[PATH_MAX], file[64];
	char *s;

	snprintf(file, sizeof(file), "%s-access.log", name);
	env_path(env, file, path, sizeof(path));
	s = read_file_from(path, 0);
	return s ? s : strdup("");
}

/* The upgrade peer on node B: reads a head, answers 101, then echoes. */
static void ws_serve(const struct sl_env *env, const void *arg, int fd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT_WS) };
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n";
	char buf[4096];
	size_t have = 0;
	int one = 1, lfd, c;
	ssize_t n;

	(void)arg;
	inet_pton(AF_INET, env->ip4_b, &sa.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4)) {
		dprintf(STDOUT_FILENO, "upgrade server: %s:%d: %s\n", env->ip4_b, PORT_WS,
			strerror(errno));
		_exit(3);
	}
	write_full(fd, "r", 1);
	c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(4);
	while (have < sizeof(buf) - 1 && !memmem(buf, have, "\r\n\r\n", 4)) {
		n = read(c, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			_exit(5);
		have += n;
	}
	write_full(c, sw, strlen(sw));
	/* What came after the head is opaque already. */
	n = (char *)memmem(buf, have, "\r\n\r\n", 4) + 4 - buf;
	if ((size_t)n < have)
		write_full(c, buf + n, have - n);
	while ((n = read(c, buf, sizeof(buf))) > 0)
		write_full(c, buf, n);
	_exit(0);
}

struct raw_req {
	const char *addr;
	int port;
	const char *bytes;
	size_t len;
	int wait_ms;			/* idle time that ends the read */
};

/* A raw client as a process of cgroup in ns: sends bytes, reads until the
 * server closes or goes quiet for wait_ms, hands what it read back. */
static void raw_client(const struct sl_env *env, const void *arg, int fd)
{
	const struct raw_req *r = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(r->port) };
	struct pollfd p;
	char buf[16384];
	ssize_t n;
	int s;

	(void)env;
	inet_pton(AF_INET, r->addr, &sa.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		dprintf(fd, "connect: %s", strerror(errno));
		_exit(1);
	}
	write_full(s, r->bytes, r->len);
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	while (poll(&p, 1, r->wait_ms) == 1 && (n = read(s, buf, sizeof(buf))) > 0)
		write_full(fd, buf, n);
	_exit(0);
}

/* What a raw client in cgroup on node A got back; malloc'd. */
static char *raw(struct sl_env *env, const char *cgroup, const char *addr, int port,
		 const char *bytes, size_t len, int wait_ms)
{
	struct raw_req r = { addr, port, bytes, len, wait_ms };
	char buf[16384], *out = NULL;
	size_t have = 0;
	pid_t pid;
	ssize_t n;
	int fd;

	if (spawn_in(env, env->ns_a, cgroup, raw_client, &r, &pid, &fd))
		return NULL;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *o = realloc(out, have + n + 1);

		if (!o)
			break;
		out = o;
		memcpy(out + have, buf, n);
		have += n;
		out[have] = '\0';
	}
	child_reap(env, pid, fd);
	return out ? out : strdup("");
}

static int curl_as_job(struct sl_env *env, const char *args, char **out)
{
	char cmd[2 * PATH_MAX + 1024], procs[PATH_MAX], *err = NULL;
	char *argv[] = { "sh", "-c", cmd, NULL };
	int ret;

	env_cgroup(env, "job", procs, sizeof(procs));
	snprintf(cmd, sizeof(cmd),
		 "echo $$ > %s/cgroup.procs && exec nsenter --net=/run/netns/%s curl -sS "
		 "--max-time 60 %s",
		 procs, env->ns_a, args);
	*out = NULL;
	ret = run_argv(argv, out, &err, 120000);
	if (ret)
		printf("curl %s: exit %d: %s\n", args, ret, err ? err : "");
	free(err);
	return ret;
}

static void keepalive_get_then_delete(struct sl_env *env, const char *addr, int port,
				      const char *name)
{
	char args[512], path[PATH_MAX], file[64], *out = NULL, *log;

	snprintf(args, sizeof(args),
		 "-o /dev/null -w '%%{http_code} %%{num_connects}\\n' http://%s:%d/a.txt "
		 "--next -o /dev/null -w '%%{http_code} %%{num_connects}\\n' -X DELETE "
		 "http://%s:%d/a.txt",
		 addr, port, addr, port);
	if (!ASSERT_OK(curl_as_job(env, args, &out), "curl GET then DELETE"))
		goto out;
	/* One connection, reused for the DELETE (no new connect). */
	ASSERT_STREQ(out, "200 1\n403 0\n", "GET 200, then DELETE 403 on the same connection");
	access_wait(env, name, "GET /a.txt");
	log = access_log(env, name);
	ASSERT_HAS_SUBSTR(log, "GET /a.txt", "nginx got the GET");
	ASSERT_NO_SUBSTR(log, "DELETE", "nginx never got the DELETE");
	free(log);
	snprintf(file, sizeof(file), "www-%s/a.txt", name);
	env_path(env, file, path, sizeof(path));
	ASSERT_OK(access(path, F_OK), "the file is still there");
out:
	free(out);
}

static void pipelined(struct sl_env *env)
{
	char reqs[512], *out, *log, *g1, *g2;
	int n;

	n = snprintf(reqs, sizeof(reqs),
		     "GET /a.txt?one HTTP/1.1\r\nHost: api\r\n\r\n"
		     "DELETE /a.txt HTTP/1.1\r\nHost: api\r\n\r\n"
		     "GET /a.txt?three HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n");
	out = raw(env, "job", env->ip4_b, PORT_API, reqs, n, 3000);
	if (!ASSERT_OK_PTR(out, "pipelined requests"))
		return;
	g1 = strstr(out, "HTTP/1.1 200 OK");
	g2 = g1 ? strstr(g1 + 1, "HTTP/1.1 403 Forbidden") : NULL;
	ASSERT_TRUE(g1 && g2 && strstr(g2, "HTTP/1.1 200 OK"), "200, 403, 200 in order");
	ASSERT_HAS_SUBSTR(out, "X-Sluice-Reason: policy-deny", "the 403 names its reason");
	ASSERT_HAS_SUBSTR(out, "DELETE /a.txt to " SVC_API " is denied by rule no-delete",
			  "the 403 names the rule");
	free(out);
	access_wait(env, "b", "GET /a.txt?three");
	log = access_log(env, "b");
	g1 = strstr(log, "GET /a.txt?one");
	ASSERT_TRUE(g1 && strstr(g1, "GET /a.txt?three"), "nginx got both GETs, in order");
	ASSERT_NO_SUBSTR(log, "DELETE", "nginx never got the DELETE");
	free(log);
}

static int write_upload(struct sl_env *env, unsigned char digest[SHA256_DIGEST_LENGTH])
{
	char path[PATH_MAX], block[65536];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	FILE *f;

	env_path(env, "upload.bin", path, sizeof(path));
	f = c ? fopen(path, "w") : NULL;
	if (!f) {
		EVP_MD_CTX_free(c);
		return -EIO;
	}
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (int i = 0; i < UPLOAD_MIB * 16; i++) {
		for (size_t j = 0; j < sizeof(block); j++)
			block[j] = (char)(i * 131 + j * 7 + (j >> 9));
		EVP_DigestUpdate(c, block, sizeof(block));
		fwrite(block, 1, sizeof(block), f);
	}
	EVP_DigestFinal_ex(c, digest, NULL);
	EVP_MD_CTX_free(c);
	return fclose(f) ? -errno : 0;
}

static int file_digest(const char *path, unsigned char digest[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char block[65536];
	size_t n;
	FILE *f = c ? fopen(path, "r") : NULL;

	if (!f) {
		EVP_MD_CTX_free(c);
		return -ENOENT;
	}
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while ((n = fread(block, 1, sizeof(block), f)) > 0)
		EVP_DigestUpdate(c, block, n);
	fclose(f);
	EVP_DigestFinal_ex(c, digest, NULL);
	EVP_MD_CTX_free(c);
	return 0;
}

static void chunked_upload(struct sl_env *env)
{
	unsigned char sent[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
	char args[2 * PATH_MAX], src[PATH_MAX], dst[PATH_MAX], *out = NULL;

	if (!ASSERT_OK(write_upload(env, sent), "a 100 MiB file"))
		return;
	env_path(env, "upload.bin", src, sizeof(src));
	snprintf(args, sizeof(args),
		 "-o /dev/null -w '%%{http_code}' -H 'Transfer-Encoding: chunked' -T %s "
		 "http://%s:%d/up/big.bin",
		 src, env->ip4_b, PORT_API);
	if (ASSERT_OK(curl_as_job(env, args, &out), "curl -T, chunked"))
		ASSERT_STREQ(out, "201", "nginx created the file");
	free(out);
	env_path(env, "www-b/up/big.bin", dst, sizeof(dst));
	if (ASSERT_OK(file_digest(dst, got), "the uploaded file"))
		ASSERT_TRUE(!memcmp(sent, got, sizeof(sent)), "100 MiB chunked upload byte-exact");
	unlink(src);
	unlink(dst);
}

static void upgrade(struct sl_env *env, struct world *w)
{
	static const char req[] = "GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\n"
				  "Upgrade: websocket\r\n\r\n"
				  "DELETE /a.txt HTTP/1.1\r\nHost: api\r\n\r\n\x81\x05hello";
	char ready;
	char *out;
	int fd;

	int sp[2];

	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), "a socketpair"))
		return;
	fflush(stdout);
	w->ws = fork();
	if (!w->ws) {
		child_reset_signals();
		close(sp[0]);
		if (netns_join(env->ns_b))
			_exit(126);
		ws_serve(env, NULL, sp[1]);
	}
	close(sp[1]);
	fd = sp[0];
	if (w->ws > 0)
		env_track_child(env, w->ws);
	if (!ASSERT_GE(w->ws, 1, "the upgrade server on B") ||
	    !ASSERT_OK(read_full(fd, &ready, 1, IO_MS), "it listens")) {
		close(fd);
		return;
	}
	out = raw(env, "job", env->ip4_b, PORT_WS, req, sizeof(req) - 1, 2000);
	if (ASSERT_OK_PTR(out, "the upgrade")) {
		ASSERT_TRUE(!strncmp(out, "HTTP/1.1 101 ", 13), "101 Switching Protocols");
		/* The bytes after the 101 were not parsed as a request. */
		ASSERT_HAS_SUBSTR(out, "\r\n\r\nDELETE /a.txt HTTP/1.1\r\nHost: api\r\n\r\n\x81\x05hello",
				  "opaque bytes echoed back untouched");
		ASSERT_NO_SUBSTR(out, "403", "nothing after the 101 was decided");
	}
	free(out);
	child_reap(env, w->ws, fd);
}

static const struct {
	const char *name;
	const char *bytes;
	const char *reason;
} smuggling[] = {
	{ "CL.TE", "POST /s1 HTTP/1.1\r\nHost: api\r\nContent-Length: 6\r\n"
		   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", "bad-content-length" },
	{ "TE.CL", "POST /s2 HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n"
		   "Content-Length: 3\r\n\r\n0\r\n\r\n", "bad-content-length" },
	{ "two Content-Length", "POST /s3 HTTP/1.1\r\nHost: api\r\nContent-Length: 1\r\n"
				"Content-Length: 2\r\n\r\nab", "bad-content-length" },
	{ "obfuscated TE", "POST /s4 HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: xchunked\r\n"
			   "\r\n0\r\n\r\n", "bad-transfer-encoding" },
	{ "TE list", "POST /s5 HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: identity, chunked\r\n"
		     "\r\n0\r\n\r\n", "bad-transfer-encoding" },
	{ "obs-fold", "GET /s6 HTTP/1.1\r\nHost: api\r\nX-A: a\r\n b\r\n\r\n", "obs-fold" },
	{ "space in name", "GET /s7 HTTP/1.1\r\nHost: api\r\nBad Name: a\r\n\r\n", "bad-header-name" },
	{ "bare LF", "GET /s8 HTTP/1.1\nHost: api\n\n", "bad-header" },
	{ "two Host", "GET /s9 HTTP/1.1\r\nHost: api\r\nHost: evil\r\n\r\n", "repeated-host" },
	{ "h2c upgrade", "GET /s10 HTTP/1.1\r\nHost: api\r\nConnection: Upgrade, HTTP2-Settings\r\n"
			 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
	  "http2-upgrade" },
	{ "h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2-prior-knowledge" },
	{ "not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", "not-http" },
};

/* Across the tunnel the sending agent refuses them already (its gate
 * frames requests as B's would: they never leave node A); on one node the
 * only agent does. Either way the answer names the reason, the refusal
 * is audited, and nothing reaches nginx. */
static void smuggling_refused(struct sl_env *env, const char *addr, int port, const char *direction,
			      const char *nginx)
{
	char name[96], needle[160], *out, *log;
	long from = mesh_audit_size(env, 'a');

	for (size_t i = 0; i < sizeof(smuggling) / sizeof(smuggling[0]); i++) {
		out = raw(env, "job", addr, port, smuggling[i].bytes, strlen(smuggling[i].bytes), 3000);
		snprintf(name, sizeof(name), "%s: 400", smuggling[i].name);
		if (!ASSERT_OK_PTR(out, smuggling[i].name))
			continue;
		ASSERT_TRUE(!strncmp(out, "HTTP/1.1 400 ", 13), name);
		snprintf(needle, sizeof(needle), "X-Sluice-Reason: %s\r\n", smuggling[i].reason);
		snprintf(name, sizeof(name), "%s: reason %s", smuggling[i].name, smuggling[i].reason);
		ASSERT_HAS_SUBSTR(out, needle, name);
		free(out);
		snprintf(needle, sizeof(needle), "\"direction\":\"%s\",\"src_node\":\"" NODE_A
			 "\",\"src_workload\":\"" ID_JOB "\"", direction);
		snprintf(name, sizeof(name), "%s: audited", smuggling[i].name);
		ASSERT_TRUE(mesh_audit_wait(env, 'a', from, needle, LOG_WAIT_MS), name);
		snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", smuggling[i].reason);
		ASSERT_TRUE(mesh_audit_wait(env, 'a', from, needle, LOG_WAIT_MS), name);
	}
	out = raw(env, "job", addr, port, "\x16\x03\x01\x00\x05hello", 10, 2000);
	if (ASSERT_OK_PTR(out, "a TLS ClientHello"))
		ASSERT_STREQ(out, "", "a TLS ClientHello gets no HTTP answer");
	free(out);
	ASSERT_TRUE(mesh_audit_wait(env, 'a', from, "\"reason\":\"tls-client-hello\"", LOG_WAIT_MS),
		    "the ClientHello audited");
	log = access_log(env, nginx);
	ASSERT_NO_SUBSTR(log, "/s", "no smuggling attempt reached nginx");
	ASSERT_NO_SUBSTR(log, "PRI", "no HTTP/2 preface reached nginx");
	free(log);
}

static int load_node(struct sl_env *env, const char *node, EVP_PKEY **key, X509 **cert)
{
	char path[PATH_MAX], file[64];
	FILE *f;

	snprintf(file, sizeof(file), "%s/" PKI_NODE_KEY, node);
	mesh_pki_path(env, file, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	snprintf(file, sizeof(file), "%s/" PKI_NODE_CERT, node);
	mesh_pki_path(env, file, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return *key && *cert ? 0 : -EINVAL;
}

/* An assertion for READER as node A (or B) would sign it; malloc'd. */
static char *mint(struct world *w, bool node_b, const char *service, int64_t age)
{
	static const char *const roles[] = { "readers" };
	char aud[128], *tok = NULL;
	struct errmsg err = {};
	struct assertion a = {
		.sub = READER,
		.roles = roles,
		.nr_roles = 1,
		.aud = aud,
		.now = age ? time(NULL) - age : 0,
		.lifetime = 60,
	};

	snprintf(aud, sizeof(aud), "spiffe://" TRUST_DOMAIN "/service/%s", service);
	if (assertion_mint(node_b ? w->key_b : w->key_a, node_b ? w->cert_b : w->cert_a, &a, &tok,
			   &err))
		printf("mint: %s\n", err.msg);
	return tok;
}

/* GET path from cgroup with an assertion (NULL: none): the status line's
 * code and the reason header, "200 -" or "401 assertion-expired". */
static void ask(struct sl_env *env, const char *cgroup, const char *path, const char *assertion,
		char *res, size_t len)
{
	char req[ASSERTION_MAX_LEN + 512], *out, *r;
	int n;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: api\r\n%s%s%sConnection: close\r\n\r\n",
		     path, assertion ? "X-Sluice-Assertion: " : "", assertion ? assertion : "",
		     assertion ? "\r\n" : "");
	out = raw(env, cgroup, env->ip4_b, PORT_API, req, n, 3000);
	snprintf(res, len, "no answer");
	if (!out || strncmp(out, "HTTP/1.1 ", 9)) {
		free(out);
		return;
	}
	r = strstr(out, "X-Sluice-Reason: ");
	if (r)
		r[17 + strcspn(r + 17, "\r\n")] = '\0';
	snprintf(res, len, "%.3s %s", out + 9, r ? r + 17 : "-");
	free(out);
}

static void edge_assertions(struct sl_env *env, struct world *w)
{
	static const struct {
		const char *name;
		bool node_b;
		const char *service;
		int64_t age;
		bool bend;
		const char *want;
	} t[] = {
		{ "valid", false, SVC_API, 0, false, "200 -" },
		{ "forged signature", false, SVC_API, 0, true, "401 assertion-bad-signature" },
		{ "expired", false, SVC_API, 600, false, "401 assertion-expired" },
		{ "wrong audience", false, SVC_LOCAL, 0, false, "401 assertion-bad-audience" },
		{ "another node's", true, SVC_API, 0, false, "401 assertion-wrong-node" },
	};
	char res[128], name[96], *tok;
	long from = mesh_audit_size(env, 'b');

	if (!ASSERT_OK(load_node(env, NODE_A, &w->key_a, &w->cert_a), "node A's key") ||
	    !ASSERT_OK(load_node(env, NODE_B, &w->key_b, &w->cert_b), "node B's key"))
		return;
	ask(env, EDGE_CGROUP, "/private/a.txt", NULL, res, sizeof(res));
	ASSERT_STREQ(res, "403 default-deny", "the edge itself may not GET /private");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		tok = mint(w, t[i].node_b, t[i].service, t[i].age);
		if (!ASSERT_OK_PTR(tok, t[i].name))
			continue;
		if (t[i].bend)
			tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
		ask(env, EDGE_CGROUP, "/private/a.txt", tok, res, sizeof(res));
		/* 200 or 404: nginx answered; the file need not exist. */
		if (!strcmp(t[i].want, "200 -") && !strcmp(res, "404 -"))
			snprintf(res, sizeof(res), "200 -");
		snprintf(name, sizeof(name), "assertion %s", t[i].name);
		ASSERT_STREQ(res, t[i].want, name);
		free(tok);
	}
	tok = mint(w, false, SVC_API, 0);
	ask(env, "job", "/private/a.txt", tok, res, sizeof(res));
	ASSERT_STREQ(res, "401 assertion-not-from-edge", "an assertion from a job");
	free(tok);
	ASSERT_TRUE(mesh_audit_wait(env, 'b', from, "\"caller\":\"" READER "\"", LOG_WAIT_MS),
		    "B audited the request as the caller");
	ASSERT_TRUE(mesh_audit_wait(env, 'b', from, "\"reason\":\"assertion-expired\"",
				    LOG_WAIT_MS),
		    "B audited the expired assertion");
}

/* Node's request line for uri, parsed. */
static json_t *request_line(struct sl_env *env, char node, long from, const char *uri)
{
	char needle[128], *audit, *at, *end;
	json_t *j = NULL;

	snprintf(needle, sizeof(needle), "\"path\":\"%s\"", uri);
	if (!mesh_audit_wait(env, node, from, needle, LOG_WAIT_MS))
		return NULL;
	audit = mesh_audit(env, node, from);
	at = audit ? strstr(audit, needle) : NULL;
	if (at) {
		while (at > audit && at[-1] != '\n')
			at--;
		end = strchr(at, '\n');
		j = json_loadb(at, end ? (size_t)(end - at) : strlen(at), 0, NULL);
	}
	free(audit);
	return j;
}

static const char *member(json_t *line, const char *key)
{
	const char *v = json_string_value(json_object_get(line, key));

	return v ? v : "";
}

/* Both agents audit allowed requests line by line here (audit.http_allows),
 * so each span is on a line: A's "request-out" (the client side) and B's
 * "request" (the server side). */
static void traced(struct sl_env *env)
{
	static const char with[] = "GET /traced-with HTTP/1.1\r\nHost: api\r\ntraceparent: " CLIENT_TP
				   "\r\nConnection: close\r\n\r\n";
	static const char without[] = "GET /traced-without HTTP/1.1\r\nHost: api\r\n"
				      "Connection: close\r\n\r\n";
	long from_a = mesh_audit_size(env, 'a'), from_b = mesh_audit_size(env, 'b');
	json_t *a, *b;
	char needle[128], *log;

	free(raw(env, "job", env->ip4_b, PORT_API, with, sizeof(with) - 1, 2000));
	free(raw(env, "job", env->ip4_b, PORT_API, without, sizeof(without) - 1, 2000));
	a = request_line(env, 'a', from_a, "/traced-with");
	b = request_line(env, 'b', from_b, "/traced-with");
	if (ASSERT_OK_PTR(a, "A's line for the traced request") &&
	    ASSERT_OK_PTR(b, "B's line for the traced request")) {
		ASSERT_STREQ(member(a, "direction"), "request-out", "A's is the client side");
		ASSERT_STREQ(member(a, "trace_id"), CLIENT_TRACE, "A's span is in the client's trace");
		ASSERT_STREQ(member(b, "trace_id"), CLIENT_TRACE, "B's span is in the client's trace");
		ASSERT_STREQ(member(b, "parent_span_id"), "00f067aa0ba902b7",
			     "B's span continues the client's");
		ASSERT_EQ(json_integer_value(json_object_get(b, "http_status")), 404,
			  "B's line has nginx's status");
		ASSERT_EQ(json_integer_value(json_object_get(a, "http_status")), 404,
			  "A's line has it too");
	}
	json_decref(a);
	json_decref(b);
	access_wait(env, "b", "/traced-without");
	log = access_log(env, "b");
	ASSERT_HAS_SUBSTR(log, "/traced-with " CLIENT_TP, "nginx got the client's traceparent");
	/* Without one, both spans are in the flow's trace (A's outbound span
	 * is B's inbound span's parent), and B adds the header naming its own
	 * span, so nginx's would be B's children. */
	a = request_line(env, 'a', from_a, "/traced-without");
	b = request_line(env, 'b', from_b, "/traced-without");
	if (ASSERT_OK_PTR(a, "A's line for the untraced request") &&
	    ASSERT_OK_PTR(b, "B's line for the untraced request")) {
		ASSERT_TRUE(member(a, "trace_id")[0], "A made a span");
		ASSERT_STREQ(member(b, "trace_id"), member(a, "trace_id"), "one trace on A and B");
		snprintf(needle, sizeof(needle), "/traced-without 00-%s-%s-01", member(b, "trace_id"),
			 member(b, "span_id"));
		ASSERT_HAS_SUBSTR(log, needle, "nginx got the traceparent B added");
	}
	json_decref(a);
	json_decref(b);
	free(log);
}

/* After the subtests above: the two DELETEs B refused (keep-alive and
 * pipelined), counted by rule and in the request counters, exactly. */
static void metrics(struct sl_env *env)
{
	char *text = scrape(env, env->ns_b, METRICS_URL);

	if (!text)
		return;
	ASSERT_EQ(scrape_sample(text, "sluice_http_denied_total{destination_service=\"" SVC_API
				      "\",rule=\"no-delete\",reason=\"policy-deny\"}"),
		  2, "denied DELETEs, by rule");
	ASSERT_EQ(scrape_sample(text, "sluice_http_requests_total{source_workload=\"" ID_JOB
				      "\",destination_service=\"" SVC_API
				      "\",method=\"write\",code=\"4xx\"}"),
		  2, "the job's refused writes");
	ASSERT_EQ(scrape_sample(text, "sluice_http_requests_total{source_workload=\"" ID_JOB
				      "\",destination_service=\"" SVC_API
				      "\",method=\"write\",code=\"2xx\"}"),
		  1, "the job's upload");
	ASSERT_GE(scrape_sample(text, "sluice_http_request_duration_seconds_count{source_workload=\"" ID_JOB
				      "\",destination_service=\"" SVC_API
				      "\",method=\"read\",code=\"2xx\"}"),
		  3, "the job's GETs, timed");
	/* Prometheus' own parser is the host's (the VM image has none; the
	 * host's deps install it, and test_metrics needs it there). */
	if (!access("/usr/bin/promtool", X_OK))
		promtool_check(env, text);
	else
		printf("promtool not installed here: the exposition format is not checked\n");
	free(text);
	/* Both smuggling tables were refused on A: by its deciding gate on one
	 * node, by its observing one across the tunnel. */
	text = scrape(env, env->ns_a, METRICS_URL);
	if (!text)
		return;
	ASSERT_EQ(scrape_sample(text, "sluice_http_connections_refused_total"),
		  2 * (sizeof(smuggling) / sizeof(smuggling[0]) + 1),
		  "the smuggling tables' connections, refused whole");
	free(text);
}

void test_http_service(struct sl_env *env)
{
	struct world w = { .nginx_a = -1, .nginx_b = -1 };

	if (!ASSERT_OK(env_cgroup_add(env, EDGE_CGROUP), "the edge workload's cgroup") ||
	    !ASSERT_OK(policy_text(env, w.policy_b, sizeof(w.policy_b)), "the policy"))
		return;
	memcpy(w.policy_a, w.policy_b, sizeof(w.policy_a));
	snprintf(w.workloads, sizeof(w.workloads), "  - cgroup: " EDGE_CGROUP "\n"
						   "    id: " ID_EDGE "\n");
	w.cfg = (struct mesh_cfg){
		.policy_a = w.policy_a,
		.policy_b = w.policy_b,
		.extra_workloads_a = w.workloads,
		.vouch_extra_b = ID_EDGE,
		.extra_a = "audit:\n"
			   "  http_allows: true\n",
		.extra_b = "audit:\n"
			   "  http_allows: true\n"
			   "http:\n"
			   "  edge_workloads: [" ID_EDGE "]\n",
	};
	if (!ASSERT_OK(mesh_setup(env, &w.cfg), "two agents"))
		return;
	w.nginx_b = nginx_start(env, "b", env->ns_b, env->ip4_b, PORT_API);
	w.nginx_a = nginx_start(env, "a", env->ns_a, env->ip4_a, PORT_LOCAL);
	if (!ASSERT_GE(w.nginx_b, 1, "nginx on node B") ||
	    !ASSERT_GE(w.nginx_a, 1, "nginx on node A"))
		goto out;
	if (test__start_subtest("keepalive_across_nodes"))
		keepalive_get_then_delete(env, env->ip4_b, PORT_API, "b");
	if (test__start_subtest("keepalive_on_one_node"))
		keepalive_get_then_delete(env, env->ip4_a, PORT_LOCAL, "a");
	if (test__start_subtest("pipelined"))
		pipelined(env);
	if (test__start_subtest("chunked_upload"))
		chunked_upload(env);
	if (test__start_subtest("upgrade"))
		upgrade(env, &w);
	if (test__start_subtest("smuggling_across_nodes"))
		smuggling_refused(env, env->ip4_b, PORT_API, "request-out", "b");
	if (test__start_subtest("smuggling_on_one_node"))
		smuggling_refused(env, env->ip4_a, PORT_LOCAL, "request", "a");
	if (test__start_subtest("edge_assertions"))
		edge_assertions(env, &w);
	if (test__start_subtest("traced"))
		traced(env);
	if (test__start_subtest("metrics"))
		metrics(env);
out:
	EVP_PKEY_free(w.key_a);
	EVP_PKEY_free(w.key_b);
	X509_free(w.cert_a);
	X509_free(w.cert_b);
}
