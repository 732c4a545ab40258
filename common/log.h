/* log.h - one JSON object per line on stderr, shared by both processes. */
#ifndef EVENTS_LOG_H
#define EVENTS_LOG_H

#include <stddef.h>

#include <jansson.h>

enum { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

typedef enum { LOG_STR, LOG_INT, LOG_NUM, LOG_RAW } log_kind;

/* One member of a line: s for LOG_STR (escaped) and LOG_RAW (JSON text
 * written as it is), i for LOG_INT, d for LOG_NUM. */
typedef struct log_field {
  const char *key;
  log_kind kind;
  const char *s;
  long long i;
  double d;
} log_field;

/* Returns 0, or -1 when level is not debug/info/warn/error. */
int log_init(const char *process, const char *level);
int log_enabled(int level);
/* Writes {"ts","level","process","msg", fields...} with no allocation: the
 * path of the per-call access lines. */
void log_fields(int level, const char *msg, const log_field *fields, size_t n);
/* The same from a JSON object's members; steals `fields` (may be NULL). */
void log_json(int level, const char *msg, json_t *fields);
/* Routes gRPC core's own log lines through this logger. */
void log_grpc_core(void);
void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
