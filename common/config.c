/* config.c - flag and environment parsing for both processes: every value
 * is parsed completely and checked against its kind before start-up goes
 * on, so a typo stops the process with the setting's name instead of
 * running with a silently different value. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

extern char **environ;

/* Canonical form of a flag name: upper case, '_' for '-', EVENTS_ prefix. */
static void canonical(const char *flag, size_t len, char *out, size_t outlen) {
  size_t o = 0;
  if (!(len >= 7 && strncasecmp(flag, "events", 6) == 0 && (flag[6] == '-' || flag[6] == '_')))
    o = (size_t)snprintf(out, outlen, "EVENTS_");
  for (size_t i = 0; i < len && o + 1 < outlen; i++)
    out[o++] = flag[i] == '-' ? '_' : (char)toupper((unsigned char)flag[i]);
  out[o] = '\0';
}

static config_var *find(config_var *vars, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(vars[i].name, name) == 0) return &vars[i];
  return NULL;
}

static int bad(config_err *err, const char *variable, const char *fmt, const char *a,
               const char *b) {
  snprintf(err->variable, sizeof err->variable, "%s", variable);
  snprintf(err->msg, sizeof err->msg, fmt, a, b);
  return -1;
}

/* A whole decimal integer: no sign games, no trailing text, no overflow. */
static int parse_int(const char *s, long long *out) {
  if (!*s || isspace((unsigned char)*s)) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

int config_parse_duration(const char *s, long long unit_ms, long long *ms) {
  if (!*s || !isdigit((unsigned char)*s)) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno) return -1;
  long long mul;
  if (!*end)
    mul = unit_ms;
  else if (strcmp(end, "ms") == 0)
    mul = 1;
  else if (strcmp(end, "s") == 0)
    mul = 1000;
  else if (strcmp(end, "m") == 0)
    mul = 60 * 1000;
  else if (strcmp(end, "h") == 0)
    mul = 3600 * 1000;
  else
    return -1;
  if (mul <= 0 || v > (long long)1e15 / mul) return -1;
  *ms = v * mul;
  return 0;
}

static int parse_bool(const char *s, long long *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                              "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return (*out = 1), 0;
    if (strcasecmp(s, no[i]) == 0) return (*out = 0), 0;
  }
  return -1;
}

static int check(config_var *v, config_err *err) {
  const char *s = v->value;
  char lo[32], hi[32];
  if (!s) return 0; /* no default and not given: the process decides */
  switch (v->kind) {
  case CONFIG_STR:
    return 0;
  case CONFIG_LEVEL:
    if (strcmp(s, "debug") && strcmp(s, "info") && strcmp(s, "warn") && strcmp(s, "error"))
      return bad(err, v->name, "\"%s\" is not a log level (debug, info, warn, error)%s", s, "");
    return 0;
  case CONFIG_BOOL:
    if (parse_bool(s, &v->num) < 0)
      return bad(err, v->name, "\"%s\" is not a boolean (true, false, 1, 0, yes, no)%s", s, "");
    return 0;
  case CONFIG_ADDR: {
    /* Any host the listener understands ([::], names, IPv4); the port must
     * be a number, since "host:http" would otherwise bind somewhere else. */
    if (!*s && v->def && !*v->def) return 0; /* empty turns the listener off */
    const char *colon = strrchr(s, ':');
    long long port;
    if (!colon || parse_int(colon + 1, &port) < 0 || port < 0 || port > 65535)
      return bad(err, v->name, "\"%s\" is not a host:port address%s", s, "");
    return 0;
  }
  case CONFIG_INT:
    if (parse_int(s, &v->num) < 0)
      return bad(err, v->name, "\"%s\" is not a whole number%s", s, "");
    if (v->min != v->max && (v->num < v->min || v->num > v->max)) {
      snprintf(lo, sizeof lo, "%lld", v->min);
      snprintf(hi, sizeof hi, "%lld", v->max);
      return bad(err, v->name, "must be between %s and %s", lo, hi);
    }
    return 0;
  case CONFIG_DURATION:
    if (config_parse_duration(s, v->unit_ms ? v->unit_ms : 1, &v->num) < 0)
      return bad(err, v->name, "\"%s\" is not a duration (e.g. 250ms, 10s, 2m, 1h)%s", s, "");
    if (v->min != v->max && (v->num < v->min || v->num > v->max)) {
      snprintf(lo, sizeof lo, "%lldms", v->min);
      snprintf(hi, sizeof hi, "%lldms", v->max);
      return bad(err, v->name, "must be between %s and %s", lo, hi);
    }
    return 0;
  }
  return 0;
}

