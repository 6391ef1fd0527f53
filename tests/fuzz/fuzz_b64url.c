// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * base64url decoding (b64url_decode), the first thing done to every part of
 * a token and every JWK member. The decoder promises one accepted encoding
 * per byte string, so whatever it accepts must encode back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly the sizes b64url.h asks for, so ASan sees any overrun. */
	uint8_t *out = malloc(B64URL_DEC_LEN(size) + 1);
	char *enc = NULL;
	size_t n;

	if (!out)
		return 0;
	if (!b64url_decode((const char *)data, size, out, &n)) {
		if (n > B64URL_DEC_LEN(size))
			abort();
		enc = malloc(B64URL_ENC_LEN(n) + 1);
		if (enc && (b64url_encode(out, n, enc) != size || memcmp(enc, data, size)))
			abort();
	}
	free(enc);
	free(out);
	return 0;
}
