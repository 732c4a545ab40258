/* metrics.h - Prometheus counters, gauges and latency histograms shared by
 * both processes. Series are named by metric + label text, e.g.
 * metrics_count("events_rpc_requests_total", "method=\"/a.B/C\",code=\"0\"", 1). */
#ifndef EVENTS_METRICS_H
#define EVENTS_METRICS_H

#include <stddef.h>

void metrics_count(const char *name, const char *labels, double v);
void metrics_gauge_add(const char *name, const char *labels, double delta);
void metrics_gauge_set(const char *name, const char *labels, double v);
void metrics_observe(const char *name, const char *labels, double seconds);
/* Declares HELP/TYPE text for a metric (once, at start-up). */
void metrics_describe(const char *name, const char *type, const char *help);
/* The exposition text (text/plain; version=0.0.4); malloc'd. */
char *metrics_render(void);
/* Escapes a label value into buf. */
const char *metrics_label(const char *value, char *buf, size_t len);

#endif
