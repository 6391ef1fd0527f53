// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t utf8_char_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len, i;
	uint32_t cp;

	if (!n)
		return 0;
	if (s[0] < 0x80)
		return 1;
	/* 0x80-0xbf continue a character; 0xc0 and 0xc1 only start overlong
	 * forms; 0xf5 and up only what lies past U+10FFFF. */
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Writes the characters of src (n bytes) to dst while they fit in limit
 * bytes; returns the bytes written, and in *left whether any were not. */
static size_t put_chars(char *dst, const char *src, size_t n, size_t limit, bool *left)
{
	size_t in = 0, out = 0, clen, olen;

	while (in < n) {
		clen = utf8_char_len(src + in, n - in);
		olen = clen ? clen : strlen(UTF8_REPLACEMENT);
		if (out + olen > limit)
			break;
		memcpy(dst + out, clen ? src + in : UTF8_REPLACEMENT, olen);
		out += olen;
		in += clen ? clen : 1;
	}
	*left = in < n;
	return out;
}

size_t utf8_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src), out;
	bool left;

	out = put_chars(dst, src, n, size - 1, &left);
	if (left) {
		/* Again, with room for the mark. */
		out = put_chars(dst, src, n, size - sizeof(UTF8_CUT), &left);
		memcpy(dst + out, UTF8_CUT, strlen(UTF8_CUT));
		out += strlen(UTF8_CUT);
	}
	dst[out] = '\0';
	return out;
}
