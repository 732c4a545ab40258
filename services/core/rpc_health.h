/* rpc_health.h - grpc.health.v1.Health Check and Watch for "", "liveness"
 * and every served service. */
#ifndef EVENTS_RPC_HEALTH_H
#define EVENTS_RPC_HEALTH_H

#include <stddef.h>

#include "rpc.h"

/* `names` must outlive the server. */
rpc_service_def rpc_health_def(const char *const *names, size_t n);
/* After this, Check answers NOT_SERVING (set when draining). */
void rpc_health_set_draining(void);
/* The status of `service` now: SERVING or NOT_SERVING, SERVICE_UNKNOWN
 * for a name not served (values of HealthCheckResponse.ServingStatus). */
int rpc_health_status(const char *service);
/* Sends the changed status to every Watch stream (rpc_server.c); called
 * whenever the store's reachability or draining changes. */
void rpc_watch_notify(void);

#endif
