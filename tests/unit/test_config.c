/* test_config.c - every setting is parsed completely: units, bounds, kinds,
 * and the setting at fault is named. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static config_var vars[] = {
    {.name = "EVENTS_T_MS",
     .def = "10000",
     .kind = CONFIG_DURATION,
     .unit_ms = 1,
     .min = 1,
     .max = 3600000},
    {.name = "EVENTS_T_S", .def = "30", .kind = CONFIG_DURATION, .unit_ms = 1000},
    {.name = "EVENTS_N", .def = "8", .kind = CONFIG_INT, .min = 1, .max = 256},
    {.name = "EVENTS_B", .def = "false", .kind = CONFIG_BOOL},
    {.name = "EVENTS_A", .def = "", .kind = CONFIG_ADDR},
    {.name = "EVENTS_L", .def = "info", .kind = CONFIG_LEVEL},
};
#define N (sizeof vars / sizeof *vars)

static int load(config_err *err, int argc, char **argv) {
  return config_load(argc, argv, vars, N, err);
}

static void test_defaults(void **state) {
  (void)state;
  config_err err;
  char *argv[] = {"p"};
  assert_int_equal(load(&err, 1, argv), 0);
  assert_int_equal(config_num(vars, N, "EVENTS_T_MS"), 10000);
  assert_int_equal(config_num(vars, N, "EVENTS_T_S"), 30000);
  assert_int_equal(config_num(vars, N, "EVENTS_N"), 8);
  assert_int_equal(config_num(vars, N, "EVENTS_B"), 0);
}

static void test_units(void **state) {
  (void)state;
  config_err err;
  char *argv[] = {"p", "--t-ms=1s", "--EVENTS_T_S", "250ms", "--events-b=yes", "--a=[::]:50051"};
  assert_int_equal(load(&err, 6, argv), 0);
  assert_int_equal(config_num(vars, N, "EVENTS_T_MS"), 1000); /* never 1 ms */
  assert_int_equal(config_num(vars, N, "EVENTS_T_S"), 250);
  assert_int_equal(config_num(vars, N, "EVENTS_B"), 1);
  long long ms;
  assert_int_equal(config_parse_duration("2m", 1, &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(config_parse_duration("1h", 1, &ms), 0);
  assert_int_equal(ms, 3600000);
}

static void expect_bad(const char *flag, const char *variable) {
  config_err err;
  char *argv[] = {"p", (char *)flag};
  assert_int_equal(load(&err, 2, argv), -1);
  assert_string_equal(err.variable, variable);
  assert_true(err.msg[0] != '\0');
}

static void test_rejects(void **state) {
  (void)state;
  expect_bad("--t-ms=10x", "EVENTS_T_MS");
  expect_bad("--t-ms=-5", "EVENTS_T_MS");
  expect_bad("--t-ms=0", "EVENTS_T_MS"); /* below min */
  expect_bad("--t-ms=", "EVENTS_T_MS");
  expect_bad("--t-ms=99999999999999999999", "EVENTS_T_MS");
  expect_bad("--n=8 ", "EVENTS_N");
  expect_bad("--n=0x10", "EVENTS_N");
  expect_bad("--n=257", "EVENTS_N");
  expect_bad("--b=maybe", "EVENTS_B");
  expect_bad("--a=localhost:http", "EVENTS_A");
  expect_bad("--a=localhost", "EVENTS_A");
  expect_bad("--l=verbose", "EVENTS_L");
  expect_bad("--nope=1", "");
}

/* The CPU count follows the affinity mask (taskset, a pinned container). */
static void test_cpus_follow_affinity(void **state) {
  (void)state;
  cpu_set_t all, one;
  assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
  unsigned n = config_cpus();
  assert_true(n >= 1 && n <= (unsigned)CPU_COUNT(&all));
  int first = 0;
  while (!CPU_ISSET(first, &all))
    first++;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
  assert_int_equal(config_cpus(), 1);
  assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
  assert_int_equal(config_cpus(), n);
}

static char cg_root[] = "/tmp/test_config_cgXXXXXX";

/* Writes cg_root/rel, making its directories. */
static void put(const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", cg_root, rel);
  for (char *p = path + strlen(cg_root) + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(path, 0700);
      *p = '/';
    }
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* The quota for a /proc/self/cgroup of `self` under cg_root/fs. */
static unsigned cpus(const char *self, const char *fs) {
  char self_path[512], fs_path[512];
  put("self", self);
  snprintf(self_path, sizeof self_path, "%s/self", cg_root);
  snprintf(fs_path, sizeof fs_path, "%s/%s", cg_root, fs);
  return config_cgroup_cpus(self_path, fs_path);
}

/* A quota on the pod's cgroup binds its container (v2); the tightest of
 * several wins; "max" is none; v1's cfs files under "cpu,cpuacct" count
 * too; a namespaced "/" reads the mount's root. */
static void test_cgroup_quota(void **state) {
  (void)state;
  assert_non_null(mkdtemp(cg_root));
  const char *pod = "0::/kubepods/pod1/c1\n";
  put("v2/kubepods/pod1/cpu.max", "250000 100000\n");
  put("v2/kubepods/pod1/c1/cpu.max", "max 100000\n");
  assert_int_equal(cpus(pod, "v2"), 3);
  put("v2/kubepods/cpu.max", "50000 100000\n");
  assert_int_equal(cpus(pod, "v2"), 1);
  put("v2/cpu.max", "200000 100000\n");
  assert_int_equal(cpus("0::/\n", "v2"), 2);
  put("v2/cpu.max", "max 100000\n");
  assert_int_equal(cpus("0::/\n", "v2"), 0);

  const char *docker = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n";
  put("v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
  put("v1/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  assert_int_equal(cpus(docker, "v1"), 2);
  put("v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  assert_int_equal(cpus(docker, "v1"), 0);
  assert_int_equal(config_cgroup_cpus("/nonexistent/cgroup", "/nonexistent"), 0);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cg_root);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),     cmocka_unit_test(test_units),
      cmocka_unit_test(test_rejects),      cmocka_unit_test(test_cpus_follow_affinity),
      cmocka_unit_test(test_cgroup_quota),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
