/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* An agent's /metrics as its node sees it, and one sample out of it. */
#ifndef SLUICE_INTEG_SCRAPE_H
#define SLUICE_INTEG_SCRAPE_H

struct sl_env;

#define METRICS_URL "http://127.0.0.1:15020/metrics"

/* curl url inside network namespace ns: the body (malloc'd), or NULL with
 * a failed check. */
char *scrape(struct sl_env *env, const char *ns, const char *url);
/* The value of the one sample whose line starts with series; -1: none. */
long long scrape_sample(const char *text, const char *series);
/* promtool check metrics accepts text (a failed check if not). */
void promtool_check(struct sl_env *env, const char *text);

#endif
