// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "scrape.h"
#include "util.h"

char *scrape(struct sl_env *env, const char *ns, const char *url)
{
	char *argv[] = { "ip",	"netns",      "exec", (char *)ns,  "curl",
			 "-sf", "--max-time", "5",    (char *)url, NULL };
	char *out = NULL, *err = NULL;
	int ret = run_argv(argv, &out, &err, 10000);

	if (!ASSERT_EQ(ret, 0, "curl exit status"))
		printf("curl %s: %s\n", url, err ?: "");
	free(err);
	if (ret) {
		free(out);
		return NULL;
	}
	return out;
}

long long scrape_sample(const char *text, const char *series)
{
	const char *p = text;
	size_t n = strlen(series);

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atoll(p + n + 1);
		p += n;
	}
	return -1;
}
