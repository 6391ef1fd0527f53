// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "edge_env.h"
#include "env.h"
#include "harness.h"

#define NGINX_READY_MS 10000
#define NGINX_STOP_MS 5000
#define CURL_MS 15000
#define CURL_HEADERS "edge-curl.hdr"
#define API_CONF "edge-api.conf"
#define API_PID "edge-api.pid"

/* Temp files of both nginx, which would otherwise go to /var/lib/nginx. */
static void temp_paths(const struct sl_env *env, const char *who, char *buf, size_t len)
{
	const char *kinds[] = { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" };
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && off < len; i++)
		off += snprintf(buf + off, len - off, "  %s_temp_path %s/%s-tmp-%s;\n", kinds[i],
				env->tmp_dir, who, kinds[i]);
}

int edge_prepare(struct sl_env *env, struct edge_nginx *n)
{
	char dir[PATH_MAX], temps[2048];

	memset(n, 0, sizeof(*n));
	n->pid = -1;
	env_path(env, EDGE_RENDER_DIR, dir, sizeof(dir));
	env_path(env, EDGE_NGINX_CONF, n->conf, sizeof(n->conf));
	env_path(env, EDGE_NGINX_PID, n->pidfile, sizeof(n->pidfile));
	env_path(env, "edge-nginx-error.log", n->error_log, sizeof(n->error_log));
	/* The agent refuses to render into a directory others may write. */
	if ((mkdir(dir, 0750) && errno != EEXIST) || chmod(dir, 0750))
		return -errno;
	temp_paths(env, "edge", temps, sizeof(temps));
	return env_write_file(env, EDGE_NGINX_CONF,
			      "daemon off;\n"
			      "master_process on;\n"
			      "worker_processes %d;\n"
			      "user root root;\n"
			      "pid %s;\n"
			      "error_log %s info;\n"
			      "events { worker_connections 256; }\n"
			      "http {\n"
			      "  access_log off;\n"
			      "%s"
			      "  include %s/" EDGE_LIVE_CONF ";\n"
			      "}\n",
			      EDGE_WORKERS, n->pidfile, n->error_log, temps, env->tmp_dir);
}

void edge_config_yaml(const struct sl_env *env, const char *extra, char *buf, size_t len)
{
	snprintf(buf, len,
		 "edge:\n"
		 "  socket: %s/run/authz.sock\n"
		 "  listen: " EDGE_AGENT_LISTEN "\n"
		 "  render_dir: %s/" EDGE_RENDER_DIR "\n"
		 "  nginx_conf: %s/" EDGE_NGINX_CONF "\n"
		 "  nginx_pid: %s/" EDGE_NGINX_PID "\n"
		 "%s",
		 env->tmp_dir, env->tmp_dir, env->tmp_dir, env->tmp_dir, extra ?: "");
}

/* nginx -c conf in ns, in the workload cgroup when cgroup is not NULL;
 * ready once it wrote pidfile, which it does after binding. */
static pid_t spawn_nginx(struct sl_env *env, const char *ns, const char *cgroup, const char *conf,
			 const char *pidfile, const char *error_log)
{
	long long deadline;
	pid_t pid;

	unlink(pidfile);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		child_reset_signals();
		if ((cgroup && env_cgroup_join(env, cgroup)) || netns_join(ns))
			_exit(126);
		execlp("nginx", "nginx", "-c", conf, "-p", env->tmp_dir, (char *)NULL);
		_exit(127);
	}
	env_track_child(env, pid);
	deadline = now_ms() + NGINX_READY_MS;
	while (access(pidfile, F_OK)) {
		if (now_ms() > deadline || !wait_child(pid, NULL, 0)) {
			printf("nginx did not start (see %s)\n", error_log);
			kill(pid, SIGKILL);
			wait_child(pid, NULL, NGINX_STOP_MS);
			env_untrack_child(env, pid);
			return -1;
		}
		sleep_ms(20);
	}
	return pid;
}

int edge_nginx_start(struct sl_env *env, struct edge_nginx *n)
{
	char live[PATH_MAX];
	long long deadline = now_ms() + NGINX_READY_MS;

	env_path(env, EDGE_LIVE_CONF, live, sizeof(live));
	while (access(live, R_OK)) {
		if (now_ms() > deadline) {
			printf("the agent rendered no %s\n", live);
			return -ENOENT;
		}
		sleep_ms(50);
	}
	n->pid = spawn_nginx(env, env->ns_a, EDGE_CGROUP, n->conf, n->pidfile, n->error_log);
	return n->pid > 0 ? 0 : -EIO;
}

