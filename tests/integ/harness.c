// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * integ_progs: sluice's root integration tests.
 *
 *   integ_progs -b BUILDDIR [-v] [-t NAME[/SUBTEST]]... [-l]
 *
 * Exit: 0 when every test that ran passed, 77 when the one selected test was
 * skipped, 1 on any failure.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "env.h"
#include "clock.h"
#include "harness.h"

#define EXIT_SKIP 77
#define MAX_FILTERS 32
/* Past this a test is stuck: report it and clean up rather than hang CI.
 * Generous: under qemu without KVM a test runs tens of times slower. */
#define TEST_TIMEOUT_S 240
#define PROBE_TIMEOUT_MS 20000
#define BPFFS_DIR "/sys/fs/bpf"

#define TEST(name) void test_##name(struct sl_env *env);
#define TEST_HOST(name) TEST(name)
#include "tests.h"
#undef TEST_HOST
#undef TEST

struct prog_test {
	const char *name;
	void (*run)(struct sl_env *env);
	bool host_only;
};

static const struct prog_test prog_tests[] = {
#define TEST(name) {#name, test_##name, false},
#define TEST_HOST(name) {#name, test_##name, true},
#include "tests.h"
#undef TEST_HOST
#undef TEST
};

#define NR_TESTS ((int)(sizeof(prog_tests) / sizeof(prog_tests[0])))

static struct {
	const char *build_dir;
	bool verbose;
	const char *filters[MAX_FILTERS];
	int nr_filters;

	FILE *real_stdout;
	char *log_buf;
	size_t log_len;
	size_t log_shown;
	FILE *log;

	const struct prog_test *test;
	int test_num;
	bool test_failed;
	char skip_reason[256];
	bool test_skipped;

	char sub_name[64];
	int sub_num;
	bool sub_active, sub_failed, sub_skipped;
	int subs_run, subs_skipped, subs_failed;

	struct sl_env env;
	bool env_live;
	int passed, failed, skipped;
} R;

long long now_ms(void)
{
	return (long long)mono_ms();
}

bool test__verbose(void)
{
	return R.verbose;
}

const char *test__build_dir(void)
{
	return R.build_dir;
}

void test__fail(void)
{
	if (R.sub_active)
		R.sub_failed = true;
	else
		R.test_failed = true;
}

void test__skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(R.skip_reason, sizeof(R.skip_reason), fmt, ap);
	va_end(ap);
	printf("SKIP: %s\n", R.skip_reason);
	if (R.sub_active)
		R.sub_skipped = true;
	else
		R.test_skipped = true;
}

/* Writes the part of the test's buffered output not shown yet. */
static void show_log(void)
{
	fflush(R.log);
	if (R.log_len > R.log_shown)
		fwrite(R.log_buf + R.log_shown, 1, R.log_len - R.log_shown, R.real_stdout);
	R.log_shown = R.log_len;
}

/* The failed checks again, after the agents' logs that teardown printed:
 * the end of a long run's output (all CI keeps) then says what failed. */
static void show_failed_checks(const char *test)
{
	const char *p, *nl;
	int n = 0;

	fflush(R.log);
	if (!R.log_buf)
		return;
	for (p = R.log_buf; p < R.log_buf + R.log_len && n < 10; p = nl + 1) {
		nl = memchr(p, '\n', R.log_buf + R.log_len - p);
		if (!nl)
			break;
		if (memmem(p, nl - p, ":FAIL:", 6)) {
			if (!n++)
				fprintf(R.real_stdout, "%s: failed checks:\n", test);
			fprintf(R.real_stdout, "  %.*s\n", (int)(nl - p), p);
		}
	}
}

static const char *result_str(bool failed, bool skipped)
{
	return failed ? "FAIL" : skipped ? "SKIP" : "OK";
}

static void end_subtest(void)
{
	if (!R.sub_active)
		return;
	R.sub_active = false;
	R.subs_run++;
	if (R.sub_failed)
		R.subs_failed++;
	else if (R.sub_skipped)
		R.subs_skipped++;
	if (R.sub_failed || R.sub_skipped || R.verbose)
		show_log();
	fprintf(R.real_stdout, "#%d/%d %s/%s:%s\n", R.test_num, R.sub_num, R.test->name, R.sub_name,
		result_str(R.sub_failed, R.sub_skipped && !R.sub_failed));
	fflush(R.real_stdout);
}

/* A filter matches "test" or "test/subtest"; sub NULL asks about the test. */
static bool selected(const char *test, const char *sub)
{
	if (!R.nr_filters)
		return true;
	for (int i = 0; i < R.nr_filters; i++) {
		const char *f = R.filters[i], *slash = strchr(f, '/');
		size_t len = slash ? (size_t)(slash - f) : strlen(f);

		if (strlen(test) != len || strncmp(f, test, len))
			continue;
		if (!sub || !slash || !strcmp(slash + 1, sub))
			return true;
	}
	return false;
}

