/* config.h - settings from --flags and environment variables.
 *
 * Each setting has one name, e.g. EVENTS_GRPC_ADDR, read from the
 * same-named environment variable or flag; a flag wins. Flags may be spelled
 * --EVENTS_GRPC_ADDR=v, --events-grpc-addr v or --grpc-addr=v. */
#ifndef EVENTS_CONFIG_H
#define EVENTS_CONFIG_H

#include <stddef.h>

typedef struct config_var {
  const char *name; /* EVENTS_... */
  const char *def;  /* NULL: no default */
  const char *help;
  const char *value; /* filled by config_load; points into argv/environ/def */
} config_var;

/* Returns 0; 1 when --help was given (usage printed); -1 on a bad flag with
 * the reason in err. */
int config_load(int argc, char **argv, config_var *vars, size_t n, char *err, size_t errlen);
const char *config_get(const config_var *vars, size_t n, const char *name);
struct sockaddr_in;
/* "host:port" (IPv4, "localhost", or empty/0.0.0.0 for any) -> sockaddr. */
int config_parse_addr(const char *addr, struct sockaddr_in *sa);
void config_usage(const char *prog, const config_var *vars, size_t n);

#endif
