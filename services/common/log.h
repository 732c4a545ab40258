/* log.h - one JSON object per line on stderr, shared by both processes. */
#ifndef EVENTS_LOG_H
#define EVENTS_LOG_H

#include <jansson.h>

enum { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Returns 0, or -1 when level is not debug/info/warn/error. */
int log_init(const char *process, const char *level);
int log_enabled(int level);
/* Writes {"ts","level","process","msg", ...fields}; steals `fields` (may be NULL). */
void log_json(int level, const char *msg, json_t *fields);
void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
