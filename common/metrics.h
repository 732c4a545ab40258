/* metrics.h - Prometheus counters, gauges and latency histograms shared by
 * both processes, rendered one family at a time (HELP, TYPE, then its
 * series) as the reference parsers require, with the standard process_*
 * families and events_build_info. Series are named by metric + label text,
 * e.g. metrics_count("grpc_server_started_total", "grpc_method=\"Get\"", 1). */
#ifndef EVENTS_METRICS_H
#define EVENTS_METRICS_H

#include <stddef.h>

void metrics_count(const char *name, const char *labels, double v);
void metrics_gauge_add(const char *name, const char *labels, double delta);
void metrics_gauge_set(const char *name, const char *labels, double v);
void metrics_observe(const char *name, const char *labels, double seconds);
/* A series found once and kept: the hot path then updates it with an atomic,
 * without hashing its name and labels or taking the registry's lock. NULL
 * (registry full, out of memory) is accepted by the updates and ignored.
 * Series live as long as the process. */
typedef struct series metrics_series;
metrics_series *metrics_counter_of(const char *name, const char *labels);
metrics_series *metrics_gauge_of(const char *name, const char *labels);
metrics_series *metrics_histogram_of(const char *name, const char *labels);
void metrics_add(metrics_series *s, double v);              /* counter or gauge */
void metrics_observe_in(metrics_series *s, double seconds); /* histogram */
/* Declares a family's TYPE ("counter", "gauge", "histogram") and HELP text,
 * once at start-up, before its first series. */
void metrics_describe(const char *name, const char *type, const char *help);
/* Histogram buckets reach at least this many seconds (the longest deadline
 * a call may have), so slow calls are not all lumped into +Inf. */
void metrics_set_max_seconds(double seconds);
/* The exposition text (text/plain; version=0.0.4); malloc'd. */
char *metrics_render(void);
/* Escapes a label value into buf. */
const char *metrics_label(const char *value, char *buf, size_t len);

#endif
