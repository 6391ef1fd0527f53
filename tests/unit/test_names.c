// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * names_assign / names_lookup on a real, unpinned BPF hash map with the
 * names layout. Creating a map needs CAP_BPF: without it the tests skip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "names.h"

static int names_fd = -1;

static int setup(void **state)
{
	names_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "names_test", sizeof(struct sluice_name_key),
				  sizeof(struct sluice_name), 64, NULL);
	return 0;
}

static int teardown(void **state)
{
	if (names_fd >= 0)
		close(names_fd);
	return 0;
}

static int map_fd(void **state)
{
	/* No CAP_BPF (or no BPF at all): nothing to test against. */
	if (names_fd < 0)
		skip();
	return names_fd;
}

static void put(int fd, __u32 kind, __u32 id, const char *name)
{
	struct sluice_name_key key = { .kind = kind, .id = id };
	struct sluice_name val = {};

	strcpy(val.name, name);
	assert_int_equal(bpf_map_update_elem(fd, &key, &val, BPF_ANY), 0);
}

static void clear(int fd)
{
	struct sluice_name_key key;

	while (!bpf_map_get_next_key(fd, NULL, &key))
		assert_int_equal(bpf_map_delete_elem(fd, &key), 0);
}

static void test_assign_starts_at_one_and_is_stable(void **state)
{
	int fd = map_fd(state);
	__u32 a, b, again;
	char buf[SLUICE_NAME_LEN];

	clear(fd);
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, "spiffe://td/job/1", &a), 0);
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, "spiffe://td/job/2", &b), 0);
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, "spiffe://td/job/1", &again), 0);
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	assert_int_equal(again, 1);
	assert_int_equal(names_lookup(fd, SLUICE_NAME_IDENTITY, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "spiffe://td/job/2");
}

/* A restarted agent finds ids pinned by the previous run, with gaps where
 * names went away: old names keep their ids, new ones go past the largest. */
static void test_assign_reuses_pinned_ids(void **state)
{
	int fd = map_fd(state);
	__u32 id;

	clear(fd);
	put(fd, SLUICE_NAME_SERVICE, 3, "warehouse");
	put(fd, SLUICE_NAME_SERVICE, 7, "metrics");
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "metrics", &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "billing", &id), 0);
	assert_int_equal(id, 8);
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "warehouse", &id), 0);
	assert_int_equal(id, 3);
}

static void test_kinds_are_separate(void **state)
{
	int fd = map_fd(state);
	__u32 svc, ident;
	char buf[SLUICE_NAME_LEN];

	clear(fd);
	put(fd, SLUICE_NAME_IDENTITY, 5, "same");
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "same", &svc), 0);
	assert_int_equal(svc, 1);
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, "other", &ident), 0);
	assert_int_equal(ident, 6);
	assert_int_equal(names_lookup(fd, SLUICE_NAME_SERVICE, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "same");
}

static void test_lookup_fallbacks(void **state)
{
	int fd = map_fd(state);
	char buf[SLUICE_NAME_LEN];

	clear(fd);
	assert_int_equal(names_lookup(fd, SLUICE_NAME_IDENTITY, 7, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "id:7");
	assert_int_equal(names_lookup(fd, SLUICE_NAME_SERVICE, 9, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "svc:9");
	put(fd, SLUICE_NAME_IDENTITY, 0, "never-used");
	assert_int_equal(names_lookup(fd, SLUICE_NAME_IDENTITY, 0, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "-");
	assert_int_equal(names_lookup(-1, SLUICE_NAME_SERVICE, 4, buf, sizeof(buf)), -EBADF);
	assert_string_equal(buf, "svc:4");
}

static void test_lookup_truncates(void **state)
{
	int fd = map_fd(state);
	char buf[6];

	clear(fd);
	put(fd, SLUICE_NAME_SERVICE, 1, "warehouse");
	assert_int_equal(names_lookup(fd, SLUICE_NAME_SERVICE, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "wareh");
}

static void test_assign_rejects_bad_names(void **state)
{
	int fd = map_fd(state);
	char longname[SLUICE_NAME_LEN + 1];
	__u32 id = 42;

	clear(fd);
	memset(longname, 'a', SLUICE_NAME_LEN);
	longname[SLUICE_NAME_LEN] = '\0';
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, "", &id), -EINVAL);
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, longname, &id), -ENAMETOOLONG);
	/* The longest name that fits, with its NUL. */
	longname[SLUICE_NAME_LEN - 1] = '\0';
	assert_int_equal(names_assign(fd, SLUICE_NAME_IDENTITY, longname, &id), 0);
	assert_int_equal(id, 1);
}

static void test_assign_map_full(void **state)
{
	int fd = map_fd(state);
	char name[16];
	__u32 id;

	clear(fd);
	for (int i = 1; i <= 64; i++) {
		snprintf(name, sizeof(name), "svc-%d", i);
		put(fd, SLUICE_NAME_SERVICE, i, name);
	}
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "svc-64", &id), 0);
	assert_int_equal(id, 64);
	assert_int_equal(names_assign(fd, SLUICE_NAME_SERVICE, "one-too-many", &id), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assign_starts_at_one_and_is_stable),
		cmocka_unit_test(test_assign_reuses_pinned_ids),
		cmocka_unit_test(test_kinds_are_separate),
		cmocka_unit_test(test_lookup_fallbacks),
		cmocka_unit_test(test_lookup_truncates),
		cmocka_unit_test(test_assign_rejects_bad_names),
		cmocka_unit_test(test_assign_map_full),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