bool test__start_subtest(const char *name)
{
	end_subtest();
	R.sub_num++;
	if (!selected(R.test->name, name))
		return false;
	snprintf(R.sub_name, sizeof(R.sub_name), "%s", name);
	R.sub_active = true;
	R.sub_failed = R.sub_skipped = false;
	printf("==== %s/%s ====\n", R.test->name, name);
	return true;
}

static void start_log(void)
{
	fflush(stdout);
	R.log_buf = NULL;
	R.log_len = R.log_shown = 0;
	R.log = open_memstream(&R.log_buf, &R.log_len);
	if (!R.log) {
		R.log = R.real_stdout;
		return;
	}
	stdout = R.log;
	stderr = R.log;
}

static void end_log(void)
{
	if (R.log != R.real_stdout) {
		fclose(R.log);
		free(R.log_buf);
	}
	R.log = R.real_stdout;
	stdout = R.real_stdout;
	stderr = R.real_stdout;
}

/* From a signal handler: the current test's environment must not outlive
 * the runner, whatever killed it. A stuck test (the watchdog) still gets
 * its log, its FAIL line and the summary, counting what ran. */
static void emergency(int sig)
{
	char line[256];
	int n;

	signal(sig, SIG_IGN);
	if (sig == SIGALRM) {
		fflush(R.log);
		if (R.log_buf && R.log_len > R.log_shown)
			write_full(STDOUT_FILENO, R.log_buf + R.log_shown, R.log_len - R.log_shown);
		n = snprintf(line, sizeof(line), "%s: timed out after %d s, cleaning up\n",
			     R.test->name, TEST_TIMEOUT_S);
	} else {
		n = snprintf(line, sizeof(line), "integ_progs: signal %d, cleaning up\n", sig);
	}
	write_full(STDOUT_FILENO, line, n);
	if (R.env_live)
		env_emergency_teardown(&R.env);
	if (sig == SIGALRM) {
		n = snprintf(line, sizeof(line), "#%d %s:FAIL\n%d passed, %d failed, %d skipped\n",
			     R.test_num, R.test->name, R.passed, R.failed + 1, R.skipped);
		write_full(STDOUT_FILENO, line, n);
	}
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

static void run_test(int idx)
{
	const struct prog_test *t = &prog_tests[idx];
	long long start = now_ms();
	bool failed, skipped;

	R.test = t;
	R.test_num = idx + 1;
	R.test_failed = R.test_skipped = false;
	R.skip_reason[0] = '\0';
	R.sub_num = R.subs_run = R.subs_skipped = R.subs_failed = 0;
	R.sub_active = false;

	start_log();
	alarm(TEST_TIMEOUT_S);
	/* Live from the start: a signal during setup removes what exists. */
	R.env_live = true;
	if (env_setup(&R.env, t->name, 10 + idx)) {
		R.env_live = false;
		R.test_failed = true;
	} else {
		t->run(&R.env);
		end_subtest();
	}
	failed = R.test_failed || R.subs_failed;
	skipped = !failed && (R.test_skipped || (R.subs_run && R.subs_skipped == R.subs_run));
	if (R.env_live) {
		env_teardown(&R.env, failed);
		R.env_live = false;
	}
	alarm(0);
	printf("%s: %.3f s\n", t->name, (now_ms() - start) / 1000.0);
	if (failed || R.verbose)
		show_log();
	else if (skipped)
		fprintf(R.real_stdout, "%s: SKIP: %s\n", t->name, R.skip_reason);
	if (failed)
		show_failed_checks(t->name);
	fprintf(R.real_stdout, "#%d %s:%s\n", R.test_num, t->name, result_str(failed, skipped));
	fflush(R.real_stdout);
	end_log();
	if (failed)
		R.failed++;
	else if (skipped)
		R.skipped++;
	else
		R.passed++;
}

/* Every selected test without running it: skipped when not root or the
 * kernel lacks what sluice needs, failed when the setup is broken. */
static void end_all(const char *reason, bool skip)
{
	for (int i = 0; i < NR_TESTS; i++) {
		if (!selected(prog_tests[i].name, NULL))
			continue;
		printf("%s: %s: %s\n#%d %s:%s\n", prog_tests[i].name, skip ? "SKIP" : "FAIL",
		       reason, i + 1, prog_tests[i].name, skip ? "SKIP" : "FAIL");
		if (skip)
			R.skipped++;
		else
			R.failed++;
	}
}

/* Returns NULL when the kernel has what the agent needs, else why not. */
static const char *kernel_lacks(char *why, size_t len)
{
	char bin[PATH_MAX], *argv[] = {bin, "--probe", NULL}, *out = NULL, *err = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/sluiced", R.build_dir);
	ret = run_argv(argv, &out, &err, PROBE_TIMEOUT_MS);
	if (ret == 1)
		snprintf(why, len, "sluiced --probe: kernel lacks a required feature:\n%s%s", out,
			 err);
	free(out);
	free(err);
	return ret == 1 ? why : NULL;
}

/* NULL when the environment is usable; otherwise the reason it is not. */
static const char *environment_broken(char *why, size_t len)
{
	char bin[PATH_MAX], cg[PATH_MAX];
	struct statfs st;

	snprintf(bin, sizeof(bin), "%s/sluiced", R.build_dir);
	if (access(bin, X_OK)) {
		snprintf(why, len, "%.1024s: %s (build it first)", bin, strerror(errno));
		return why;
	}
	if (cgroup2_mount(cg, sizeof(cg), NULL)) {
		snprintf(why, len, "no cgroup2 file system is mounted (see /proc/mounts)");
		return why;
	}
	if (statfs(BPFFS_DIR, &st) || st.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", BPFFS_DIR, "bpf", 0, "mode=0700")) {
			snprintf(why, len, "cannot mount bpffs at %s: %s", BPFFS_DIR,
				 strerror(errno));
			return why;
		}
	}
	return NULL;
}

