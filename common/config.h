/* config.h - settings from --flags and environment variables.
 *
 * Each setting has one name, e.g. EVENTS_GRPC_ADDR, read from the
 * same-named environment variable or flag; a flag wins. Flags may be spelled
 * --EVENTS_GRPC_ADDR=v, --events-grpc-addr v or --grpc-addr=v. Every value is
 * parsed completely at load: "1s" for a setting counted in milliseconds is
 * 1000, never 1, and "10x" is an error naming the setting. */
#ifndef EVENTS_CONFIG_H
#define EVENTS_CONFIG_H

#include <stddef.h>

typedef enum {
  CONFIG_STR,      /* any text */
  CONFIG_INT,      /* decimal integer within [min, max] */
  CONFIG_DURATION, /* number with a unit (ms, s, m, h); a bare number is in unit_ms */
  CONFIG_ADDR,     /* host:port with a numeric port; empty when the default is empty */
  CONFIG_BOOL,     /* true/false, 1/0, yes/no, on/off */
  CONFIG_LEVEL,    /* debug, info, warn, error */
} config_kind;

typedef struct config_var {
  const char *name; /* EVENTS_... */
  const char *def;  /* NULL: no default */
  const char *help;
  config_kind kind;
  long long min, max; /* CONFIG_INT bounds; CONFIG_DURATION bounds in ms (0, 0: any >= 0) */
  long long unit_ms;  /* CONFIG_DURATION: what a bare number counts (1 for *_MS, 1000 for *_S) */
  const char *value;  /* filled by config_load; points into argv/environ/def */
  long long num;      /* filled by config_load: INT and BOOL values, DURATION in ms */
} config_var;

typedef struct config_err {
  char variable[64]; /* the setting at fault, or "" for a bad flag */
  char msg[256];
} config_err;

/* Returns 0; 1 when --help was given (usage printed); -1 on a bad flag or a
 * bad value with the reason in err. */
int config_load(int argc, char **argv, config_var *vars, size_t n, config_err *err);
/* Logs the failure as one JSON line naming the setting; returns the exit
 * status for it (2). */
int config_fail(const config_err *err);
/* Warns, one log line each, about EVENTS_* environment variables that are
 * no setting of this process (a typo silently ignored costs hours). */
void config_warn_unknown(const config_var *vars, size_t n);
const char *config_get(const config_var *vars, size_t n, const char *name);
long long config_num(const config_var *vars, size_t n, const char *name);
struct sockaddr_in;
/* "host:port" (IPv4, "localhost", or empty/0.0.0.0 for any) -> sockaddr. */
int config_parse_addr(const char *addr, struct sockaddr_in *sa);
/* "250ms", "10s", "2m", "1h", or a bare number counted in unit_ms. */
int config_parse_duration(const char *s, long long unit_ms, long long *ms);
void config_usage(const char *prog, const config_var *vars, size_t n);
/* CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU
 * quota (a container's CPU limit), rounded up; at least 1. */
unsigned config_cpus(void);
/* The tightest CPU quota over the cgroup named in self_cgroup (a
 * /proc/self/cgroup) and its ancestors, under fs_root (/sys/fs/cgroup), in
 * cgroup v2 or v1's cpu hierarchy: a limit may sit on the pod rather than
 * the container. 0: no quota. */
unsigned config_cgroup_cpus(const char *self_cgroup, const char *fs_root);

#endif
