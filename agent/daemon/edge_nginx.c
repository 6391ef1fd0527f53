// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rendered edge configs on disk: written, tested with nginx -t, switched
 * with one rename(2) of a symlink, pruned, and nginx told to reload. Every
 * file in the render directory is reached through the directory's
 * descriptor (*at() calls), opened once and checked, so a symlink planted
 * in place of the directory or of a file is never followed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "edge_nginx.h"
#include "edge_render.h"
#include "fileopen.h"
#include "log.h"

#define OUTER_MAX (1 << 20)
#define PID_FILE_MAX 32
#define TMP_LIVE ".live.conf.tmp"

static void gen_name(char *buf, size_t len, uint32_t gen)
{
	snprintf(buf, len, "edge-%u.conf", gen);
}

/* The directory's owner is the agent (root in production) and nobody else
 * may write it: whoever could would choose what nginx runs. */
static int open_render_dir(const char *dir, struct errmsg *err)
{
	struct stat st;
	int fd, ret;

	if (mkdir(dir, 0750) && errno != EEXIST)
		return errmsg_set(err, -errno, "edge: cannot create render_dir %s: %s (create its "
				  "parent, or set edge.render_dir)", dir, strerror(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "edge: render_dir %s: %s (it must be a directory, "
				  "not a symlink)", dir, strerror(errno));
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return errmsg_set(err, ret, "edge: render_dir %s: %s", dir, strerror(-ret));
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return errmsg_set(err, -EPERM, "edge: render_dir %s is owned by uid %u, not the "
				  "agent's %u: chown %u %s", dir, st.st_uid, geteuid(), geteuid(),
				  dir);
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		close(fd);
		return errmsg_set(err, -EPERM, "edge: render_dir %s: mode %04o is writable by "
				  "%s: chmod 750 %s", dir, st.st_mode & 07777,
				  st.st_mode & S_IWOTH ? "others" : "its group", dir);
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A new file holding text, durable before anyone renames it into use. */
static int write_new(int dirfd, const char *name, const char *text, mode_t mode)
{
	int fd, ret;

	if (unlinkat(dirfd, name, 0) && errno != ENOENT)
		return -errno;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, strlen(text));
	/* The umask may have taken bits; the mode is part of the contract. */
	if (!ret && fchmod(fd, mode))
		ret = -errno;
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (ret)
		unlinkat(dirfd, name, 0);
	return ret;
}

static int read_outer(const char *path, char **out, struct errmsg *err)
{
	struct stat st;
	ssize_t n;
	char *buf;
	int fd;

	fd = fileopen_read(path, &st);
	if (fd < 0)
		return errmsg_set(err, fd, "edge: nginx_conf %s: %s (install the outer config, "
				  "deploy/nginx-edge.conf)", path, strerror(-fd));
	if (!S_ISREG(st.st_mode) || st.st_size > OUTER_MAX) {
		close(fd);
		return errmsg_set(err, -EINVAL, "edge: nginx_conf %s: not a regular file of at "
				  "most %d bytes", path, OUTER_MAX);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return errmsg_set(err, -EIO, "edge: nginx_conf %s: short read", path);
	}
	buf[n] = 0;
	*out = buf;
	return 0;
}

/* Whether the hit at p is inside a comment: a '#' earlier on its line. */
static bool commented(const char *text, const char *p)
{
	while (p > text && p[-1] != '\n')
		if (*--p == '#')
			return true;
	return false;
}

/* The next occurrence of from at or after p that is not commented out. */
static const char *next_live(const char *text, const char *p, const char *from)
{
	while ((p = strstr(p, from)) && commented(text, p))
		p += strlen(from);
	return p;
}

/* text with every live (uncommented) occurrence of from replaced by to,
 * into *out. -ENOENT if there is none, -ENOMEM. */
static int replace_all(const char *text, const char *from, const char *to, char **out)
{
	size_t nf = strlen(from), nt = strlen(to), count = 0;
	const char *p;
	char *o;

	for (p = text; (p = next_live(text, p, from)); p += nf)
		count++;
	if (!count)
		return -ENOENT;
	*out = malloc(strlen(text) + count * nt + 1);
	if (!*out)
		return -ENOMEM;
	for (o = *out, p = text; count--;) {
		const char *hit = next_live(text, p, from);

		memcpy(o, p, (size_t)(hit - p));
		o += hit - p;
		memcpy(o, to, nt);
		o += nt;
		p = hit + nf;
	}
	strcpy(o, p);
	return 0;
}

/* "/etc/nginx/sluice-edge.conf" in dir "/etc/nginx" ->
 * "/etc/nginx/.sluice-edge.conf.sluice-test": a name no `include *.conf`
 * picks up. dir NULL: the outer config's own directory. */
static int test_copy_path(const char *outer, const char *dir, char *buf, size_t len)
{
	const char *slash = strrchr(outer, '/');
	const char *base = slash ? slash + 1 : outer;
	int n;

	if (dir)
		n = snprintf(buf, len, "%s/.%s.sluice-test", dir, base);
	else
		n = snprintf(buf, len, "%.*s.%s.sluice-test", (int)(base - outer), outer, base);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Next to the outer config, so its relative includes resolve as for the
 * running nginx; in render_dir when that directory is read-only (a
 * Kubernetes ConfigMap), where only absolute includes still work. */
static int write_test_copy(const struct config *cfg, const char *candidate, char *copy,
			   size_t copy_len, struct errmsg *err)
{
	char live[PATH_MAX], *outer = NULL, *text = NULL;
	int ret;

	snprintf(live, sizeof(live), "%s/" EDGE_NGINX_LIVE, cfg->edge.render_dir);
	ret = read_outer(cfg->edge.nginx_conf, &outer, err);
	if (ret)
		return ret;
	ret = replace_all(outer, live, candidate, &text);
	free(outer);
	if (ret == -ENOENT)
		return errmsg_set(err, ret, "edge: nginx_conf %s does not include %s: add "
				  "`include %s;` inside its http {} block", cfg->edge.nginx_conf,
				  live, live);
	if (ret)
		return errmsg_set(err, ret, "out of memory");
	ret = test_copy_path(cfg->edge.nginx_conf, NULL, copy, copy_len);
	if (!ret)
		ret = write_new(AT_FDCWD, copy, text, 0600);
	if (ret == -EROFS) {
		pr_warn("edge: %s is on a read-only file system: nginx -t runs on a copy in %s, "
			"where only absolute includes resolve as they do for nginx", copy,
			cfg->edge.render_dir);
		ret = test_copy_path(cfg->edge.nginx_conf, cfg->edge.render_dir, copy, copy_len);
		if (!ret)
			ret = write_new(AT_FDCWD, copy, text, 0600);
	}
	free(text);
	if (ret) {
		errmsg_set(err, ret, "edge: cannot write %s: %s", copy, strerror(-ret));
		*copy = 0;
	}
	return ret;
}

/* Runs argv with stdout and stderr into out (at most outlen - 1 bytes
 * kept, the rest read and dropped), killing it after timeout_ms. Returns
 * its wait status, or a negative errno (-ETIMEDOUT). */
static int run_bounded(char *const argv[], unsigned int timeout_ms, char *out, size_t outlen)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t mask, def;
	int pipefd[2], status, ret;
	size_t used = 0;
	bool eof = false;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	/* Its own process group: a timeout kills whatever it started too.
	 * Not the agent's blocked signals (its signalfd) or ignored SIGPIPE. */
	posix_spawnattr_init(&attr);
	sigemptyset(&mask);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &mask);
	posix_spawnattr_setsigdefault(&attr, &def);
	ret = -posix_spawn(&pid, argv[0], &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (ret) {
		close(pipefd[0]);
		return ret;
	}
	for (;;) {
		uint64_t now = mono_ns();
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		char chunk[512];
		ssize_t n;

		if (eof && waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now >= deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			status = -ETIMEDOUT;
			break;
		}
		if (eof) {
			/* Output closed: the child is exiting. */
			struct timespec ts = { .tv_nsec = 5 * 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			continue;
		n = read(pipefd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = true;
			continue;
		}
		if (used + 1 < outlen) {
			size_t take = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;

			memcpy(out + used, chunk, take);
			used += take;
		}
	}
	close(pipefd[0]);
	out[used] = 0;
	return status;
}

/* nginx's own verdict: the first [emerg] line from its level on, without
 * the "PID#TID: " after it (else the first line). */
static const char *nginx_reason(char *out)
{
	char *line = strstr(out, "[emerg]"), *nl;
	int skip = 0;

	if (line) {
		sscanf(line, "[emerg] %*d#%*d: %n", &skip);
		if (skip) {
			line += skip - (int)strlen("[emerg] ");
			memcpy(line, "[emerg] ", strlen("[emerg] "));
		}
	} else {
		line = out + strspn(out, "\n");
	}
	nl = strchr(line, '\n');
	if (nl)
		*nl = 0;
	return *line ? line : "no output";
}

/* The test runs inside the agent's event loop, which beats the heartbeat
 * only between events: it must end a second inside heartbeat_timeout. */
static unsigned int test_timeout_ms(const struct config *cfg)
{
	unsigned int hb = cfg->heartbeat_timeout_ms;

	if (!hb || hb >= EDGE_NGINX_TEST_TIMEOUT_MS + 1000)
		return EDGE_NGINX_TEST_TIMEOUT_MS;
	if (hb < EDGE_NGINX_TEST_MIN_MS + 1000)
		return EDGE_NGINX_TEST_MIN_MS;
	return hb - 1000;
}

static int nginx_test(const struct config *cfg, const char *copy, uint32_t gen,
		      struct errmsg *err)
{
	char *argv[] = { cfg->edge.nginx, "-t", "-q", "-c", (char *)copy, NULL };
	unsigned int timeout_ms = test_timeout_ms(cfg);
	char out[EDGE_NGINX_OUTPUT_MAX];
	int status;

	status = run_bounded(argv, timeout_ms, out, sizeof(out));
	if (status == -ETIMEDOUT)
		return errmsg_set(err, status, "edge: nginx -t on generation %u did not finish in "
				  "%u ms and was killed (heartbeat_timeout bounds it)", gen,
				  timeout_ms);
	if (status < 0)
		return errmsg_set(err, status, "edge: cannot run %s -t: %s (install nginx, or set "
				  "edge.nginx)", cfg->edge.nginx, strerror(-status));
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	return errmsg_set(err, -EINVAL, "edge: nginx -t refused generation %u: %s", gen,
			  nginx_reason(out));
}

int edge_nginx_prepare(const struct config *cfg, const struct policy *pol, uint32_t gen,
		       struct errmsg *err)
{
	char tmp[80], name[64], candidate[PATH_MAX], copy[PATH_MAX] = "";
	char *text = NULL;
	int dirfd, ret;

	ret = edge_render(pol, cfg, gen, &text, err);
	if (ret)
		return ret;
	dirfd = open_render_dir(cfg->edge.render_dir, err);
	if (dirfd < 0) {
		free(text);
		return dirfd;
	}
	gen_name(name, sizeof(name), gen);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	snprintf(candidate, sizeof(candidate), "%s/%s", cfg->edge.render_dir, tmp);
	ret = write_new(dirfd, tmp, text, 0640);
	free(text);
	if (ret) {
		errmsg_set(err, ret, "edge: cannot write %s: %s", candidate, strerror(-ret));
		goto out;
	}
	ret = write_test_copy(cfg, candidate, copy, sizeof(copy), err);
	if (!ret)
		ret = nginx_test(cfg, copy, gen, err);
	if (!ret && renameat(dirfd, tmp, dirfd, name))
		ret = errmsg_set(err, -errno, "edge: cannot rename %s: %s", candidate,
				 strerror(errno));
	if (!ret && fsync(dirfd))
		ret = errmsg_set(err, -errno, "edge: cannot sync %s: %s", cfg->edge.render_dir,
				 strerror(errno));
out:
	if (ret)
		unlinkat(dirfd, tmp, 0);
	if (*copy)
		unlink(copy);
	close(dirfd);
	return ret;
}

/* Whether name is "edge-<gen>.conf"; its gen in *gen. */
static bool parse_gen_name(const char *name, uint32_t *gen)
{
	char check[64];
	unsigned int g;

	if (sscanf(name, "edge-%u.conf", &g) != 1)
		return false;
	gen_name(check, sizeof(check), g);
	*gen = g;
	return !strcmp(check, name);
}

static void prune(int dirfd, uint32_t live)
{
	uint32_t newest = 0, g;
	struct dirent *d;
	int fd;
	DIR *dir;

	fd = dup(dirfd);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dir)))
		if (parse_gen_name(d->d_name, &g) && g > newest)
			newest = g;
	rewinddir(dir);
	while ((d = readdir(dir)))
		if (parse_gen_name(d->d_name, &g) && g != live && g + EDGE_NGINX_KEEP <= newest)
			unlinkat(dirfd, d->d_name, 0);
	closedir(dir);
}

