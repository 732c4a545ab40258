/* gw_guard.c - the checks every request passes once its headers have
 * arrived, before its body is read or the service is called: RFC 9112
 * framing (Content-Length and Transfer-Encoding that could frame the message
 * two ways, Host), header values that become gRPC metadata, the query's
 * size, and path parameters. A refusal is rendered by the dialect's error
 * renderer and closes the connection, whose remaining bytes may be framed
 * any way.
 *
 * It also keeps libmicrohttpd from decoding the request target: the path is
 * routed as sent and its parameters decoded once by the router
 * (gw_route.c); query names and values are decoded here, in the unescape
 * callback, the only place libmicrohttpd hands them over. */
#include "gw_guard.h"

#include "gw_conn.h"
#include "gw_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids.h"
#include "log.h"
#include "metrics.h"

/* Called once per request line, before libmicrohttpd splits the query: an
 * argument record per parameter would exhaust the connection's memory pool,
 * and 0.9.75 then closes the connection without the 431 it means to send. So
 * an overlong query ends here (the string libmicrohttpd splits next starts
 * just after the '?') and the request is refused in gw_guard_request. */
void *gw_guard_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)cls;
  gw_conn *g = gw_conn_of(conn);
  if (!g) return NULL;
  gw_conn_request_begins(conn, g);
  g->target = uri;
  g->flags = 0;
  const char *q = strchr(uri, '?');
  if (q && q[1]) {
    size_t n = 1;
    for (const char *c = q + 1; *c; c++)
      n += *c == '&';
    if (n > GW_MAX_QUERY_ARGS) {
      ((char *)q)[1] = '\0'; /* libmicrohttpd's own read buffer */
      g->flags |= GW_GUARD_MANY_ARGS;
    }
  }
  return NULL; /* the handler's first call keeps *con_cls == NULL */
}

static int hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* libmicrohttpd has already turned '+' into ' ' in query names and values
 * (so an unencoded "+01:00" offset arrives as " 01:00", see gw_util.c); what
 * remains is %XX, decoded as libmicrohttpd would, except that a decoded NUL,
 * which would cut the text short unseen, refuses the request. */
size_t gw_guard_unescape(void *cls, struct MHD_Connection *conn, char *s) {
  (void)cls;
  gw_conn *g = gw_conn_of(conn);
  if (!g || s == g->target) return strlen(s);
  char *w = s;
  for (const char *r = s; *r; r++) {
    int hi, lo;
    if (r[0] == '%' && (hi = hex((unsigned char)r[1])) >= 0 &&
        (lo = hex((unsigned char)r[2])) >= 0) {
      *w = (char)(hi * 16 + lo);
      if (!*w) g->flags |= GW_GUARD_QUERY_NUL;
      w++;
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

/* libmicrohttpd's diagnostics (client errors, mostly) as JSON lines. */
void gw_guard_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  if (!log_enabled(LOG_LEVEL_DEBUG)) return;
  char text[512];
  vsnprintf(text, sizeof text, fmt, ap);
  size_t n = strlen(text);
  while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
    text[--n] = '\0';
  const log_field f[] = {{.key = "detail", .kind = LOG_STR, .s = text}};
  log_fields(LOG_LEVEL_DEBUG, "libmicrohttpd", f, 1);
}

/* ---- the checks ---- */

int gw_guard_metadata_ok(const char *v, size_t max) {
  size_t n = strnlen(v, max + 1);
  if (n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c == ' ' && i > 0 && i + 1 < n && v[i - 1] != ' ') continue;
    if (c < 0x21 || c > 0x7e) return 0;
  }
  return 1;
}

typedef struct header_lines {
  const char *name;
  size_t n;
  const char *first;
} header_lines;

static enum MHD_Result count_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
  (void)kind;
  header_lines *h = cls;
  if (strcasecmp(key, h->name) != 0) return MHD_YES;
  if (!h->n++) h->first = value ? value : "";
  return MHD_YES;
}

/* How many lines of header `name` the request has; the first's value. */
static size_t lines_of(const gw_req *req, const char *name, const char **first) {
  header_lines h = {name, 0, NULL};
  if (req->conn) {
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_line, &h);
  } else {
    for (size_t i = 0; i < req->n_headers; i++)
      count_line(&h, MHD_HEADER_KIND, req->headers[i].key, req->headers[i].value);
  }
  *first = h.first;
  return h.n;
}

/* RFC 9112 section 6: a request whose body could be framed two ways is
 * refused, never guessed at (a proxy in front may have guessed the other way). */
static int check_framing(const gw_req *req, const char *version, gw_fail *f) {
  const char *te, *cl, *host;
  size_t n_te = lines_of(req, "Transfer-Encoding", &te);
  size_t n_cl = lines_of(req, "Content-Length", &cl);
  size_t n_host = lines_of(req, "Host", &host);
  int http10 = version && strcmp(version, "HTTP/1.0") == 0;
  if (n_te && http10)
    gw_fail_set(f, 400, "", "", "Transfer-Encoding is not HTTP/1.0 framing");
  else if (n_te && n_cl)
    gw_fail_set(f, 400, "", "", "Content-Length and Transfer-Encoding frame the body two ways");
  else if (n_te && (n_te > 1 || strcasecmp(te, "chunked") != 0))
    gw_fail_set(f, 501, "", "", "chunked is the only transfer coding served");
  else if (n_cl > 1)
    gw_fail_set(f, 400, "", "", "more than one Content-Length header");
  else if (n_host > 1 || (!n_host && !http10))
    gw_fail_set(f, 400, "", "", "an HTTP/1.1 request needs exactly one Host header");
  else
    return 0;
  return -1;
}

