/* gw_route.c - path template matching over the one route table. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* Matches one template against a path; captures {name} segments. A
 * parameter never matches an empty segment or one containing '/'. */
static int match(const char *tmpl, const char *path, gw_req *req) {
  const char *t = tmpl, *p = path;
  size_t n = 0;
  while (*t && *p) {
    if (*t == '{') {
      const char *te = strchr(t, '}');
      const char *pe = strchr(p, '/');
      if (!te) return 0;
      if (!pe) pe = p + strlen(p);
      if (pe == p || n >= GW_MAX_PARAMS) goto no_match;
      if (req) {
        req->param_names[n] = strndup(t + 1, (size_t)(te - t - 1));
        req->param_values[n] = strndup(p, (size_t)(pe - p));
        req->n_params = ++n;
      } else {
        n++;
      }
      t = te + 1;
      p = pe;
      continue;
    }
    if (*t != *p) goto no_match;
    t++;
    p++;
  }
  /* One trailing slash is forgiven, as the catalog API documents both forms. */
  if (*t == '\0' && (*p == '\0' || (p[0] == '/' && p[1] == '\0'))) return 1;
no_match:
  if (req) gw_req_free_params(req);
  return 0;
}

const gw_route *gw_route_match(const gw_route *routes, size_t n, const char *method,
                               const char *path, gw_req *req, int *status) {
  int path_known = 0;
  for (size_t i = 0; i < n; i++) {
    if (!match(routes[i].tmpl, path, NULL)) continue;
    path_known = 1;
    if (strcmp(routes[i].method, method) != 0) continue;
    match(routes[i].tmpl, path, req);
    return &routes[i];
  }
  *status = path_known ? 405 : 404;
  return NULL;
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

const gw_dialect *gw_dialect_for_path(const char *path) {
  static const struct {
    const char *prefix;
    const gw_dialect *d;
  } prefixes[] = {
      {"/api/v2/events", &gw_activity},
      {"/rest-api/enterprise-interface/v1.0/", &gw_customer},
      {"/api/v1/event/", &gw_catalog},
      {"/v1/objects/", &gw_object},
  };
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (strncmp(path, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) return prefixes[i].d;
  return &gw_plain;
}
