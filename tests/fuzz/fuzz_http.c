/* fuzz_http.c - the gateway's HTTP request path in process: fuzzed method,
 * path, query, headers and body through the guard (framing, header values,
 * path parameters; its refusals rendered), route matching, the dialect's
 * checks, request builders, renderers and error bodies of every route, with
 * the gRPC call replaced by a fuzzed status and response message.
 *
 * Input, a raw HTTP/1.1 request as a client writes it:
 *   [@<grpc code> <n>\n]          optional: what the service answers, and
 *                                 that the last n bytes are its response
 *   METHOD SP TARGET[ SP HTTP/1.1]\n
 *   Name: value\n ...             headers, up to an empty line
 *   body                          the rest */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_pipeline.h"
#include "fuzz_util.h"
#include "gw_guard.h"

#define MAX_ARGS 80
#define MAX_HEADERS 32

static char *next_line(char **p, char *end) {
  char *s = *p;
  if (s >= end) return NULL;
  char *nl = memchr(s, '\n', (size_t)(end - s));
  char *e = nl ? nl : end;
  if (e > s && e[-1] == '\r') e[-1] = '\0';
  *e = '\0';
  *p = nl ? nl + 1 : end;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = fz_strndup(data, size);
  char *p = buf, *end = buf + size;
  fz_rpc rpc = {.code = GRPC_STATUS_OK, .message = "fuzzed status"};

  if (size && buf[0] == '@') {
    char *line = next_line(&p, end);
    unsigned code = 0, n = 0;
    if (line && sscanf(line + 1, "%u %u", &code, &n) >= 1) {
      rpc.code = (grpc_status_code)(code % 17);
      size_t rest = (size_t)(end - p);
      if (n > rest) n = (unsigned)rest;
      end -= n;
      rpc.response = (const uint8_t *)end;
      rpc.response_len = n;
    }
  }
  /* The response bytes stay binary; the request part must end before them. */
  char *req_text = fz_strndup((const uint8_t *)p, (size_t)(end - p));
  char *q = req_text, *qend = req_text + (end - p);

  char *line = next_line(&q, qend);
  if (!line) goto out;
  char *sp = strchr(line, ' ');
  if (!sp) goto out;
  *sp = '\0';
  char *method = line, *target = sp + 1;
  char *ver = strchr(target, ' ');
  if (ver) *ver = '\0';
  if (!*method) goto out;

  gw_query_arg args[MAX_ARGS], headers[MAX_HEADERS];
  size_t n_args = 0, n_headers = 0;
  char *qs = strchr(target, '?');
  if (qs) {
    *qs++ = '\0';
    n_args = fz_parse_query(qs, args, MAX_ARGS);
  }

  char *h;
  while ((h = next_line(&q, qend)) && *h) {
    char *colon = strchr(h, ':');
    if (!colon || colon == h || n_headers == MAX_HEADERS) continue;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    headers[n_headers++] = (gw_query_arg){h, v};
  }
  const char *body = q < qend ? q : "";
  size_t body_len = q < qend ? (size_t)(qend - q) : 0;

  gw_req req = {.conn = NULL,
                .method = method,
                .path = target,
                .body = body,
                .body_len = body_len,
                .args = args,
                .n_args = n_args,
                .headers = headers,
                .n_headers = n_headers};
  req.authorization = gw_header(&req, "Authorization");
  snprintf(req.request_id, sizeof req.request_id, "fuzz-request");
  /* The path stays as sent (the router decodes its parameters); the guard
   * runs first, as on the access handler's first call. */
  gw_fail f = {0};
  int challenge;
  if (gw_guard_check(&req, ver ? ver + 1 : "HTTP/1.0", 0, &f, &challenge) < 0) {
    gw_resp resp = {0};
    gw_guard_render(&req, &f, &resp);
    FZ_CHECK(resp.status >= 400);
    FZ_CHECK(!challenge || resp.status == 401);
    fz_check_resp(&resp);
    gw_resp_clear(&resp);
  } else {
    fz_handle(&req, &rpc);
  }
out:
  free(req_text);
  free(buf);
  return 0;
}

/* The OpenAPI document once: it walks every route and descriptor. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  gw_req req = {.method = "GET", .path = "/openapi.json"};
  fz_rpc rpc = {0};
  fz_handle(&req, &rpc);
  return 0;
}
