/* rpc_metrics.h - the service's small HTTP listener for GET /metrics
 * (EVENTS_METRICS_ADDR), with the store's load sampled at each scrape. */
#ifndef EVENTS_RPC_METRICS_H
#define EVENTS_RPC_METRICS_H

#include <stddef.h>

#include "store.h"

typedef struct rpc_metrics rpc_metrics;

void rpc_metrics_describe(void);
int rpc_metrics_start(const char *addr, store *st, rpc_metrics **out, int *port, char *err,
                      size_t errlen);
void rpc_metrics_stop(rpc_metrics *m);

#endif
