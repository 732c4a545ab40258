/* gw_http.h - the HTTP server: libmicrohttpd, bodies, request ids, dispatch. */
#ifndef EVENTS_GW_HTTP_H
#define EVENTS_GW_HTTP_H

#include <stddef.h>

typedef struct gw_http gw_http;

typedef struct gw_http_config {
  const char *addr; /* host:port */
  int rpc_timeout_ms;
  unsigned max_connections;
  unsigned idle_timeout_s;
  int https; /* serve HTTPS with the certificate gw_tls_open loaded */
} gw_http_config;

int gw_http_start(const gw_http_config *cfg, gw_http **out, int *port, char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish, closes everything. */
void gw_http_stop(gw_http *h);

#endif
