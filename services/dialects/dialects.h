/* dialects.h - the four dialect services and the collections they store. */
#ifndef EVENTS_DIALECTS_H
#define EVENTS_DIALECTS_H

#include "rpc.h"
#include "store.h"

typedef struct dialect {
  rpc_service_def service;
  const store_collection *collections;
  size_t n_collections;
} dialect;

extern const dialect activity_dialect;
extern const dialect customer_dialect;
extern const dialect catalog_dialect;
extern const dialect object_dialect;

/* Every dialect, in a fixed order. */
const dialect *const *dialects_all(size_t *n);
/* The union of the dialects' collections (static storage). */
const store_schema *dialects_schema(void);

#endif
