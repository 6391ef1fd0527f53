// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe.h"

static bool file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static bool ulp_available(const char *ulp)
{
	char buf[256] = "";
	bool found = false;
	FILE *f;

	f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		found = strstr(buf, ulp) != NULL;
	fclose(f);
	return found;
}

static bool prog_type(enum bpf_prog_type t)
{
	return libbpf_probe_bpf_prog_type(t, NULL) == 1;
}

static bool map_type(enum bpf_map_type t)
{
	return libbpf_probe_bpf_map_type(t, NULL) == 1;
}

static bool helper(enum bpf_prog_type t, enum bpf_func_id id)
{
	return libbpf_probe_bpf_helper(t, id, NULL) == 1;
}

int probe_kernel(struct probe_result *r)
{
	int n = 0;

#define ADD(nm, since_, req, expr)                                                                 \
	r[n++] = (struct probe_result){ .name = nm, .since = since_, .required = req,              \
					.present = (expr) }
	ADD("BTF (/sys/kernel/btf/vmlinux)", "5.4 with CONFIG_DEBUG_INFO_BTF=y", true,
	    file_exists("/sys/kernel/btf/vmlinux"));
	ADD("cgroup/connect4 and connect6 programs", "4.17", true,
	    prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR));
	ADD("sockops programs", "4.13", true, prog_type(BPF_PROG_TYPE_SOCK_OPS));
	ADD("bpf_sk_lookup_tcp in connect hooks", "4.20", true,
	    helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_lookup_tcp));
	ADD("bpf_skc_to_tcp_sock in connect hooks", "5.9", true,
	    helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_skc_to_tcp_sock));
	ADD("LPM trie maps", "4.11", true, map_type(BPF_MAP_TYPE_LPM_TRIE));
	ADD("LRU hash maps", "4.10", true, map_type(BPF_MAP_TYPE_LRU_HASH));
	ADD("per-CPU hash maps", "4.6", true, map_type(BPF_MAP_TYPE_PERCPU_HASH));
	ADD("bpf_get_socket_cookie in connect hooks", "5.7", true,
	    helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_socket_cookie));
	ADD("bpf_get_current_cgroup_id in connect hooks", "5.7", true,
	    helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_cgroup_id));
	ADD("bpf_sock_ops_cb_flags_set (RTT and state callbacks)", "5.3", true,
	    helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_ops_cb_flags_set));
	ADD("cgroup_skb programs (inbound: mesh-only)", "4.10", true,
	    prog_type(BPF_PROG_TYPE_CGROUP_SKB));
	ADD("bpf_sk_lookup_tcp in cgroup_skb (who sent a SYN)", "5.8", true,
	    helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_lookup_tcp));
	ADD("bpf_sk_cgroup_id in cgroup_skb", "5.8", true,
	    helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_cgroup_id));
	ADD("sockhash maps", "4.18", false, map_type(BPF_MAP_TYPE_SOCKHASH));
	ADD("kTLS (tls in tcp_available_ulp)", "4.13 with CONFIG_TLS", false, ulp_available("tls"));
#undef ADD
	return n;
}

int probe_check(const struct probe_result *r, int n, struct errmsg *err)
{
	for (int i = 0; i < n; i++) {
		if (r[i].required && !r[i].present)
			return errmsg_set(err, -ENOTSUP,
					  "kernel lacks %s (needs Linux >= %s); `sluiced --probe` "
					  "lists every feature", r[i].name, r[i].since);
	}
	return 0;
}

void probe_print(FILE *f, const struct probe_result *r, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%-52s %-8s %s\n", r[i].name, r[i].present ? "yes" : "NO",
			r[i].required ? "required" : "optional");
}
