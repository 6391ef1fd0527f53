// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "fdlimit.h"
#include "log.h"

/* What the fd limit is taken to be when it cannot be read. */
#define FD_LIMIT_FALLBACK 1024

unsigned long fd_limit_raise(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return FD_LIMIT_FALLBACK;
	was = rl.rlim_cur;
	if (was >= rl.rlim_max) {
		pr_debug("fd limit %llu, the hard limit", (unsigned long long)was);
		return was;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		pr_warn("cannot raise the fd limit from %llu to the hard limit %llu: %s",
			(unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
		return was;
	}
	pr_info("fd limit raised from %llu to %llu, the hard limit", (unsigned long long)was,
		(unsigned long long)rl.rlim_cur);
	return rl.rlim_cur;
}
