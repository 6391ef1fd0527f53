/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sluicectl policy apply | rollback | history (ctl_policy_apply.c). */
#ifndef SLUICE_CTL_POLICY_APPLY_H
#define SLUICE_CTL_POLICY_APPLY_H

int do_policy_apply(int argc, char **argv);
int do_policy_rollback(int argc, char **argv);
int do_policy_history(int argc, char **argv);

#endif
