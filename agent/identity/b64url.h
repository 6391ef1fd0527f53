/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * base64url without padding (RFC 4648 section 5, as JOSE uses it: RFC 7515
 * section 2). Decoding is strict: only the URL-safe alphabet, no '=', no
 * whitespace, and the unused low bits of the last character must be zero, so
 * every byte string has exactly one accepted encoding and a token cannot be
 * altered without changing the bytes it stands for.
 */
#ifndef SLUICE_B64URL_H
#define SLUICE_B64URL_H

#include <stddef.h>

/* Characters that encode n bytes, not counting the NUL. */
#define B64URL_ENC_LEN(n) (((n) * 4 + 2) / 3)
/* Bytes that n characters decode to, at most. */
#define B64URL_DEC_LEN(n) ((n) * 3 / 4)

/* Encodes len bytes of in into out, which must hold B64URL_ENC_LEN(len) + 1
 * bytes, NUL-terminates it and returns the encoded length. */
size_t b64url_encode(const void *in, size_t len, char *out);

/* Decodes len characters of in into out, which must hold
 * B64URL_DEC_LEN(len) bytes, and sets *out_len. Returns 0, or -EINVAL for
 * anything but the canonical unpadded encoding. */
int b64url_decode(const char *in, size_t len, void *out, size_t *out_len);

#endif
