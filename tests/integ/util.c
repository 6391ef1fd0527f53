// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

#define FILE_POLL_MS 10

void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int wait_child(pid_t pid, int *status, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(5);
	}
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t got = 0;

	while (got < len) {
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += n;
	}
	return 0;
}

ssize_t read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

bool file_wait(const char *path, long from, const char *needle, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	do {
		char *text = read_file_from(path, from);
		bool found = text && strstr(text, needle);

		free(text);
		if (found)
			return true;
		sleep_ms(FILE_POLL_MS);
	} while (now_ms() < deadline);
	return false;
}

long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

char *read_file_from(const char *path, long offset)
{
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (offset > 0 && lseek(fd, offset, SEEK_SET) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		if (len + 1 >= cap) {
			char *n2 = realloc(buf, cap * 2);

			if (!n2) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = n2;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

void child_reset_signals(void)
{
	sigset_t none;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

struct capture {
	int fd;
	char *buf;
	size_t len, cap;
};

static int capture_read(struct capture *c)
{
	ssize_t n;

	if (c->len + 4096 + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8192;
		char *b = realloc(c->buf, cap);

		if (!b)
			return -ENOMEM;
		c->buf = b;
		c->cap = cap;
		c->buf[c->len] = '\0';
	}
	n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	c->len += n;
	c->buf[c->len] = '\0';
	return 1;
}

int run_argv(char *const argv[], char **out, char **err, int timeout_ms)
{
	struct capture cap[2] = {{.fd = -1}, {.fd = -1}};
	long long deadline = now_ms() + timeout_ms;
	int pout[2], perr[2], status, ret;
	pid_t pid;

	if (pipe2(pout, O_CLOEXEC))
		return -errno;
	if (pipe2(perr, O_CLOEXEC)) {
		close(pout[0]);
		close(pout[1]);
		return -errno;
	}
	pid = fork();
	if (!pid) {
		child_reset_signals();
		dup2(pout[1], STDOUT_FILENO);
		dup2(perr[1], STDERR_FILENO);
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pout[1]);
	close(perr[1]);
	if (pid < 0) {
		close(pout[0]);
		close(perr[0]);
		return -errno;
	}
	cap[0].fd = pout[0];
	cap[1].fd = perr[0];
	while (cap[0].fd >= 0 || cap[1].fd >= 0) {
		struct pollfd pfd[2] = {{.fd = cap[0].fd, .events = POLLIN},
					{.fd = cap[1].fd, .events = POLLIN}};
		long long left = deadline - now_ms();

		if (left <= 0 || poll(pfd, 2, left) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (cap[i].fd >= 0 && pfd[i].revents && capture_read(&cap[i]) <= 0) {
				close(cap[i].fd);
				cap[i].fd = -1;
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		if (cap[i].fd >= 0)
			close(cap[i].fd);
		if (!cap[i].buf)
			cap[i].buf = calloc(1, 1);
	}
	if (waitpid(pid, &status, 0) < 0)
		ret = -errno;
	else if (WIFEXITED(status))
		ret = WEXITSTATUS(status);
	else
		ret = 128 + WTERMSIG(status);
	*out = cap[0].buf;
	*err = cap[1].buf;
	return ret;
}

int count_substr(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

int fds_of(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}