static int read_pid(const char *path, pid_t *pid)
{
	char buf[PID_FILE_MAX], *end;
	struct stat st;
	long v;
	ssize_t n;
	int fd;

	fd = fileopen_read(path, &st);
	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	v = strtol(buf, &end, 10);
	if (v <= 1 || v > INT_MAX || (*end && *end != '\n'))
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

/* A stale pid file may name a pid some other program reuses now. */
static bool is_nginx(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return !strncmp(comm, "nginx", 5);
}

static void reload_nginx(const struct config *cfg, uint32_t gen)
{
	const char *path = cfg->edge.nginx_pid;
	pid_t pid;
	int ret;

	if (!path)
		return;
	ret = read_pid(path, &pid);
	if (ret) {
		pr_warn("edge: generation %u is in %s/" EDGE_NGINX_LIVE ", but nginx_pid %s: %s; "
			"nginx reads it when it starts", gen, cfg->edge.render_dir, path,
			ret == -EINVAL ? "holds no pid" : strerror(-ret));
		return;
	}
	if (!is_nginx(pid)) {
		pr_warn("edge: nginx_pid %s names pid %d, which is not nginx; not signalled "
			"(stale pid file?)", path, (int)pid);
		return;
	}
	if (kill(pid, SIGHUP))
		pr_warn("edge: cannot signal nginx (pid %d from %s): %s", (int)pid, path,
			strerror(errno));
	else
		pr_info("edge: generation %u live, nginx (pid %d) reloading", gen, (int)pid);
}

int edge_nginx_switch(const struct config *cfg, uint32_t gen, struct errmsg *err)
{
	char name[64];
	struct stat st;
	int dirfd, ret = 0;

	dirfd = open_render_dir(cfg->edge.render_dir, err);
	if (dirfd < 0)
		return dirfd;
	gen_name(name, sizeof(name), gen);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) {
		ret = errmsg_set(err, -ENOENT, "edge: no %s/%s for generation %u (never rendered, "
				 "or pruned); " EDGE_NGINX_LIVE " stays as it was",
				 cfg->edge.render_dir, name, gen);
		goto out;
	}
	/* The link is relative, so the directory may be mounted elsewhere. */
	if (unlinkat(dirfd, TMP_LIVE, 0) && errno != ENOENT)
		ret = -errno;
	if (!ret && symlinkat(name, dirfd, TMP_LIVE))
		ret = -errno;
	if (!ret && renameat(dirfd, TMP_LIVE, dirfd, EDGE_NGINX_LIVE))
		ret = -errno;
	if (!ret && fsync(dirfd))
		ret = -errno;
	if (ret) {
		unlinkat(dirfd, TMP_LIVE, 0);
		errmsg_set(err, ret, "edge: cannot point %s/" EDGE_NGINX_LIVE " at %s: %s",
			   cfg->edge.render_dir, name, strerror(-ret));
		goto out;
	}
	prune(dirfd, gen);
	reload_nginx(cfg, gen);
out:
	close(dirfd);
	return ret;
}
