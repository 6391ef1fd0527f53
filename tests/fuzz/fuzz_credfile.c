// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The credentials file sluicectl reads: credfile_read() on the input. */
#include <stdint.h>

#include "credfile.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errmsg err;
	json_t *doc;

	if (!credfile_read(fuzz_file(data, size), &doc, &err))
		json_decref(doc);
	return 0;
}
