/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The tests, in run order: TEST(name) runs test_name(env), defined in one of
 * tests/integ/test_*.c. TEST_HOST(name) runs on the host only, never in the
 * VM (vmtest lists tests with -L): load tests, too slow under TCG, and
 * tests of programs the VM image does not ship, valgrind among them.
 * No include guard: harness.c includes this once per expansion. */
TEST(allowed_flow)
TEST(denied_flow)
TEST(unmanaged_cgroup)
TEST(agent_upstream_not_redirected)
TEST(ipv6)
TEST(dual_stack)
TEST(udp)
TEST(loopback)
TEST_HOST(jvm_client)
TEST(restart_keeps_counters)
TEST(bad_policy)
TEST(sluicectl_json)
TEST(flow_churn)
TEST(cgroup_gone)
TEST(bad_input)
TEST(fail_closed)
TEST(fail_open)
TEST(inbound)
TEST(tunnel)
TEST(tunnel_attacks)
TEST_HOST(tunnel_flood)
TEST(tunnel_rotation)
TEST(tunnel_oidc)
TEST_HOST(valgrind)
