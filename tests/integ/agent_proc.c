// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_proc.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "pinned.h"

#define AGENT_MAX_ARGS 8
#define AGENT_MAX_WRAP 12
#define AGENT_READY_TIMEOUT_MS 30000
#define AGENT_EXIT_TIMEOUT_MS 10000
#define POLL_MS 10

int agent_write_config(struct sl_env *env, const struct agent_cfg *cfg)
{
	char hb[64] = "";

	if (cfg->heartbeat_timeout)
		snprintf(hb, sizeof(hb), "heartbeat_timeout: %s\n", cfg->heartbeat_timeout);
	return env_write_file(env, CONFIG_FILE,
			      "node: node-a\n"
			      "trust_domain: " TRUST_DOMAIN "\n"
			      "cgroup_root: %s\n"
			      "agent_cgroup: sluiced\n"
			      "bpf_pin_path: %s\n"
			      "run_dir: %s/run\n"
			      "policy: " POLICY_FILE "\n"
			      "failure_mode: %s\n"
			      "%s"
			      "log_level: info\n"
			      "workloads:\n"
			      "  - cgroup: job\n"
			      "    id: " ID_JOB "\n"
			      "%s"
			      "  - cgroup: notebook\n"
			      "    id: " ID_NOTEBOOK "\n"
			      "%s"
			      "%s"
			      "%s",
			      env->cg_root, env->pin_dir, env->tmp_dir,
			      cfg->fail_open ? "open" : "closed", hb,
			      cfg->workload_keys ?: "", cfg->workload_keys ?: "",
			      cfg->extra_workloads ?: "", cfg->extra ?: "");
}

int agent_write_std_policy(struct sl_env *env)
{
	char addrs[128];

	if (env->has_ipv6)
		snprintf(addrs, sizeof(addrs), "%s/32, \"%s\"", env->ip4_b, env->ip6_b);
	else
		snprintf(addrs, sizeof(addrs), "%s/32", env->ip4_b);
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_DATA "\n"
			      "    addresses: [%s]\n"
			      "    ports: [7000, 7001, 7002, 7003]\n"
			      "  - name: " SVC_SECRET "\n"
			      "    addresses: [%s]\n"
			      "    ports: [7100]\n"
			      "rules:\n"
			      "  - name: jobs-use-data\n"
			      "    from: {kind: job}\n"
			      "    to: [" SVC_DATA ", " SVC_SECRET "]\n"
			      "    action: allow\n"
			      "  - name: notebooks-keep-out-of-secret\n"
			      "    from: {kind: notebook}\n"
			      "    to: [" SVC_SECRET "]\n"
			      "    action: deny\n",
			      addrs, addrs);
}

/* Node A's agent or, for the mesh tests, node B's: where each one's
 * config, log and pid live. */
struct agent_slot {
	const char *ns;
	const char *config_file;
	const char *log;
	pid_t *pid;
};

static struct agent_slot slot_of(struct sl_env *env, char node)
{
	if (node == 'b')
		return (struct agent_slot){ env->ns_b, CONFIG_FILE_B, env->agent_b_log,
					    &env->agent_b_pid };
	return (struct agent_slot){ env->ns_a, CONFIG_FILE, env->agent_log, &env->agent_pid };
}

/* wrap: NULL, or the NULL-terminated words that run sluiced (a program
 * that execs it in the same process, so the pid stays the agent's). */
