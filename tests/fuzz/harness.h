/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the fuzz harnesses share: a path that reads back the fuzzer's bytes
 * (for the parsers that take a file name), and a loopback HTTP server that
 * answers every request with bytes the harness sets (for the parsers that
 * read an IdP's responses through libcurl).
 */
#ifndef SLUICE_FUZZ_HARNESS_H
#define SLUICE_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Writes data to one memfd kept for the whole run and returns a path
 * (/proc/self/fd/N) that opens it from the start: the parser opens, stats
 * and reads a real file, exactly as it would on disk. Aborts on failure,
 * which is the harness's fault, not the parser's. */
const char *fuzz_file(const uint8_t *data, size_t size);

/* Starts the server once, on port if it is free (0: any port), and
 * returns the port it listens on, on 127.0.0.1. */
int fuzz_http_start(int port);
/* The bytes the next connection gets, sent as they are after the request
 * was read, then the connection is closed. Copied. */
void fuzz_http_respond(const uint8_t *data, size_t size);

#endif
