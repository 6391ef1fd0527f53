// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "idp_launch.h"

_Static_assert(IDP_URL_MAX == 128, "the READY format below reads 127 bytes");

#define ARGS_MAX 24

static void __attribute__((noreturn)) child(const char *script, char *const args[], int out_fd,
					    int log_fd, int (*setup)(void *), void *arg)
{
	char *argv[ARGS_MAX] = { "node", (char *)script };
	int n = 2;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Dies with the test, even when the test crashes. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; args[i] && n < ARGS_MAX - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if ((setup && setup(arg)) || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(log_fd, STDERR_FILENO) < 0)
		_exit(126);
	execvp("node", argv);
	_exit(127);
}

/* The READY line, or an empty one at the deadline or EOF. */
static void read_line(int fd, char *line, size_t size)
{
	uint64_t deadline = mono_ms() + IDP_READY_MS;
	size_t len = 0;

	line[0] = '\0';
	while (len < size - 1 && !memchr(line, '\n', len)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= deadline || poll(&p, 1, deadline - now) <= 0)
			break;
		n = read(fd, line + len, size - 1 - len);
		if (n <= 0)
			break;
		len += n;
		line[len] = '\0';
	}
}

int node_launch(const char *script, char *const args[], const char *log, int (*setup)(void *),
		void *arg, char url[IDP_URL_MAX], pid_t *pid)
{
	char line[256];
	int pfd[2], log_fd;

	*pid = -1;
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return -errno;
	if (pipe2(pfd, O_CLOEXEC)) {
		close(log_fd);
		return -errno;
	}
	fflush(stdout);
	*pid = fork();
	if (!*pid)
		child(script, args, pfd[1], log_fd, setup, arg);
	close(pfd[1]);
	close(log_fd);
	if (*pid < 0) {
		close(pfd[0]);
		return -errno;
	}
	read_line(pfd[0], line, sizeof(line));
	close(pfd[0]);
	if (sscanf(line, "READY %127s", url) == 1)
		return 0;
	idp_kill(*pid, SIGKILL, 0);
	*pid = -1;
	return -EIO;
}

int idp_launch(char *const args[], const char *log, int (*setup)(void *), void *arg,
	       char url[IDP_URL_MAX], pid_t *pid)
{
	return node_launch(IDP_SCRIPT, args, log, setup, arg, url, pid);
}

void idp_kill(pid_t pid, int sig, int stop_ms)
{
	uint64_t deadline = mono_ms() + stop_ms;

	if (pid <= 0)
		return;
	kill(pid, sig);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		usleep(10000);
	}
}
