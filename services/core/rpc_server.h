/* rpc_server.h - the gRPC server: worker threads sharing one completion queue, a
 * method table built from the protobuf-c service descriptors, and graceful
 * shutdown. */
#ifndef EVENTS_RPC_SERVER_H
#define EVENTS_RPC_SERVER_H

#include <stddef.h>

#include "creds_live.h"
#include "api.h"
#include "rpc.h"
#include "rpc_reflect.h"
#include "store.h"
#include "tls.h"

typedef struct rpc_server rpc_server;

typedef struct rpc_server_config {
  const char *addr;
  int workers;
  int running; /* workers that run at once, the others standing by (rpc_run.c); 0: all */
  creds_live *creds;
  store *store;
  const rpc_service_def *services;
  size_t n_services;
  const reflect *reflect;
  const api *api;       /* request rules (rpc_validate); NULL: none */
  const tls_files *tls; /* NULL or no files: plaintext */
} rpc_server_config;

/* Binds and starts serving; *port receives the bound port. */
int rpc_server_start(const rpc_server_config *cfg, rpc_server **out, int *port, char *err,
                     size_t errlen);
/* Stops accepting, lets in-flight calls finish for up to grace_ms, then
 * cancels the rest and frees everything. */
void rpc_server_stop(rpc_server *s, int grace_ms);

#endif
