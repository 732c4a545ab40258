/* gw_http.h - the HTTP server: libmicrohttpd in epoll mode, bodies, request
 * ids, asynchronous dispatch, the HTTP metrics. */
#ifndef EVENTS_GW_HTTP_H
#define EVENTS_GW_HTTP_H

#include <stddef.h>

typedef struct gw_http gw_http;

typedef struct gw_http_config {
  const char *addr; /* host:port */
  int rpc_timeout_ms;
  unsigned max_connections;
  unsigned idle_timeout_s;
  unsigned park_after_s;        /* idle keep-alive connections leave the library (0: never) */
  long long request_timeout_ms; /* to receive a whole request; 0: no limit */
  unsigned threads;             /* epoll threads */
  size_t conn_memory;           /* libmicrohttpd's memory pool per connection */
  int https;                    /* serve HTTPS with the certificate gw_tls_open loaded */
} gw_http_config;

struct gw_route;
/* Counts and times one answered request (rt NULL: unmatched). */
void gw_http_observe(const struct gw_route *rt, int status, long long us);

int gw_http_start(const gw_http_config *cfg, gw_http **out, int *port, char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish, closes everything. */
void gw_http_stop(gw_http *h);

#endif
