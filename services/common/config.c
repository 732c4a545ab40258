/* config.c - flag and environment parsing for both processes. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int config_load(int argc, char **argv, config_var *vars, size_t n, char *err, size_t errlen) {
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
    if (strncmp(arg, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument \"%s\"", arg);
      return -1;
    }
    const char *name = arg + 2, *eq = strchr(name, '='), *value;
    char canon[128];
    canonical(name, eq ? (size_t)(eq - name) : strlen(name), canon, sizeof canon);
    config_var *v = find(vars, n, canon);
    if (!v) {
      snprintf(err, errlen, "unknown flag \"%s\"", arg);
      return -1;
    }
    if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      snprintf(err, errlen, "flag \"%s\" needs a value", arg);
      return -1;
    }
    v->value = value;
  }
  return 0;
}

const char *config_get(const config_var *vars, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(vars[i].name, name) == 0) return vars[i].value;
  return NULL;
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
  if (!colon || (size_t)(colon - addr) >= sizeof host) return -1;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535) return -1;
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
