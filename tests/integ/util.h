/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Plain helpers of the integration tests, with no test world behind them:
 * sleeping, children, whole reads and writes, files, running a command. */
#ifndef SLUICE_INTEG_UTIL_H
#define SLUICE_INTEG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* In a forked child: default dispositions, nothing blocked; the runner's
 * cleanup handlers must never run in a child. */
void child_reset_signals(void);
void sleep_ms(int ms);
/* waitpid with a deadline; -ETIMEDOUT when it did not exit. */
int wait_child(pid_t pid, int *status, int timeout_ms);

/* Runs argv (PATH lookup) with stdout and stderr captured into malloc'd
 * strings; kills it after timeout_ms. Returns the exit status (128 + signal
 * when killed) or a negative errno, when *out and *err are left alone. */
int run_argv(char *const argv[], char **out, char **err, int timeout_ms);

/* write() until done; 0 or a negative errno. */
int write_full(int fd, const void *buf, size_t len);
/* read() exactly len bytes within timeout_ms; 0, -ETIMEDOUT, or -EPIPE
 * when the writer is gone first. */
int read_full(int fd, void *buf, size_t len, int timeout_ms);
/* Reads up to len - 1 bytes of a small file into buf, NUL-terminated, with
 * no allocation (signal handlers use it). Returns the length or -errno. */
ssize_t read_small(const char *path, char *buf, size_t len);

/* Reads a whole file into a NUL-terminated malloc'd buffer (from offset). */
char *read_file_from(const char *path, long offset);
long file_size(const char *path);
/* How many times needle occurs in s (NULL: none). */
int count_substr(const char *s, const char *needle);
/* The descriptors process pid holds, or a negative errno. */
int fds_of(pid_t pid);

/* Waits until the file, after byte offset from, contains needle. */
bool file_wait(const char *path, long from, const char *needle, int timeout_ms);

#endif
