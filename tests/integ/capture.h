/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What crosses a node's eth0, seen by an AF_PACKET socket in the node's
 * namespace: TCP segments counted per port, and their payloads kept in
 * arrival order so a test can look for plaintext in them.
 */
#ifndef SLUICE_INTEG_CAPTURE_H
#define SLUICE_INTEG_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct capture;

/* Starts capturing on ifname in network namespace ns; returns once the
 * socket is bound. NULL (with the reason printed) on failure. */
struct capture *capture_start(const char *ns, const char *ifname);
/* Stops the capture; what it saw stays readable until capture_free. */
void capture_stop(struct capture *c);
void capture_free(struct capture *c);

/* TCP segments with a payload, from or to port. */
long capture_segments(const struct capture *c, uint16_t port);
/* Of those, the ones whose payload begins with a TLS 1.2-framed
 * application data record header (17 03 03): TLS 1.3 traffic. */
long capture_tls_records(const struct capture *c, uint16_t port);
/* Whether needle occurs in one segment's payload. */
bool capture_has(const struct capture *c, const void *needle, size_t len);

#endif
