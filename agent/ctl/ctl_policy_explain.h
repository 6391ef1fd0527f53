/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sluicectl policy explain | test (ctl_policy_explain.c). */
#ifndef SLUICE_CTL_POLICY_EXPLAIN_H
#define SLUICE_CTL_POLICY_EXPLAIN_H

int do_policy_explain(int argc, char **argv);
int do_policy_test(int argc, char **argv);

#endif