void edge_nginx_stop(struct sl_env *env, struct edge_nginx *n)
{
	if (n->pid <= 0)
		return;
	/* SIGQUIT: a graceful stop, the workers end before the master. */
	kill(n->pid, SIGQUIT);
	if (wait_child(n->pid, NULL, NGINX_STOP_MS)) {
		kill(n->pid, SIGKILL);
		wait_child(n->pid, NULL, NGINX_STOP_MS);
	}
	env_untrack_child(env, n->pid);
	n->pid = -1;
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], stat[512], *p;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, stat, sizeof(stat)) <= 0)
		return -1;
	/* comm may hold spaces and parentheses: the state follows the last ')'. */
	p = strrchr(stat, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

int edge_nginx_workers_in_cgroup(struct sl_env *env, const struct edge_nginx *n)
{
	char path[PATH_MAX], *procs, *line, *save = NULL;
	bool master = false;
	int workers = 0;

	env_cgroup(env, EDGE_CGROUP, path, sizeof(path));
	strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
	procs = read_file_from(path, 0);
	if (!procs)
		return -1;
	for (line = strtok_r(procs, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		pid_t pid = atoi(line);

		master |= pid == n->pid;
		workers += ppid_of(pid) == n->pid;
	}
	free(procs);
	return master ? workers : -1;
}

pid_t edge_api_start(struct sl_env *env)
{
	char conf[PATH_MAX], pidfile[PATH_MAX], log[PATH_MAX], temps[2048];

	env_path(env, API_CONF, conf, sizeof(conf));
	env_path(env, API_PID, pidfile, sizeof(pidfile));
	env_path(env, "edge-api-error.log", log, sizeof(log));
	temp_paths(env, "api", temps, sizeof(temps));
	/* underscores_in_headers: a client's X_Sluice_Assertion, had the edge
	 * let it through, would show in $http_x_sluice_assertion here. */
	if (env_write_file(env, API_CONF,
			   "daemon off;\n"
			   "master_process off;\n"
			   "pid %s;\n"
			   "error_log %s info;\n"
			   "events { worker_connections 64; }\n"
			   "http {\n"
			   "  access_log off;\n"
			   "%s"
			   "  underscores_in_headers on;\n"
			   "  server {\n"
			   "    listen %s:%d;\n"
			   "    default_type text/plain;\n"
			   "    location / {\n"
			   "      return 200 \"method=$request_method\\n"
			   "uri=$request_uri\\n"
			   "host=$http_host\\n"
			   "assertion=$http_x_sluice_assertion\\n"
			   "caller=$http_x_sluice_caller\\n"
			   "roles=$http_x_sluice_roles\\n"
			   "rule=$http_x_sluice_rule\\n"
			   "authorization=$http_authorization\\n"
			   "\";\n"
			   "    }\n"
			   "  }\n"
			   "}\n",
			   pidfile, log, temps, env->ip4_b, EDGE_API_PORT))
		return -1;
	return spawn_nginx(env, env->ns_b, NULL, conf, pidfile, log);
}

/* The request's headers, into a 0600 file for curl -H @file: a token in
 * argv would be world-readable in /proc. */
static int write_headers(struct sl_env *env, const struct edge_http_req *req, char *path,
			 size_t len)
{
	FILE *f;
	int fd, ret;

	env_path(env, CURL_HEADERS, path, len);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	fprintf(f, "Host: %s\n", req->host ?: EDGE_HOST);
	if (req->token)
		fprintf(f, "Authorization: Bearer %s\n", req->token);
	fputs(req->headers ?: "", f);
	ret = fclose(f) ? -errno : 0;
	return ret;
}

/* curl -i: the head, a blank line, the body. */
static int split_response(char *out, struct edge_http_resp *resp)
{
	char *end = strstr(out, "\r\n\r\n");

	if (!end || sscanf(out, "HTTP/%*s %ld", &resp->status) != 1)
		return -EPROTO;
	*end = '\0';
	resp->head = strdup(out);
	resp->body = strdup(end + 4);
	return resp->head && resp->body ? 0 : -ENOMEM;
}

int edge_http(struct sl_env *env, const struct edge_http_req *req, struct edge_http_resp *resp)
{
	char ns[160], url[PATH_MAX], hdrs[PATH_MAX], at[PATH_MAX + 1], body[PATH_MAX + 1];
	char *out = NULL, *err = NULL;
	char *argv[] = { "nsenter", ns, "curl", "-sS", "-i", "--path-as-is", "--max-time", "10",
			 "-X", (char *)(req->method ?: "GET"), "-H", at, url, NULL, NULL, NULL };
	int ret;

	memset(resp, 0, sizeof(*resp));
	snprintf(ns, sizeof(ns), "--net=/run/netns/%s", env->ns_a);
	if (req->url)
		snprintf(url, sizeof(url), "%s", req->url);
	else
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", EDGE_PORT, req->path);
	ret = write_headers(env, req, hdrs, sizeof(hdrs));
	if (ret)
		return ret;
	snprintf(at, sizeof(at), "@%s", hdrs);
	/* In the slots after the URL, which end argv until then. */
	if (req->body_file) {
		snprintf(body, sizeof(body), "@%s", req->body_file);
		argv[13] = "--data-binary";
		argv[14] = body;
	}
	ret = run_argv(argv, &out, &err, CURL_MS);
	unlink(hdrs);
	if (ret) {
		printf("curl %s %s: exit %d: %s\n", req->method ?: "GET", url, ret, err ?: "");
		ret = ret < 0 ? ret : -EIO;
	} else {
		ret = split_response(out, resp);
		if (ret)
			printf("curl %s %s: not an HTTP response\n", req->method ?: "GET", url);
	}
	/* A body may echo what was sent (the API's does). */
	if (out)
		OPENSSL_cleanse(out, strlen(out));
	free(out);
	free(err);
	return ret;
}

void edge_http_resp_free(struct edge_http_resp *resp)
{
	if (resp->body)
		OPENSSL_cleanse(resp->body, strlen(resp->body));
	free(resp->head);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

bool edge_http_header(const struct edge_http_resp *resp, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *l = resp->head; l; l = strchr(l, '\n')) {
		l += *l == '\n';
		if (strncasecmp(l, name, n) || l[n] != ':')
			continue;
		l += n + 1;
		l += strspn(l, " \t");
		snprintf(buf, len, "%.*s", (int)strcspn(l, "\r\n"), l);
		return true;
	}
	return false;
}

bool edge_api_field(const char *body, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *l = body; l; l = strchr(l, '\n')) {
		l += *l == '\n';
		if (strncmp(l, name, n) || l[n] != '=')
			continue;
		l += n + 1;
		snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
		return true;
	}
	return false;
}
