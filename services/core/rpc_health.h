/* rpc_health.h - grpc.health.v1.Health/Check for "" and every served service. */
#ifndef EVENTS_RPC_HEALTH_H
#define EVENTS_RPC_HEALTH_H

#include <stddef.h>

#include "rpc.h"

/* `names` must outlive the server. */
rpc_service_def rpc_health_def(const char *const *names, size_t n);
/* After this, Check answers NOT_SERVING (set when draining). */
void rpc_health_set_draining(void);

#endif