int config_load(int argc, char **argv, config_var *vars, size_t n, config_err *err) {
  memset(err, 0, sizeof *err);
  for (size_t i = 0; i < n; i++) {
    const char *env = getenv(vars[i].name);
    vars[i].value = env && *env ? env : vars[i].def;
  }
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      config_usage(argv[0], vars, n);
      return 1;
    }
    if (strncmp(arg, "--", 2) != 0) return bad(err, "", "unexpected argument \"%s\"%s", arg, "");
    const char *name = arg + 2, *eq = strchr(name, '='), *value;
    char canon[128];
    canonical(name, eq ? (size_t)(eq - name) : strlen(name), canon, sizeof canon);
    config_var *v = find(vars, n, canon);
    if (!v) return bad(err, "", "unknown flag \"%s\"%s", arg, "");
    if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return bad(err, v->name, "flag \"%s\" needs a value%s", arg, "");
    }
    v->value = value;
  }
  for (size_t i = 0; i < n; i++)
    if (check(&vars[i], err) < 0) return -1;
  return 0;
}

int config_fail(const config_err *err) {
  json_t *f = json_pack("{s:s}", "error", err->msg);
  if (f && err->variable[0]) json_object_set_new(f, "variable", json_string(err->variable));
  log_json(LOG_LEVEL_ERROR, "bad configuration, not starting (see --help)", f);
  return 2;
}

void config_warn_unknown(const config_var *vars, size_t n) {
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "EVENTS_", 7) != 0) continue;
    const char *eq = strchr(*e, '=');
    size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
    int known = 0;
    for (size_t i = 0; i < n && !known; i++)
      known = strlen(vars[i].name) == len && strncmp(vars[i].name, *e, len) == 0;
    if (known) continue;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(len < 127 ? len : 127), *e);
    log_json(LOG_LEVEL_WARN, "unknown setting ignored", json_pack("{s:s}", "variable", name));
  }
}

const char *config_get(const config_var *vars, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(vars[i].name, name) == 0) return vars[i].value;
  return NULL;
}

long long config_num(const config_var *vars, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(vars[i].name, name) == 0) return vars[i].num;
  return 0;
}

void config_usage(const char *prog, const config_var *vars, size_t n) {
  fprintf(stderr, "usage: %s [--FLAG=VALUE ...]\n\nEach flag is also read from the environment:\n",
          prog);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, "  --%-22s %s (default: %s)\n", vars[i].name, vars[i].help,
            vars[i].def ? vars[i].def : "none");
}

int config_parse_addr(const char *addr, struct sockaddr_in *sa) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof host || !colon[1]) return -1;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || !isdigit((unsigned char)colon[1])) return -1;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (strcmp(host, "") == 0 || strcmp(host, "0.0.0.0") == 0) {
    sa->sin_addr.s_addr = htonl(INADDR_ANY);
    return 0;
  }
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* CPUs a quota of `quota` µs per `period` µs gives, rounded up; 0 for no
 * quota ("max" in cgroup v2, -1 in v1) or a file that is not there. */
static unsigned quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  long long n = (quota + period - 1) / period;
  return n > 0 && n < 4096 ? (unsigned)n : 0;
}

static unsigned cgroup_dir_cpus(const char *dir, int v2) {
  char path[1024];
  long long quota = -1, period = 0;
  snprintf(path, sizeof path, "%s/%s", dir, v2 ? "cpu.max" : "cpu.cfs_quota_us");
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int got = v2 ? fscanf(f, "%lld %lld", &quota, &period) : fscanf(f, "%lld", &quota);
  fclose(f);
  if (got < 1) return 0;
  if (!v2) {
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (!(f = fopen(path, "r"))) return 0;
    if (fscanf(f, "%lld", &period) != 1) period = 0;
    fclose(f);
  }
  return quota_cpus(quota, period);
}

/* Inside a cgroup namespace the path is "/" and the files at the mount's
 * root are the container's own. */
unsigned config_cgroup_cpus(const char *self_cgroup, const char *fs_root) {
  unsigned n = 0;
  char line[512], dir[768];
  FILE *f = fopen(self_cgroup, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
    if (!cg || cg[1] != '/') continue;
    *ctl++ = 0;
    *cg++ = 0;
    int v2 = !strcmp(line, "0") && !*ctl;
    /* v1: the hierarchy holding "cpu" ("cpu" or "cpu,cpuacct"), mounted
     * under the controllers' names. */
    char ctls[128];
    snprintf(ctls, sizeof ctls, ",%s,", ctl);
    if (!v2 && !strstr(ctls, ",cpu,")) continue;
    size_t root = v2 ? (size_t)snprintf(dir, sizeof dir, "%s", fs_root)
                     : (size_t)snprintf(dir, sizeof dir, "%s/%s", fs_root, ctl);
    if (root >= sizeof dir) continue;
    snprintf(dir + root, sizeof dir - root, "%s", strcmp(cg, "/") ? cg : "");
    for (;;) {
      unsigned q = cgroup_dir_cpus(dir, v2);
      if (q && (!n || q < n)) n = q;
      char *slash = strrchr(dir + root, '/');
      if (!slash) break;
      *slash = 0;
    }
  }
  fclose(f);
  return n;
}

unsigned config_cpus(void) {
  unsigned n = 1;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    n = (unsigned)CPU_COUNT(&set);
  /* A container limited to 2 CPUs on a 64-CPU node sees all 64 in its
   * mask; the quota is what it gets. */
  unsigned q = config_cgroup_cpus("/proc/self/cgroup", "/sys/fs/cgroup");
  return q && q < n ? q : n;
}
