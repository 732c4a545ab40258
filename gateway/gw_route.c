/* gw_route.c - path template matching over the one route table. Paths
 * arrive as sent (libmicrohttpd decodes nothing, see gw_guard.h): literal
 * segments compare as sent, and each parameter is percent-decoded once and
 * must then be text a client could mean as one id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

static int hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int gw_path_param(const char *raw, size_t n, char **out) {
  char *s = malloc(n + 1);
  if (!s) return -1;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    if (raw[i] != '%') {
      s[len++] = raw[i];
      continue;
    }
    /* A '%' that starts no escape is malformed, not a literal. */
    if (i + 2 >= n || hex((unsigned char)raw[i + 1]) < 0 || hex((unsigned char)raw[i + 2]) < 0)
      goto refuse;
    s[len++] = (char)(hex((unsigned char)raw[i + 1]) * 16 + hex((unsigned char)raw[i + 2]));
    i += 2;
  }
  s[len] = '\0';
  /* A dot segment would name a parent or this collection, a '/' another
   * path, a NUL would cut the id short: each routes or stores something the
   * client did not send. */
  if (len == 0 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) goto refuse;
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || c == '/') goto refuse;
    size_t k = utf8_seq((const unsigned char *)s + i, len - i);
    if (!k) goto refuse;
    i += k;
  }
  *out = s;
  return 0;
refuse:
  free(s);
  return -1;
}

/* Matches one template against a path; captures {name} segments (into req
 * when not NULL). A parameter never matches an empty segment or one
 * containing '/'. Returns 1 on a match, 0 when the path has another shape,
 * -1 when it has this shape but a parameter does not decode (named in bad). */
static int match(const char *tmpl, const char *path, gw_req *req, char *bad, size_t bad_len) {
  const char *t = tmpl, *p = path;
  size_t n = 0;
  int invalid = 0;
  while (*t && *p) {
    if (*t == '{') {
      const char *te = strchr(t, '}');
      const char *pe = strchr(p, '/');
      if (!te) return 0;
      if (!pe) pe = p + strlen(p);
      if (pe == p || n >= GW_MAX_PARAMS) goto no_match;
      char *value = NULL;
      if (gw_path_param(p, (size_t)(pe - p), &value) < 0) {
        if (!invalid && bad) snprintf(bad, bad_len, "%.*s", (int)(te - t - 1), t + 1);
        invalid = 1;
      } else if (req && !invalid) {
        req->param_names[n] = strndup(t + 1, (size_t)(te - t - 1));
        req->param_values[n] = value;
        req->n_params = n + 1;
        value = NULL;
      }
      free(value);
      n++;
      t = te + 1;
      p = pe;
      continue;
    }
    if (*t != *p) goto no_match;
    t++;
    p++;
  }
  /* One trailing slash is forgiven, as the catalog API documents both forms. */
  if (*t == '\0' && (*p == '\0' || (p[0] == '/' && p[1] == '\0'))) {
    if (!invalid) return 1;
    if (req) gw_req_free_params(req);
    return -1;
  }
no_match:
  if (req) gw_req_free_params(req);
  return 0;
}

const gw_route *gw_route_find(const gw_route *routes, size_t n, const char *method,
                              const char *path, gw_req *req, int *status, char *bad,
                              size_t bad_len) {
  int path_known = 0, invalid = 0;
  for (size_t i = 0; i < n; i++) {
    int m = match(routes[i].tmpl, path, NULL, invalid ? NULL : bad, bad_len);
    if (m < 0) invalid = 1;
    if (m <= 0) continue;
    path_known = 1;
    if (strcmp(routes[i].method, method) != 0) continue;
    if (match(routes[i].tmpl, path, req, NULL, 0) != 1) break; /* out of memory */
    return &routes[i];
  }
  /* A parameter that cannot be an id is the client's error whatever the
   * method, and never a reason to try the other routes. */
  *status = invalid ? 400 : path_known ? 405 : 404;
  return NULL;
}

const gw_route *gw_route_match(const gw_route *routes, size_t n, const char *method,
                               const char *path, gw_req *req, int *status) {
  return gw_route_find(routes, n, method, path, req, status, NULL, 0);
}

void gw_route_allow(const gw_route *routes, size_t n, const char *path, char *buf, size_t len) {
  static const char *const order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  int has[sizeof order / sizeof *order] = {0}, any = 0;
  for (size_t i = 0; i < n; i++) {
    if (match(routes[i].tmpl, path, NULL, NULL, 0) == 0) continue;
    any = 1;
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
      if (strcmp(routes[i].method, order[k]) == 0) has[k] = 1;
  }
  has[1] |= has[0]; /* HEAD wherever GET */
  size_t used = 0;
  buf[0] = '\0';
  for (size_t k = 0; any && k < sizeof order / sizeof *order; k++)
    if (has[k]) used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s, ", order[k]);
  if (any) snprintf(buf + used, used < len ? len - used : 0, "OPTIONS");
}

void gw_req_free_params(gw_req *req) {
  for (size_t i = 0; i < req->n_params; i++) {
    free(req->param_names[i]);
    free(req->param_values[i]);
    req->param_names[i] = req->param_values[i] = NULL;
  }
  req->n_params = 0;
}

const char *gw_param(const gw_req *req, const char *name) {
  for (size_t i = 0; i < req->n_params; i++)
    if (strcmp(req->param_names[i], name) == 0) return req->param_values[i];
  return NULL;
}

const char *gw_challenge(const char *path) {
  return gw_dialect_for_path(path) == &gw_customer
             ? "Bearer realm=\"events\", Basic realm=\"events\""
             : "Bearer realm=\"events\"";
}

const gw_dialect *gw_dialect_for_path(const char *path) {
  /* One prefix a line, as a table reads. */
  /* clang-format off */
  static const struct {
    const char *prefix;
    const gw_dialect *d;
  } prefixes[] = {
      {"/api/v2/events", &gw_activity},
      {"/rest-api/enterprise-interface/v1.0/", &gw_customer},
      {"/api/v1/event/", &gw_catalog},
      {"/api/v1/resource/", &gw_catalog},
      {"/v1/objects/", &gw_object},
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (strncmp(path, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) return prefixes[i].d;
  return &gw_plain;
}