/* The credential becomes gRPC metadata on the channel all clients share:
 * gRPC refuses other bytes (and logs the whole value), and oversized
 * metadata fails other clients' calls. Its value never appears in a message. */
static int check_authorization(const gw_req *req, gw_fail *f, int *challenge) {
  const char *auth;
  size_t n = lines_of(req, "Authorization", &auth);
  if (n > 1) {
    gw_fail_set(f, 400, "", "", "more than one Authorization header");
    return -1;
  }
  if (!n) return 0;
  if (strnlen(auth, GW_MAX_AUTHORIZATION + 1) > GW_MAX_AUTHORIZATION) {
    gw_fail_set(f, 431, "", "", "the Authorization header is longer than %d bytes",
                GW_MAX_AUTHORIZATION);
    return -1;
  }
  if (!gw_guard_metadata_ok(auth, GW_MAX_AUTHORIZATION)) {
    gw_fail_set(f, 401, "", "",
                "credentials are visible ASCII characters and single spaces; the Authorization "
                "header holds others");
    *challenge = 1;
    return -1;
  }
  return 0;
}

static int check_target(const gw_req *req, unsigned flags, gw_fail *f) {
  if ((flags & GW_GUARD_MANY_ARGS) || (!req->conn && req->n_args > GW_MAX_QUERY_ARGS)) {
    gw_fail_set(f, 400, "", "invalid_value_format", "more than %d query parameters",
                GW_MAX_QUERY_ARGS);
    return -1;
  }
  if (flags & GW_GUARD_QUERY_NUL) {
    gw_fail_set(f, 400, "", "invalid_value_format", "a query parameter holds a NUL byte (%%00)");
    return -1;
  }
  for (const char *c = req->path; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
      gw_fail_set(f, 400, "", "", "the request target holds a space or a control character");
      return -1;
    }
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  char bad[64] = "";
  int status = 0;
  if (!gw_route_find(routes, n_routes, req->method, req->path, NULL, &status, bad, sizeof bad) &&
      status == 400) {
    gw_fail_set(f, 400, bad, "invalid_value_format",
                "%s is not a valid path parameter: an encoded NUL, '/', control character, dot "
                "segment or invalid UTF-8",
                bad);
    return -1;
  }
  return 0;
}

int gw_guard_check(const gw_req *req, const char *version, unsigned flags, gw_fail *f,
                   int *challenge) {
  *challenge = 0;
  if (flags & GW_GUARD_NO_STATE) {
    gw_fail_set(f, 503, "", "", "out of memory");
    return -1;
  }
  if (check_framing(req, version, f) < 0) return -1;
  if (check_authorization(req, f, challenge) < 0) return -1;
  return check_target(req, flags, f);
}

void gw_guard_render(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  const gw_dialect *d = gw_dialect_for_path(req->path);
  d->error(req, f, resp);
  if (!resp->status) resp->status = f->http; /* a dialect may answer another status */
  if (!resp->content_type) resp->content_type = d->content_type;
}

/* ---- the refusal on the wire ---- */

void gw_guard_request_id(struct MHD_Connection *conn, char *out, size_t len) {
  const char *s = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  if (s && *s && !strchr(s, ' ') && gw_guard_metadata_ok(s, 64))
    snprintf(out, len, "%s", s);
  else
    ids_uuid4(out);
}

static void log_refusal(const gw_req *req, const gw_fail *f, int status, long long us) {
  int level = status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO;
  if (log_enabled(level)) {
    const log_field lf[] = {
        {.key = "method", .kind = LOG_STR, .s = req->method},
        {.key = "path", .kind = LOG_STR, .s = req->path},
        {.key = "status", .kind = LOG_INT, .i = status},
        {.key = "ms", .kind = LOG_NUM, .d = (double)us / 1000.0},
        {.key = "request_id", .kind = LOG_STR, .s = req->request_id},
        {.key = "refused", .kind = LOG_STR, .s = f->message},
    };
    log_fields(level, "http", lf, sizeof lf / sizeof *lf);
  }
  size_t n_routes;
  int st;
  const gw_route *routes = gw_routes(&n_routes);
  gw_http_observe(gw_route_match(routes, n_routes, req->method, req->path, NULL, &st), status, us);
}

int gw_guard_request(struct MHD_Connection *conn, const char *method, const char *url,
                     const char *version, enum MHD_Result *ret) {
  long long started = ids_now_us();
  gw_conn *g = gw_conn_of(conn);
  gw_req req = {.conn = conn, .method = method, .path = url, .body = ""};
  gw_fail f = {0};
  int challenge = 0;
  if (gw_guard_check(&req, version, g ? g->flags : GW_GUARD_NO_STATE, &f, &challenge) == 0)
    return 0;

  gw_guard_request_id(conn, req.request_id, sizeof req.request_id);
  gw_resp resp = {0};
  gw_guard_render(&req, &f, &resp);
  char *text = resp.body ? json_dumps(resp.body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  struct MHD_Response *r = MHD_create_response_from_buffer(text ? strlen(text) : 0,
                                                           text ? text : "", MHD_RESPMEM_MUST_COPY);
  free(text);
  *ret = MHD_NO; /* without a response, at least close the connection */
  if (r) {
    MHD_add_response_header(r, "Content-Type",
                            resp.content_type ? resp.content_type
                                              : "application/json; charset=utf-8");
    MHD_add_response_header(r, "X-Request-Id", req.request_id);
    MHD_add_response_header(r, "Connection", "close");
    if (challenge) MHD_add_response_header(r, "WWW-Authenticate", gw_challenge(url));
    *ret = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
  }
  log_refusal(&req, &f, resp.status, ids_now_us() - started);
  gw_resp_clear(&resp);
  return 1;
}