static int spawn(struct sl_env *env, const struct agent_slot *s, const char *const *wrap,
		 va_list ap)
{
	char bin[PATH_MAX], config[PATH_MAX], *argv[AGENT_MAX_WRAP + AGENT_MAX_ARGS + 4];
	pid_t parent = getpid();
	int argc = 0, first, log_fd;
	const char *a;
	FILE *log;

	if (*s->pid > 0) {
		printf("agent_spawn: sluiced (pid %d) is still running\n", *s->pid);
		return -EBUSY;
	}
	snprintf(bin, sizeof(bin), "%s/sluiced", test__build_dir());
	env_path(env, s->config_file, config, sizeof(config));
	for (; wrap && *wrap && argc < AGENT_MAX_WRAP; wrap++)
		argv[argc++] = (char *)*wrap;
	first = argc;
	argv[argc++] = bin;
	argv[argc++] = "-c";
	argv[argc++] = config;
	while ((a = va_arg(ap, const char *)) && argc < first + AGENT_MAX_ARGS + 3)
		argv[argc++] = (char *)a;
	argv[argc] = NULL;

	/* A marker per start: one log holds every run of the test. */
	log = fopen(s->log, "a");
	if (!log) {
		printf("cannot open %s: %s\n", s->log, strerror(errno));
		return -errno;
	}
	fprintf(log, "==== integ_progs: starting");
	for (int i = 0; i < argc; i++)
		fprintf(log, " %s", argv[i]);
	fprintf(log, " in netns %s ====\n", s->ns);
	fclose(log);
	printf("starting");
	for (int i = 0; i < first; i++)
		printf(" %s", argv[i]);
	printf(" sluiced -c %s", config);
	for (int i = first + 3; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");

	fflush(stdout);
	*s->pid = fork();
	if (*s->pid < 0) {
		*s->pid = 0;
		printf("fork: %s\n", strerror(errno));
		return -errno;
	}
	if (!*s->pid) {
		int ret;

		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		log_fd = open(s->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (log_fd < 0)
			_exit(126);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		ret = netns_join(s->ns);
		if (ret) {
			dprintf(STDERR_FILENO, "integ_progs: setns %s: %s\n", s->ns,
				strerror(-ret));
			_exit(126);
		}
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "integ_progs: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

int agent_spawn(struct sl_env *env, ...)
{
	struct agent_slot s = slot_of(env, 'a');
	va_list ap;
	int ret;

	va_start(ap, env);
	ret = spawn(env, &s, NULL, ap);
	va_end(ap);
	return ret;
}

static bool slot_running(const struct agent_slot *s)
{
	int status;

	if (*s->pid <= 0)
		return false;
	if (waitpid(*s->pid, &status, WNOHANG) == *s->pid) {
		printf("sluiced in %s (pid %d) exited: %s %d\n", s->ns, *s->pid,
		       WIFEXITED(status) ? "status" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		*s->pid = 0;
		return false;
	}
	return true;
}

bool agent_running(struct sl_env *env)
{
	struct agent_slot s = slot_of(env, 'a');

	return slot_running(&s);
}

bool mesh_b_running(struct sl_env *env)
{
	struct agent_slot s = slot_of(env, 'b');

	return slot_running(&s);
}

static int wait_ready(struct sl_env *env, long from, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct sluice_config cfg;
	bool logged = false;

	while (now_ms() < deadline) {
		if (!agent_running(env))
			return -ECHILD;
		if (!logged) {
			char *log = agent_log(env, from);

			logged = log && strstr(log, "policy generation");
			free(log);
		}
		if (logged && !pinned_cfg(env, &cfg) && cfg.agent_pid == (__u32)env->agent_pid &&
		    mono_ns() - cfg.heartbeat_ns < cfg.heartbeat_timeout_ns)
			return 0;
		sleep_ms(POLL_MS);
	}
	printf("sluiced (pid %d) not ready after %d ms (log line: %s)\n", env->agent_pid,
	       timeout_ms, logged ? "yes" : "no");
	return -ETIMEDOUT;
}

int agent_start(struct sl_env *env, ...)
{
	struct agent_slot s = slot_of(env, 'a');
	long from = agent_log_size(env);
	va_list ap;
	int ret;

	va_start(ap, env);
	ret = spawn(env, &s, NULL, ap);
	va_end(ap);
	if (!ret)
		ret = wait_ready(env, from, AGENT_READY_TIMEOUT_MS);
	return ret;
}

int agent_start_wrapped(struct sl_env *env, const char *const *wrap, int ready_ms, ...)
{
	struct agent_slot s = slot_of(env, 'a');
	long from = agent_log_size(env);
	va_list ap;
	int ret;

	va_start(ap, ready_ms);
	ret = spawn(env, &s, wrap, ap);
	va_end(ap);
	if (!ret)
		ret = wait_ready(env, from, ready_ms);
	return ret;
}

static int slot_wait_exit(const struct agent_slot *s, int timeout_ms)
{
	int status, ret;

	if (*s->pid <= 0)
		return -ECHILD;
	ret = wait_child(*s->pid, &status, timeout_ms);
	if (ret)
		return ret;
	*s->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int agent_wait_exit(struct sl_env *env, int timeout_ms)
{
	struct agent_slot s = slot_of(env, 'a');

	return slot_wait_exit(&s, timeout_ms);
}

int agent_signal(struct sl_env *env, int sig)
{
	if (env->agent_pid <= 0)
		return -ECHILD;
	return kill(env->agent_pid, sig) ? -errno : 0;
}

int agent_stop(struct sl_env *env)
{
	int ret;

	ret = agent_signal(env, SIGTERM);
	if (ret)
		return ret;
	return agent_wait_exit(env, AGENT_EXIT_TIMEOUT_MS);
}

/*
 * Node B's agent is ready when it has said where its tunnel listens: that
 * line follows the listener's bind, and B has no workloads whose pinned
 * state a test would read.
 */
int mesh_start_b(struct sl_env *env, ...)
{
	struct agent_slot s = slot_of(env, 'b');
	long from = file_size(env->agent_b_log);
	long long deadline;
	va_list ap;
	int ret;

	if (from < 0)
		from = 0;
	va_start(ap, env);
	ret = spawn(env, &s, NULL, ap);
	va_end(ap);
	if (ret)
		return ret;
	deadline = now_ms() + AGENT_READY_TIMEOUT_MS;
	while (now_ms() < deadline) {
		char *log;
		bool ready;

		if (!slot_running(&s))
			return -ECHILD;
		log = read_file_from(env->agent_b_log, from);
		ready = log && strstr(log, "identity: mTLS tunnel on");
		free(log);
		if (ready)
			return 0;
		sleep_ms(POLL_MS);
	}
	printf("node B's sluiced (pid %d) not ready after %d ms\n", *s.pid,
	       AGENT_READY_TIMEOUT_MS);
	return -ETIMEDOUT;
}

int mesh_stop_b(struct sl_env *env)
{
	struct agent_slot s = slot_of(env, 'b');

	if (*s.pid <= 0)
		return -ECHILD;
	if (kill(*s.pid, SIGTERM))
		return -errno;
	return slot_wait_exit(&s, AGENT_EXIT_TIMEOUT_MS);
}

int mesh_kill_b(struct sl_env *env)
{
	struct agent_slot s = slot_of(env, 'b');

	if (*s.pid <= 0)
		return -ECHILD;
	if (kill(*s.pid, SIGKILL))
		return -errno;
	return slot_wait_exit(&s, AGENT_EXIT_TIMEOUT_MS);
}

long agent_log_size(struct sl_env *env)
{
	long n = file_size(env->agent_log);

	return n < 0 ? 0 : n;
}

char *agent_log(struct sl_env *env, long from)
{
	return read_file_from(env->agent_log, from);
}

bool agent_log_wait(struct sl_env *env, long from, const char *needle, int timeout_ms)
{
	return file_wait(env->agent_log, from, needle, timeout_ms);
}
