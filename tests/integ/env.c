// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "env.h"
#include "harness.h"
#include "servers.h"

#define NETNS_RUN_DIR "/run/netns"
#define BPFFS_DIR "/sys/fs/bpf"
#define TMP_DIR "/tmp"
#define CGROUP_EMPTY_TIMEOUT_MS 5000
#define AGENT_STOP_TIMEOUT_MS 3000
#define IP_TIMEOUT_MS 10000

/* The cgroups every test gets; extra ones come from env_cgroup_add. */
static const char *const std_cgroups[] = {"sluiced", "job", "notebook", "unmanaged"};

/*
 * Directory walking with getdents64 and stack buffers only: the same code
 * runs from the SIGINT/SIGTERM handler, where opendir()'s malloc is not safe.
 */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

typedef void (*dirent_fn)(const char *dir, const char *name, unsigned char type, void *ctx);

static void walk_dir(const char *dir, dirent_fn fn, void *ctx)
{
	char buf[4096] __attribute__((aligned(8)));
	long n;
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			fn(dir, d->d_name, d->d_type, ctx);
		}
	}
	close(fd);
}

static void rm_tree(const char *path);

static void rm_entry(const char *dir, const char *name, unsigned char type, void *ctx)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (type == DT_DIR)
		rm_tree(path);
	else
		unlink(path);
}

/* rm -rf; on bpffs unlinking a pinned link drops the pin's reference. */
static void rm_tree(const char *path)
{
	walk_dir(path, rm_entry, NULL);
	rmdir(path);
}

static void rmdir_cgroup_entry(const char *dir, const char *name, unsigned char type, void *ctx)
{
	char path[PATH_MAX];
	int *failed = ctx;

	if (type != DT_DIR)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	walk_dir(path, rmdir_cgroup_entry, ctx);
	if (rmdir(path) && errno != ENOENT)
		(*failed)++;
}

/* Cgroup files cannot be unlinked: remove the directories bottom-up. */
static int rmdir_cgroup_tree(const char *path)
{
	int failed = 0;

	walk_dir(path, rmdir_cgroup_entry, &failed);
	if (rmdir(path) && errno != ENOENT)
		failed++;
	return failed ? -EBUSY : 0;
}

static int write_str(const char *path, const char *s)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, s, strlen(s));
	close(fd);
	return ret;
}

static void kill_procs_entry(const char *dir, const char *name, unsigned char type, void *ctx);

/* Without cgroup.kill (before 5.14): SIGKILL every pid in cgroup.procs. */
static void kill_procs(const char *cg)
{
	char path[PATH_MAX], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			for (char *p = buf; *p;) {
				long pid = strtol(p, &p, 10);

				if (pid > 0)
					kill(pid, SIGKILL);
				while (*p && !isdigit((unsigned char)*p))
					p++;
			}
		}
		close(fd);
	}
	walk_dir(cg, kill_procs_entry, NULL);
}

static void kill_procs_entry(const char *dir, const char *name, unsigned char type, void *ctx)
{
	char path[PATH_MAX];

	if (type != DT_DIR)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	kill_procs(path);
}

static bool cgroup_populated(const char *cg)
{
	char path[PATH_MAX], buf[256];

	snprintf(path, sizeof(path), "%s/cgroup.events", cg);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	return !strstr(buf, "populated 0");
}

/* Kills every process in the cgroup subtree and waits until it is empty
 * (an exited child counts as gone: zombies do not populate a cgroup). With
 * reap, also reaps our children on the way: at teardown they are all this
 * test's and nobody else waits for them. */
static int cgroup_kill_tree(const char *cg, bool reap)
{
	char path[PATH_MAX];
	long long deadline = now_ms() + CGROUP_EMPTY_TIMEOUT_MS;

	snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
	if (access(cg, F_OK))
		return 0;
	do {
		if (write_str(path, "1"))
			kill_procs(cg);
		while (reap && waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!cgroup_populated(cg))
			return 0;
		sleep_ms(10);
	} while (now_ms() < deadline);
	return -ETIMEDOUT;
}

