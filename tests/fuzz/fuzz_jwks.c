// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An IdP's JWKS document: jwks_parse(), then the lookups a verifier makes. */
#include <stdint.h>

#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwks *set;
	struct errmsg err;
	EVP_PKEY *pkey;

	if (jwks_parse((const char *)data, size, &set, &err))
		return 0;
	for (int i = 0; i < set->nr; i++) {
		if (!jwks_get_key(set, set->keys[i].kid, &pkey))
			EVP_PKEY_free(pkey);
	}
	if (!jwks_get_key(set, NULL, &pkey))
		EVP_PKEY_free(pkey);
	jwks_free(set);
	return 0;
}
