/* gw_guard.h - what every request must pass before the gateway reads its
 * body or calls the service: HTTP/1.1 framing (RFC 9112), the header values
 * that become gRPC metadata, the query's size, and path parameters that
 * decode to valid text. Refusals carry the dialect's error shape and close
 * the connection. */
#ifndef EVENTS_GW_GUARD_H
#define EVENTS_GW_GUARD_H

#include <stdarg.h>

#include "gw.h"

/* Longest Authorization value forwarded: gRPC's metadata limits apply to the
 * one channel every client shares, so one oversized header must not reach it. */
#define GW_MAX_AUTHORIZATION 4096
/* Most query parameters a request may carry; past about 600 libmicrohttpd
 * 0.9.75 runs out of connection memory and drops the connection unanswered. */
#define GW_MAX_QUERY_ARGS 64

/* What libmicrohttpd noticed while reading the request line (see
 * gw_guard_uri), for gw_guard_check. */
enum {
  GW_GUARD_MANY_ARGS = 1 << 0, /* more than GW_MAX_QUERY_ARGS: the query was dropped */
  GW_GUARD_QUERY_NUL = 1 << 1, /* a query name or value decodes to a NUL byte */
  GW_GUARD_NO_STATE = 1 << 2,  /* no per-connection state (out of memory) */
};

/* Checks a request whose headers have arrived, req->path as sent (not
 * percent-decoded), version as on the request line. Returns 0, or -1 with f
 * filled and *challenge set when a 401 needs WWW-Authenticate. */
int gw_guard_check(const gw_req *req, const char *version, unsigned flags, gw_fail *f,
                   int *challenge);
/* The error body of a refused request in the shape of the dialect its path
 * belongs to. */
void gw_guard_render(const gw_req *req, const gw_fail *f, gw_resp *resp);
/* A header value gRPC accepts as metadata: visible ASCII and single inner
 * spaces, at most max bytes. */
int gw_guard_metadata_ok(const char *v, size_t max);

/* The request's id: its X-Request-Id when that is a short token (it goes on
 * as metadata and into logs), else a new UUID. */
void gw_guard_request_id(struct MHD_Connection *conn, char *out, size_t len);

/* The access handler's first call: checks the request, and when it fails
 * queues the answer itself (the body is never read; the connection closes)
 * and returns 1 with *ret for the handler to return. 0: carry on. */
int gw_guard_request(struct MHD_Connection *conn, const char *method, const char *url,
                     const char *version, enum MHD_Result *ret);

/* libmicrohttpd callbacks behind GW_GUARD_MHD_OPTIONS. */
void *gw_guard_uri(void *cls, const char *uri, struct MHD_Connection *conn);
size_t gw_guard_unescape(void *cls, struct MHD_Connection *conn, char *s);
void gw_guard_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The daemon options the guard needs (besides gw_conn's per-connection
 * state, which it keeps its notes in): the request
 * target as sent (paths are decoded by the router, once per parameter; query
 * names and values by gw_guard_unescape), and libmicrohttpd's messages as
 * JSON log lines. */
#define GW_GUARD_MHD_OPTIONS                                                                       \
  MHD_OPTION_URI_LOG_CALLBACK, gw_guard_uri, NULL, MHD_OPTION_UNESCAPE_CALLBACK,                   \
      gw_guard_unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, gw_guard_mhd_log, NULL

#endif