static bool kernel_has_cgroup2(void)
{
	char *fs = read_file_from("/proc/filesystems", 0);
	bool has = fs && strstr(fs, "\tcgroup2\n");

	free(fs);
	return has;
}

static bool filter_known(const char *f)
{
	size_t len = strcspn(f, "/");

	for (int i = 0; i < NR_TESTS; i++) {
		if (strlen(prog_tests[i].name) == len && !strncmp(f, prog_tests[i].name, len))
			return true;
	}
	return false;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: integ_progs -b BUILDDIR [-v] [-t NAME[/SUBTEST]]... [-l | -L]\n"
		   "\n"
		   "sluice's integration tests: real BPF, cgroups and network namespaces (root).\n"
		   "\n"
		   "  -b BUILDDIR  where sluiced and sluicectl were built\n"
		   "  -t NAME      run only this test (or NAME/SUBTEST); may be repeated\n"
		   "  -l           list the tests, one per line\n"
		   "  -L           list the tests that also run in a VM (not the host-only ones:\n"
		   "               load, and those needing programs the VM image lacks)\n"
		   "  -v           show every test's output, not only a failing one's\n"
		   "\n"
		   "Exit: 0 all passed, 1 a failure, 77 the one selected test was skipped.\n");
}

static void ensure_sbin_path(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	/* `ip` lives in /usr/sbin, which a sudo or cron PATH may lack. */
	if (path && strstr(path, "/usr/sbin"))
		return;
	snprintf(buf, sizeof(buf), "%s%s/usr/sbin:/sbin", path ? path : "", path ? ":" : "");
	setenv("PATH", buf, 1);
}

int main(int argc, char **argv)
{
	bool list = false, vm_only = false;
	char why[4096];
	int opt;

	while ((opt = getopt(argc, argv, "b:t:lLvh")) != -1) {
		switch (opt) {
		case 'b':
			R.build_dir = optarg;
			break;
		case 't':
			if (R.nr_filters == MAX_FILTERS) {
				fprintf(stderr, "integ_progs: at most %d -t\n", MAX_FILTERS);
				return 1;
			}
			R.filters[R.nr_filters++] = optarg;
			break;
		case 'L':
			vm_only = true;
			/* fall through */
		case 'l':
			list = true;
			break;
		case 'v':
			R.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (list) {
		for (int i = 0; i < NR_TESTS; i++) {
			if (!vm_only || !prog_tests[i].host_only)
				printf("%s\n", prog_tests[i].name);
		}
		return 0;
	}
	if (!R.build_dir || optind < argc) {
		usage(stderr);
		return 1;
	}
	for (int i = 0; i < R.nr_filters; i++) {
		if (!filter_known(R.filters[i])) {
			fprintf(stderr, "integ_progs: no test named '%s' (see -l)\n", R.filters[i]);
			return 1;
		}
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	R.real_stdout = stdout;
	R.log = stdout;
	ensure_sbin_path();
	signal(SIGPIPE, SIG_IGN);

	if (geteuid()) {
		end_all("must run as root: the tests load BPF programs, create cgroups and "
			"network namespaces",
			true);
	} else if (!kernel_has_cgroup2()) {
		end_all("the kernel lacks cgroup2 (not in /proc/filesystems)", true);
	} else if (environment_broken(why, sizeof(why))) {
		end_all(why, false);
	} else if (kernel_lacks(why, sizeof(why))) {
		end_all(why, true);
	} else {
		struct sigaction sa = {.sa_handler = emergency};

		sigfillset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGALRM, &sa, NULL);
		env_remove_stale();
		for (int i = 0; i < NR_TESTS; i++) {
			if (selected(prog_tests[i].name, NULL))
				run_test(i);
		}
	}
	printf("%d passed, %d failed, %d skipped\n", R.passed, R.failed, R.skipped);
	if (R.failed)
		return 1;
	if (R.nr_filters == 1 && R.skipped == 1 && !R.passed)
		return EXIT_SKIP;
	return 0;
}
