// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <limits.h>
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

void promtool_check(struct sl_env *env, const char *text)
{
	char path[PATH_MAX], cmd[PATH_MAX + 64];
	char *argv[] = { "sh", "-c", cmd, NULL };
	char *out = NULL, *err = NULL;
	FILE *f;

	env_path(env, "metrics.txt", path, sizeof(path));
	f = fopen(path, "w");
	if (!ASSERT_OK_PTR(f, "metrics.txt"))
		return;
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	if (!ASSERT_EQ(run_argv(argv, &out, &err, 20000), 0, "promtool check metrics exit status"))
		printf("promtool: %s%s\n", out ?: "", err ?: "");
	free(out);
	free(err);
}
