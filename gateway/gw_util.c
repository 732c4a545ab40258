/* gw_util.c - what every handler reads and writes: query strings, headers,
 * the client's base URL and page links, bodies, failures. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"

typedef struct query_iter {
  gw_query_arg *out;
  size_t cap, n;
} query_iter;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  (void)kind;
  query_iter *it = cls;
  if (it->n < it->cap) it->out[it->n] = (gw_query_arg){key, value ? value : ""};
  it->n++;
  return MHD_YES;
}

size_t gw_query(const gw_req *req, gw_query_arg *out, size_t cap) {
  query_iter it = {out, cap, 0};
  if (!req->conn) {
    for (size_t i = 0; i < req->n_args; i++)
      collect(&it, MHD_GET_ARGUMENT_KIND, req->args[i].key, req->args[i].value);
    return it.n;
  }
  MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect, &it);
  return it.n;
}

/* The first pair named `key`, ignoring case as libmicrohttpd does. */
static const gw_query_arg *find_pair(const gw_query_arg *v, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(v[i].key, key) == 0) return &v[i];
  return NULL;
}

const char *gw_query_get(const gw_req *req, const char *key) {
  if (req->conn) return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
  const gw_query_arg *a = find_pair(req->args, req->n_args, key);
  return a ? a->value : NULL;
}

const char *gw_header(const gw_req *req, const char *name) {
  if (req->conn) return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
  const gw_query_arg *h = find_pair(req->headers, req->n_headers, name);
  return h ? h->value : NULL;
}

/* The length of the first host of h (behind a chain of proxies the first
 * is the one the client used), when it is one links may carry: RFC 3986
 * host[:port] characters only (no quotes, controls or non-ASCII bytes, which
 * JSON strings and URLs could not hold as they are); 0 otherwise. */
static size_t host_len(const char *h) {
  size_t n = h ? strcspn(h, ", ") : 0;
  if (n == 0 || n > 255) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)h[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("-._~!$&'()*+;=:[]%", c)))
      return 0;
  }
  return n;
}

void gw_base_url(const gw_req *req, char *buf, size_t len) {
  const char *host = gw_header(req, "X-Forwarded-Host");
  size_t n = host_len(host);
  if (!n) n = host_len(host = gw_header(req, "Host"));
  if (!n) n = strlen(host = "localhost");
  const char *proto = gw_header(req, "X-Forwarded-Proto");
  if (!proto || (strcmp(proto, "https") != 0 && strcmp(proto, "http") != 0)) proto = "http";
  snprintf(buf, len, "%s://%.*s", proto, (int)n, host);
}

/* Appends s percent-encoded (RFC 3986 unreserved characters stay). */
static void url_encode(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      fputc(c, out);
    else
      fprintf(out, "%%%02X", c);
  }
}

json_t *gw_page_url(const gw_req *req, const char *const *drop, const char *set_param,
                    const char *set_value) {
  gw_query_arg args[64];
  size_t n = gw_query(req, args, 64);
  char base[512], *text = NULL, sep = '?';
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out) return json_null();
  gw_base_url(req, base, sizeof base);
  fprintf(out, "%s%s", base, req->path);
  for (size_t i = 0; i < n && i < 64; i++) {
    const char *const *d = drop;
    while (d && *d && strcmp(*d, args[i].key) != 0)
      d++;
    if (d && *d) continue;
    fputc(sep, out);
    url_encode(out, args[i].key);
    fputc('=', out);
    url_encode(out, args[i].value ? args[i].value : "");
    sep = '&';
  }
  if (set_param) {
    fputc(sep, out);
    url_encode(out, set_param);
    fputc('=', out);
    url_encode(out, set_value);
  }
  fclose(out);
  json_t *j = text ? json_string(text) : NULL;
  free(text);
  return j ? j : json_null();
}

json_t *gw_text(const char *s) {
  json_t *j = utf8_json(s ? s : "", s ? strlen(s) : 0);
  return j ? j : json_string("");
}

void gw_fail_set(gw_fail *f, int http, const char *field, const char *reason, const char *fmt,
                 ...) {
  va_list ap;
  f->http = http;
  f->code = GRPC_STATUS_OK;
  snprintf(f->field, sizeof f->field, "%s", field ? field : "");
  snprintf(f->reason, sizeof f->reason, "%s", reason ? reason : "");
  va_start(ap, fmt);
  vsnprintf(f->message, sizeof f->message, fmt, ap);
  va_end(ap);
  /* Client text (a parameter name, a cut value) ends up in JSON bodies. */
  utf8_scrub(f->field);
  utf8_scrub(f->message);
}

void gw_fail_from_pbjson(gw_fail *f, const pbjson_err *e, const char *prefix) {
  char field[256];
  if (prefix && *prefix)
    snprintf(field, sizeof field, "%s%s%s", prefix, e->path[0] ? "." : "", e->path);
  else
    snprintf(field, sizeof field, "%s", e->path);
  gw_fail_set(f, 400, field, e->reason ? e->reason : "invalid_value_format", "%s%s%s", field,
              field[0] ? ": " : "", e->msg);
}

int gw_body_json(const gw_req *req, json_t **out, gw_fail *f) {
  json_error_t je;
  if (req->body_len == 0) {
    gw_fail_set(f, 400, "", "required", "a JSON body is required");
    return -1;
  }
  json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    /* Valid JSON all the same: name the number jansson cannot hold, as a
     * mapper refusal would (a JSON pointer where the dialect speaks JSON:API). */
    char path[256], token[64];
    const gw_dialect *d = req->route ? req->route->dialect : NULL;
    unsigned style = d && d->content_type && strstr(d->content_type, "vnd.api+json")
                         ? PBJSON_PATH_POINTER
                         : PBJSON_PATH_DOTTED;
    if (json_error_code(&je) == json_error_numeric_overflow &&
        pbjson_find_unkeepable(req->body, req->body_len, style, path, sizeof path, token,
                               sizeof token) == 0) {
      gw_fail_set(f, 400, path, "out_of_range", "%s%sthe number %s is too large to keep", path,
                  path[0] ? ": " : "", token);
      return -1;
    }
    gw_fail_set(f, 400, "", "invalid_value_format", "malformed JSON at line %d column %d: %s",
                je.line, je.column, je.text);
    return -1;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    gw_fail_set(f, 400, "", "invalid_value_format", "the body must be a JSON object");
    return -1;
  }
  *out = j;
  return 0;
}

int gw_merge(ProtobufCMessage *msg, json_t *fields, unsigned flags, gw_fail *f) {
  pbjson_err e = {0};
  if (pbjson_merge(fields, msg, flags, &e) < 0) {
    gw_fail_from_pbjson(f, &e, NULL);
    return -1;
  }
  return 0;
}