static void netns_delete(const char *ns)
{
	char path[PATH_MAX];

	/* What `ip netns del` does; the veth pair goes with the namespace. */
	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, ns);
	umount2(path, MNT_DETACH);
	unlink(path);
}

int netns_join(const char *ns)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		ret = -errno;
	close(fd);
	return ret;
}

void env_track_child(struct sl_env *env, pid_t pid)
{
	if (env->nr_children < ENV_MAX_CHILDREN)
		env->children[env->nr_children++] = pid;
}

void env_untrack_child(struct sl_env *env, pid_t pid)
{
	for (int i = 0; i < env->nr_children; i++) {
		if (env->children[i] == pid) {
			env->children[i] = env->children[--env->nr_children];
			return;
		}
	}
}

int env_ip(struct sl_env *env, const char *fmt, ...)
{
	char cmd[512], words[512], *argv[32], *save = NULL, *out = NULL, *err = NULL;
	int argc = 0, ret;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	printf("ip %s\n", cmd);
	memcpy(words, cmd, sizeof(words));
	argv[argc++] = "ip";
	for (char *t = strtok_r(words, " ", &save); t && argc < 31; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	ret = run_argv(argv, &out, &err, IP_TIMEOUT_MS);
	if (ret)
		printf("%s: FAILED (exit %d): ip %s\n%s%s", env->test, ret, cmd, out ? out : "",
		       err ? err : "");
	free(out);
	free(err);
	return ret ? -1 : 0;
}

void env_cgroup(const struct sl_env *env, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", env->cg_root, name);
}

int env_cgroup_add(struct sl_env *env, const char *name)
{
	char path[PATH_MAX];

	env_cgroup(env, name, path, sizeof(path));
	if (mkdir(path, 0755)) {
		printf("mkdir %s: %s\n", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int env_cgroup_remove(struct sl_env *env, const char *name)
{
	char path[PATH_MAX];
	int ret;

	env_cgroup(env, name, path, sizeof(path));
	ret = cgroup_kill_tree(path, false);
	if (!ret)
		ret = rmdir_cgroup_tree(path);
	if (ret)
		printf("cannot remove cgroup %s: %s\n", path, strerror(-ret));
	return ret;
}

uint64_t env_cgroup_id(const struct sl_env *env, const char *name)
{
	char path[PATH_MAX];
	uint64_t id = 0;

	env_cgroup(env, name, path, sizeof(path));
	if (cgroup_id(path, &id))
		return 0;
	return id;
}

int env_cgroup_join(const struct sl_env *env, const char *name)
{
	char path[PATH_MAX], pid[16];

	env_cgroup(env, name, path, sizeof(path));
	strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_str(path, pid);
}

void env_path(const struct sl_env *env, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", env->tmp_dir, file);
}

void env_node_addrs(const struct sl_env *env, char node, char *buf, size_t len)
{
	const char *ip4 = node == 'a' ? env->ip4_a : env->ip4_b;
	const char *ip6 = node == 'a' ? env->ip6_a : env->ip6_b;

	if (env->has_ipv6)
		snprintf(buf, len, "%s/32, \"%s\"", ip4, ip6);
	else
		snprintf(buf, len, "%s/32", ip4);
}

int env_write_file(struct sl_env *env, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int ret = 0;
	va_list ap;
	FILE *f;

	env_path(env, file, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		printf("cannot write %s: %s\n", tmp, strerror(errno));
		return -errno;
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f))
		ret = -errno;
	/* Replace in one step: a reload must never see half a file. */
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		printf("cannot write %s: %s\n", path, strerror(-ret));
	return ret;
}

static int make_netns(struct sl_env *env)
{
	const char *a = env->ns_a, *b = env->ns_b;
	char mac_a[24], mac_b[24];

	snprintf(mac_a, sizeof(mac_a), "02:00:00:00:%02x:01", env->net & 0xff);
	snprintf(mac_b, sizeof(mac_b), "02:00:00:00:%02x:02", env->net & 0xff);

	if (env_ip(env, "netns add %s", a))
		return -1;
	env->made_ns_a = true;
	if (env_ip(env, "netns add %s", b))
		return -1;
	env->made_ns_b = true;
	if (env_ip(env, "-n %s link set lo up", a) || env_ip(env, "-n %s link set lo up", b) ||
	    env_ip(env,
		   "-n %s link add eth0 address %s type veth peer name eth0 address %s "
		   "netns %s",
		   a, mac_a, mac_b, b) ||
	    env_ip(env, "-n %s addr add %s/24 dev eth0", a, env->ip4_a) ||
	    env_ip(env, "-n %s addr add %s/24 dev eth0", b, env->ip4_b))
		return -1;
	/* nodad: usable at once, not after DAD's second. Static neighbours:
	 * the first neighbour solicitation on a fresh veth goes unanswered,
	 * which would stall each test's first IPv6 connection for a second. */
	if (env->has_ipv6 && (env_ip(env, "-n %s addr add %s/64 dev eth0 nodad", a, env->ip6_a) ||
			      env_ip(env, "-n %s addr add %s/64 dev eth0 nodad", b, env->ip6_b) ||
			      env_ip(env, "-n %s neigh add %s lladdr %s dev eth0 nud permanent", a,
				     env->ip6_b, mac_b) ||
			      env_ip(env, "-n %s neigh add %s lladdr %s dev eth0 nud permanent", b,
				     env->ip6_a, mac_a)))
		return -1;
	if (env_ip(env, "-n %s link set eth0 up", a) || env_ip(env, "-n %s link set eth0 up", b))
		return -1;
	return 0;
}

static int make_cgroups(struct sl_env *env)
{
	struct errmsg err = {};
	int ret;

	ret = cgroup2_mount(env->cg_mount, sizeof(env->cg_mount), &err);
	if (ret) {
		printf("%s\n", err.msg);
		return ret;
	}
	snprintf(env->cg_root, sizeof(env->cg_root), "%s/%s", env->cg_mount, env->name);
	if (mkdir(env->cg_root, 0755)) {
		printf("mkdir %s: %s\n", env->cg_root, strerror(errno));
		return -errno;
	}
	env->made_cg = true;
	for (size_t i = 0; i < sizeof(std_cgroups) / sizeof(std_cgroups[0]); i++) {
		ret = env_cgroup_add(env, std_cgroups[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int env_cgroup_root_b(struct sl_env *env, const char *agent_cgroup)
{
	char path[PATH_MAX];

	snprintf(env->cg_root_b, sizeof(env->cg_root_b), "%s-b", env->cg_root);
	if (mkdir(env->cg_root_b, 0755)) {
		printf("mkdir %s: %s\n", env->cg_root_b, strerror(errno));
		return -errno;
	}
	env->made_cg_b = true;
	snprintf(path, sizeof(path), "%s/%s", env->cg_root_b, agent_cgroup);
	if (mkdir(path, 0755)) {
		printf("mkdir %s: %s\n", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int env_setup(struct sl_env *env, const char *test, int net)
{
	memset(env, 0, sizeof(*env));
	snprintf(env->test, sizeof(env->test), "%s", test);
	snprintf(env->name, sizeof(env->name), "sl%d-%s", getpid(), test);
	env->net = net;
	snprintf(env->ns_a, sizeof(env->ns_a), "%s-a", env->name);
	snprintf(env->ns_b, sizeof(env->ns_b), "%s-b", env->name);
	snprintf(env->ip4_a, sizeof(env->ip4_a), "10.%d.0.1", net);
	snprintf(env->ip4_b, sizeof(env->ip4_b), "10.%d.0.2", net);
	snprintf(env->ip6_a, sizeof(env->ip6_a), "fd%d::1", net);
	snprintf(env->ip6_b, sizeof(env->ip6_b), "fd%d::2", net);
	env->has_ipv6 = !access("/proc/net/if_inet6", F_OK);
	snprintf(env->pin_dir, sizeof(env->pin_dir), "%s/%s", BPFFS_DIR, env->name);

	snprintf(env->tmp_dir, sizeof(env->tmp_dir), "%s/%s-XXXXXX", TMP_DIR, env->name);
	if (!mkdtemp(env->tmp_dir)) {
		printf("mkdtemp %s: %s\n", env->tmp_dir, strerror(errno));
		env->tmp_dir[0] = '\0';
		goto fail;
	}
	env->made_tmp = true;
	env_path(env, "sluiced.log", env->agent_log, sizeof(env->agent_log));
	env_path(env, "sluiced-b.log", env->agent_b_log, sizeof(env->agent_b_log));
	snprintf(env->pin_dir_b, sizeof(env->pin_dir_b), "%s-b", env->pin_dir);
	if (make_cgroups(env) || make_netns(env))
		goto fail;
	return 0;
fail:
	printf("%s: environment setup failed\n", test);
	env_teardown(env, false);
	return -1;
}

static void print_log(const char *path)
{
	char *log = read_file_from(path, 0);

	if (!log)
		return;
	printf("---- sluiced log (%s) ----\n%s---- end of sluiced log ----\n", path, log);
	free(log);
}

static void stop_agent(pid_t *pid, bool quiet)
{
	if (*pid <= 0)
		return;
	kill(*pid, quiet ? SIGKILL : SIGTERM);
	if (wait_child(*pid, NULL, AGENT_STOP_TIMEOUT_MS) == -ETIMEDOUT) {
		if (!quiet)
			printf("sluiced (pid %d) ignored SIGTERM: SIGKILL\n", *pid);
		kill(*pid, SIGKILL);
		wait_child(*pid, NULL, AGENT_STOP_TIMEOUT_MS);
	}
	*pid = 0;
}

/*
 * One teardown for every way a test ends. quiet: called from a signal
 * handler, so no stdio and no thread joins (the process exits next).
 * show_log: print the agents' logs, once they have stopped and said so.
 */
static void teardown(struct sl_env *env, bool quiet, bool show_log)
{
	stop_agent(&env->agent_pid, quiet);
	stop_agent(&env->agent_b_pid, quiet);
	for (int i = 0; i < env->nr_children; i++) {
		kill(env->children[i], SIGKILL);
		wait_child(env->children[i], NULL, AGENT_STOP_TIMEOUT_MS);
	}
	env->nr_children = 0;
	if (show_log && env->made_tmp) {
		print_log(env->agent_log);
		print_log(env->agent_b_log);
	}
	if (env->made_cg && cgroup_kill_tree(env->cg_root, true) && !quiet)
		printf("teardown: processes survive in %s\n", env->cg_root);
	if (env->made_cg_b && cgroup_kill_tree(env->cg_root_b, true) && !quiet)
		printf("teardown: processes survive in %s\n", env->cg_root_b);
	if (!quiet) {
		/* Each takes itself off the list. */
		while (env->nr_servers)
			server_stop(env->servers[0]);
	}
	if (env->pin_dir[0])
		rm_tree(env->pin_dir);
	if (env->pin_dir_b[0])
		rm_tree(env->pin_dir_b);
	if (env->made_cg_b && rmdir_cgroup_tree(env->cg_root_b) && !quiet)
		printf("teardown: cannot remove %s\n", env->cg_root_b);
	env->made_cg_b = false;
	if (env->made_cg && rmdir_cgroup_tree(env->cg_root) && !quiet)
		printf("teardown: cannot remove %s\n", env->cg_root);
	env->made_cg = false;
	if (env->made_ns_a)
		netns_delete(env->ns_a);
	if (env->made_ns_b)
		netns_delete(env->ns_b);
	env->made_ns_a = env->made_ns_b = false;
	/* Detached: an agent that SIGKILL did not reap yet may hold a file. */
	if (env->made_tmpfs && umount2(env->tmpfs, MNT_DETACH) && !quiet)
		printf("teardown: cannot unmount %s: %s\n", env->tmpfs, strerror(errno));
	env->made_tmpfs = false;
	if (env->made_tmp)
		rm_tree(env->tmp_dir);
	env->made_tmp = false;
}

int env_mount_tmpfs(struct sl_env *env, const char *dir, const char *size)
{
	char opts[64];

	if (env->made_tmpfs)
		return -EBUSY;
	env_path(env, dir, env->tmpfs, sizeof(env->tmpfs));
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mkdir(env->tmpfs, 0700))
		return -errno;
	if (mount("tmpfs", env->tmpfs, "tmpfs", MS_NOSUID | MS_NODEV, opts)) {
		int err = -errno;

		printf("mount tmpfs (%s) on %s: %s\n", opts, env->tmpfs, strerror(-err));
		return err;
	}
	env->made_tmpfs = true;
	return 0;
}

void env_teardown(struct sl_env *env, bool failed)
{
	teardown(env, false, failed);
}

void env_emergency_teardown(struct sl_env *env)
{
	teardown(env, true, false);
}

/* Whether pid is a live integ_progs: a zombie, or a recycled pid now
 * running something else, no longer owns what it left behind. */
static bool runner_alive(long pid)
{
	char path[64], buf[512], *state;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	/* "pid (comm) S ...": comm may hold spaces, the state follows the
	 * last ')'. */
	state = strrchr(buf, ')');
	if (!state || state[1] != ' ' || state[2] == 'Z' || state[2] == 'X')
		return false;
	return strstr(buf, "(integ_progs)") != NULL;
}

/* "sl<pid>-..." whose runner is gone; 0 otherwise. */
static pid_t stale_pid(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, "sl", 2) || !isdigit((unsigned char)name[2]))
		return 0;
	pid = strtol(name + 2, &end, 10);
	if (*end != '-' || pid <= 0 || runner_alive(pid))
		return 0;
	return pid;
}

static void stale_netns(const char *dir, const char *name, unsigned char type, void *ctx)
{
	if (stale_pid(name))
		netns_delete(name);
}

/* A killed run leaves its tmpfs (env_mount_tmpfs) mounted in its temp
 * dir: rm_tree would empty it and then fail on the mount point. */
static void umount_below(const char *path)
{
	size_t len = strlen(path);
	char line[PATH_MAX + 256], mnt[PATH_MAX];
	FILE *f = fopen("/proc/self/mounts", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %4095s", mnt) == 1 && !strncmp(mnt, path, len) &&
		    mnt[len] == '/')
			umount2(mnt, MNT_DETACH);
	}
	fclose(f);
}

static void stale_tree(const char *dir, const char *name, unsigned char type, void *ctx)
{
	char path[PATH_MAX];

	if (type != DT_DIR || !stale_pid(name))
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	umount_below(path);
	rm_tree(path);
}

static void stale_cgroup(const char *dir, const char *name, unsigned char type, void *ctx)
{
	char path[PATH_MAX];

	if (type != DT_DIR || !stale_pid(name))
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cgroup_kill_tree(path, false);
	rmdir_cgroup_tree(path);
}

void env_remove_stale(void)
{
	char cg[PATH_MAX];

	walk_dir(NETNS_RUN_DIR, stale_netns, NULL);
	if (!cgroup2_mount(cg, sizeof(cg), NULL))
		walk_dir(cg, stale_cgroup, NULL);
	walk_dir(BPFFS_DIR, stale_tree, NULL);
	walk_dir(TMP_DIR, stale_tree, NULL);
}
