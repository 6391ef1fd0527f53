// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control socket's request parser (ctlproto_parse_request), what the
 * agent runs on every line a local client sends, and the response parser
 * sluicectl runs on the agent's answers. An accepted request must hold
 * what ctlproto.h promises: a known command, and for policy.apply a
 * non-empty name without NUL and content within its bound. Every error
 * answer the agent would build from a refusal must parse back to it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"

static void check_request(const struct ctl_request *req)
{
	if (req->cmd >= NR_CTL_CMDS)
		abort();
	if (req->cmd != CTL_POLICY_APPLY)
		return;
	if (!req->name || !*req->name || strlen(req->name) == 0 || !req->content ||
	    req->content_len > CTLPROTO_MAX_CONTENT)
		abort();
}

/* The refusal goes back to the client as an error line, which must say
 * the same thing when sluicectl reads it. */
static void round_trip(int ret, const char *msg)
{
	struct errmsg err = {};
	json_t *res = NULL;
	size_t len = 0;
	char *line = ctlproto_error(ret, msg, &len);

	if (!line)
		return;
	/* The message may come back with U+FFFD where the client's bytes
	 * were cut; the errno always comes back. */
	if (len < 1 || line[len - 1] != '\n' ||
	    ctlproto_parse_response(line, len - 1, &res, &err) != ret || !err.msg[0])
		abort();
	json_decref(res);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request req;
	struct errmsg err = {};
	json_t *res = NULL;
	int ret;

	ret = ctlproto_parse_request((const char *)data, size, &req, &err);
	if (!ret) {
		check_request(&req);
		ctlproto_request_free(&req);
	} else {
		if (ret >= 0 || !err.msg[0])
			abort();
		round_trip(ret, err.msg);
	}
	err = (struct errmsg){};
	if (!ctlproto_parse_response((const char *)data, size, &res, &err))
		json_decref(res);
	return 0;
}
