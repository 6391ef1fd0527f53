// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The agent's config file: config_load() on a file holding the input. */
#include <stdint.h>

#include "config.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t peer_addr[4] = { 0x0200630a };	/* 10.99.0.2 */
	struct errmsg err;
	struct config cfg;

	if (config_load(fuzz_file(data, size), &cfg, &err))
		return 0;
	/* What the agent does next with a config it accepted. */
	config_handshake_defaults(&cfg.handshakes, 1024);
	config_peer_for(&cfg, AF_INET, peer_addr);
	for (int i = 0; i < cfg.nr_peers; i++) {
		config_peer_vouches(&cfg.peers[i], "spiffe://acme.example/job/1234");
		config_peer_by_node(&cfg, cfg.peers[i].node);
	}
	for (int i = 0; i < cfg.nr_workloads; i++)
		config_workload_by_id(&cfg, cfg.workloads[i].id);
	config_free(&cfg);
	return 0;
}
