/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SLUICE_BPFFS_H
#define SLUICE_BPFFS_H

#include "errmsg.h"

/* Makes sure pin_dir lives on a bpf file system, mounting one at
 * /sys/fs/bpf when none is there, and creates pin_dir. */
int bpffs_prepare(const char *pin_dir, struct errmsg *err);

#endif
