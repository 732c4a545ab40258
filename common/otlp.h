/* otlp.h - optional span export over OTLP/HTTP (protobuf), in batches from
 * a background thread, so a slow or absent collector never delays a
 * request: when the bounded queue is full, spans are dropped and counted. */
#ifndef EVENTS_OTLP_H
#define EVENTS_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

enum { OTLP_SPAN_SERVER = 2, OTLP_SPAN_CLIENT = 3 };

typedef struct otlp_attr {
  const char *key, *value; /* string attributes; an int goes as text */
} otlp_attr;

/* endpoint: the collector's base URL (".../v1/traces" is appended unless
 * given). Returns 0, or -1 with err. */
int otlp_start(const char *endpoint, const char *service_name, char *err, size_t errlen);
int otlp_enabled(void);
/* Queues one finished span; never blocks. */
void otlp_record(const trace_ctx *t, const char *name, int kind, uint64_t start_ns, uint64_t end_ns,
                 int error, const otlp_attr *attrs, size_t n_attrs);
/* Sends what is queued and stops the exporter. */
void otlp_stop(void);
uint64_t otlp_now_ns(void);

#endif
