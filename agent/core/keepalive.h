/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The `keepalive:` setting, on its own so that the proxy takes it without
 * the whole config. */
#ifndef SLUICE_KEEPALIVE_H
#define SLUICE_KEEPALIVE_H

/* TCP keepalive probes on the proxy's sockets. */
struct keepalive_cfg {
	unsigned int idle_s;		/* before the first probe; 0: off */
	unsigned int interval_s;	/* between probes */
	unsigned int count;		/* unanswered probes that end the connection */
};

#endif
