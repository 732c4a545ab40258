/* log.c - structured logging: one JSON object per line, written with a single
 * write(2) so lines from concurrent threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static int min_level = LOG_LEVEL_INFO;
static const char *process_name = "events";

int log_init(const char *process, const char *level) {
  process_name = process;
  if (!level || !*level) return 0;
  for (int i = 0; i < 4; i++) {
    if (strcmp(level, level_names[i]) == 0) {
      min_level = i;
      return 0;
    }
  }
  return -1;
}

int log_enabled(int level) {
  return level >= min_level;
}

void log_json(int level, const char *msg, json_t *fields) {
  if (!log_enabled(level)) {
    json_decref(fields);
    return;
  }
  struct timeval tv;
  struct tm tm;
  char ts[64];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

  json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
                           "process", process_name, "msg", msg ? msg : "");
  if (!line) goto out_fields;
  if (fields) json_object_update_missing(line, fields);
  char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(line);
  if (!text) goto out_fields;
  size_t n = strlen(text);
  text[n] = '\n'; /* overwrite the terminator: json_dumps allocated n+1 */
  ssize_t w = write(STDERR_FILENO, text, n + 1);
  (void)w; /* nowhere left to report a failed log write */
  free(text);
out_fields:
  json_decref(fields);
}

void log_printf(int level, const char *fmt, ...) {
  if (!log_enabled(level)) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log_json(level, buf, NULL);
}
