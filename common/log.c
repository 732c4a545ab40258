/* log.c - structured logging: one JSON object per line, formatted into a
 * stack buffer and written with a single write(2), so lines from concurrent
 * threads never interleave and the per-call access lines cost no
 * allocation. */
#include "log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <grpc/support/log.h>

#include "utf8.h"

#define LOG_LINE_MAX 4096
#define LOG_JSON_FIELDS 16

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

/* A line being formatted. Room for the closing "}\n" is always kept, and a
 * value that does not fit is cut (still valid JSON) and ends the line. */
typedef struct line {
  char buf[LOG_LINE_MAX];
  size_t n;
  int full;
} line;

enum { LINE_END = 2 }; /* "}\n" */

static void put(line *l, const char *s, size_t n) {
  if (l->full) return;
  if (l->n + n + LINE_END > sizeof l->buf) {
    l->full = 1;
    return;
  }
  memcpy(l->buf + l->n, s, n);
  l->n += n;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD. */
static void put_str(line *l, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t left = strlen((const char *)p);
  put(l, "\"", 1);
  if (l->full) return;
  /* Keep 7 bytes for the longest escape plus the closing quote. */
  while (left && !l->full && l->n + 8 + LINE_END <= sizeof l->buf) {
    char esc[7];
    /* A run of printable ASCII other than quote and backslash (most of
     * every line) is copied at once, as far as the line has room. */
    size_t run = 0, room = sizeof l->buf - LINE_END - 8 - l->n;
    while (run < left && run < room && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
           p[run] != '\\')
      run++;
    if (run) {
      put(l, (const char *)p, run);
      p += run;
      left -= run;
      continue;
    }
    size_t k = utf8_seq(p, left);
    if (!k) {
      put(l, "\\ufffd", 6);
      k = 1;
    } else if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      put(l, esc, 2);
    } else if (*p < 0x20) {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[*p >> 4];
      esc[5] = hex[*p & 15];
      put(l, esc, 6);
    } else {
      put(l, (const char *)p, k);
    }
    p += k;
    left -= k;
  }
  int cut = left != 0;
  l->full = 0; /* the closing quote was kept room for */
  put(l, "\"", 1);
  l->full = cut;
}

/* A member whole, or a string value cut short; else nothing (the line is
 * then full). */
static void put_field(line *l, const log_field *f) {
  char num[64];
  size_t start = l->n;
  put(l, ",", 1);
  put_str(l, f->key);
  put(l, ":", 1);
  if (l->full) {
    l->n = start;
    return;
  }
  size_t value = l->n;
  switch (f->kind) {
  case LOG_STR:
    put_str(l, f->s);
    break;
  case LOG_INT:
    put(l, num, (size_t)snprintf(num, sizeof num, "%lld", f->i));
    break;
  case LOG_NUM:
    if (isfinite(f->d))
      put(l, num, (size_t)snprintf(num, sizeof num, "%.6g", f->d));
    else
      put(l, "null", 4);
    break;
  case LOG_RAW:
    put(l, f->s, strlen(f->s));
    break;
  }
  if (l->full && l->n == value) l->n = start; /* no room for any of the value */
}

void log_fields(int level, const char *msg, const log_field *fields, size_t n) {
  if (!log_enabled(level)) return;
  line l;
  struct timeval tv;
  struct tm tm;
  l.n = 0;
  l.full = 0;
  gettimeofday(&tv, NULL);
  /* The date and time to the second change once a second: each thread
   * formats them again only then. */
  static _Thread_local time_t stamp_sec = -1;
  static _Thread_local char stamp[24]; /* "2026-12-04T05:49:04." */
  if (tv.tv_sec != stamp_sec) {
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    stamp_sec = tv.tv_sec;
  }
  int ms = (int)(tv.tv_usec / 1000);
  l.n = (size_t)snprintf(l.buf, sizeof l.buf,
                         "{\"ts\":\"%s%c%c%cZ\",\"level\":\"%s\",\"process\":", stamp,
                         '0' + ms / 100, '0' + ms / 10 % 10, '0' + ms % 10, level_names[level]);
  put_str(&l, process_name);
  put(&l, ",\"msg\":", 7);
  put_str(&l, msg ? msg : "");
  for (size_t i = 0; i < n && !l.full; i++)
    put_field(&l, &fields[i]);
  l.buf[l.n++] = '}';
  l.buf[l.n++] = '\n';
  ssize_t w = write(STDERR_FILENO, l.buf, l.n);
  (void)w; /* nowhere left to report a failed log write */
}

void log_json(int level, const char *msg, json_t *fields) {
  log_field f[LOG_JSON_FIELDS] = {{0}};
  char *raw[LOG_JSON_FIELDS];
  size_t n = 0, n_raw = 0;
  const char *key;
  json_t *v;
  if (!log_enabled(level)) goto out_fields;
  json_object_foreach(fields, key, v) {
    if (n == LOG_JSON_FIELDS) break;
    f[n].key = key;
    if (json_is_string(v)) {
      f[n].kind = LOG_STR;
      f[n].s = json_string_value(v);
    } else if (json_is_integer(v)) {
      f[n].kind = LOG_INT;
      f[n].i = json_integer_value(v);
    } else if (json_is_real(v)) {
      f[n].kind = LOG_NUM;
      f[n].d = json_real_value(v);
    } else if ((raw[n_raw] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
      f[n].kind = LOG_RAW;
      f[n].s = raw[n_raw++];
    } else {
      continue;
    }
    n++;
  }
  log_fields(level, msg, f, n);
  for (size_t i = 0; i < n_raw; i++)
    free(raw[i]);
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
  log_fields(level, buf, NULL, 0);
}

/* gRPC core's own diagnostics (e.g. why a bind failed) as JSON lines like
 * ours instead of its plain-text format on stderr. */
static void core_log(gpr_log_func_args *a) {
  int level = a->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_LEVEL_ERROR
              : a->severity == GPR_LOG_SEVERITY_INFO ? LOG_LEVEL_INFO
                                                     : LOG_LEVEL_DEBUG;
  if (!log_enabled(level)) return;
  log_field f[1] = {{.key = "component", .kind = LOG_STR, .s = "grpc"}};
  log_fields(level, a->message ? a->message : "", f, 1);
}

void log_grpc_core(void) {
  gpr_set_log_function(core_log);
}
