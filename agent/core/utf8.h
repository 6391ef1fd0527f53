/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * UTF-8 for text from outside (token headers and claims, frames) on its way
 * into fixed buffers and JSON. jansson refuses a string that is not UTF-8,
 * and snprintf() cuts between bytes, not characters: a cut inside a
 * character would make a whole JSON document, such as an audit line,
 * impossible to write. Validity is jansson's (RFC 3629): no overlong forms,
 * no surrogates, nothing past U+10FFFF.
 */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stddef.h>

/* Stands for each byte that starts no valid character: U+FFFD. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"
/* Ends a copy that was cut short. */
#define UTF8_CUT "..."

/* The length of the valid character at the start of s (n bytes), or 0 when
 * none starts there. */
size_t utf8_char_len(const char *s, size_t n);

/*
 * Copies src into dst (size bytes, at least sizeof(UTF8_CUT)) as valid
 * UTF-8, each byte that starts no valid character replaced by
 * UTF8_REPLACEMENT. A copy that does not fit ends between two characters,
 * marked with UTF8_CUT. Returns the length of dst.
 */
size_t utf8_copy(char *dst, size_t size, const char *src);

#endif
