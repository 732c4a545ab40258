/* fuzz_query.c - one dialect's query-string parsing (FUZZ_DIALECT names it):
 * the fuzzed query string, decoded as libmicrohttpd decodes it, goes to every
 * bodiless route of the dialect (lists with their filters, ranges, sorts,
 * cursors and page sizes; gets and deletes, which refuse unknown
 * parameters), through the request builder and, with a stand-in response
 * carrying page tokens, the renderer that writes the page links back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_pipeline.h"
#include "fuzz_util.h"

#ifndef FUZZ_DIALECT
#error "FUZZ_DIALECT must name the dialect"
#endif

#define MAX_ARGS 80

/* A plausible value of each path parameter. */
static const char *sample(const char *param, size_t n) {
  static const struct {
    const char *name, *value;
  } samples[] = {
      {"id", "7"},
      {"event_id", "0123456789abcdef0123456789abcdef"},
      {"event_category_id", "0123456789abcdef0123456789abcdef"},
      {"event_property_id", "0123456789abcdef0123456789abcdef"},
      {"objectId", "meetings"},
      {"eventId", "01890a5d-ac96-774b-bcce-b302099a8057"},
  };
  for (size_t i = 0; i < sizeof samples / sizeof *samples; i++)
    if (strlen(samples[i].name) == n && strncmp(samples[i].name, param, n) == 0)
      return samples[i].value;
  return "x";
}

/* The template with every {param} filled. */
static void fill_path(const char *tmpl, char *out, size_t len) {
  size_t o = 0;
  for (const char *t = tmpl; *t && o + 1 < len;) {
    if (*t == '{') {
      const char *e = strchr(t, '}');
      if (!e) break;
      o += (size_t)snprintf(out + o, len - o, "%s", sample(t + 1, (size_t)(e - t - 1)));
      t = e + 1;
    } else {
      out[o++] = *t++;
    }
  }
  out[o < len ? o : len - 1] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  for (size_t i = 0; i < n_routes; i++) {
    const gw_route *rt = &routes[i];
    if (rt->local || rt->needs_body || strcmp(rt->dialect->name, FUZZ_DIALECT) != 0) continue;
    char path[256];
    fill_path(rt->tmpl, path, sizeof path);
    char *qs = fz_strndup(data, size);
    gw_query_arg args[MAX_ARGS];
    size_t n_args = fz_parse_query(qs, args, MAX_ARGS);
    static const gw_query_arg headers[] = {
        {"Host", "events.example:8080"},
        {"Accept", "*/*"},
        {"Authorization", "Bearer sk:fuzz"},
    };
    gw_req req = {.method = rt->method,
                  .path = path,
                  .body = "",
                  .args = args,
                  .n_args = n_args,
                  .headers = headers,
                  .n_headers = sizeof headers / sizeof *headers};
    snprintf(req.request_id, sizeof req.request_id, "fuzz-query");
    fz_rpc rpc = {.code = GRPC_STATUS_OK};
    fz_handle(&req, &rpc);
    free(qs);
  }
  return 0;
}
