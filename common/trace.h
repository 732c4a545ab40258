/* trace.h - W3C Trace Context (traceparent/tracestate): parsed from a
 * request, made when absent, passed on to the next hop, and written into
 * every log line about the request as trace_id and span_id. */
#ifndef EVENTS_TRACE_H
#define EVENTS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_STATE_MAX 512

typedef struct trace_ctx {
  uint8_t trace_id[16];
  uint8_t span_id[8];   /* this hop's span */
  uint8_t parent_id[8]; /* the caller's span; all zero when this hop began the trace */
  uint8_t flags;        /* bit 0: sampled */
  char state[TRACE_STATE_MAX + 1];
  char trace_hex[33], span_hex[17]; /* for log lines */
} trace_ctx;

/* Starts this hop's span: continues traceparent when it is valid (version
 * 00 format, non-zero ids), else begins a new trace. tracestate is kept
 * only with a valid parent and when it fits. Returns 1 when a parent was
 * taken, 0 when a new trace began. */
int trace_begin(trace_ctx *t, const char *traceparent, size_t len, const char *tracestate,
                size_t state_len);
/* The traceparent value naming this hop's span as the parent ("00-...-01"). */
void trace_header(const trace_ctx *t, char out[56]);
/* 1 when the parent id is set. */
int trace_has_parent(const trace_ctx *t);

#endif
