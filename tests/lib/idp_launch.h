/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Runs the test IdP, tests/oidc/idp.mjs (oidc-provider from npm), for the
 * unit and the integration suites alike, and the test trace collector
 * (tests/otlp/collector.mjs): node in a child that dies with the test,
 * stderr appended to a log, and the URL read from its "READY <url>" line.
 */
#ifndef SLUICE_TEST_IDP_LAUNCH_H
#define SLUICE_TEST_IDP_LAUNCH_H

#include <sys/types.h>

#define IDP_SCRIPT "tests/oidc/idp.mjs"
#define IDP_READY_MS 60000
/* The issuer's room, NUL included. */
#define IDP_URL_MAX 128

/* Forks `node IDP_SCRIPT args...` (args NULL-terminated); in the child,
 * setup(arg) runs first when given (joining a namespace) and a nonzero
 * return ends it. Waits up to IDP_READY_MS for the READY line and copies
 * the issuer into url. Returns 0 with *pid set, or a negative errno with
 * the child gone (its stderr is in log). */
int node_launch(const char *script, char *const args[], const char *log, int (*setup)(void *),
		void *arg, char url[IDP_URL_MAX], pid_t *pid);
/* node_launch of IDP_SCRIPT. */
int idp_launch(char *const args[], const char *log, int (*setup)(void *), void *arg,
	       char url[IDP_URL_MAX], pid_t *pid);
/* SIGTERM (or sig), then waits up to stop_ms before SIGKILL. */
void idp_kill(pid_t pid, int sig, int stop_ms);

#endif
