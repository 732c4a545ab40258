/* fuzz_util.h - what libmicrohttpd would do before the gateway sees a
 * request, for the in-process fuzzers: split and decode the query string
 * (MHD_parse_arguments_ of libmicrohttpd 0.9.75: '&' separates arguments,
 * the first '=' splits key from value, '+' is a space, %XX a byte; a key
 * without '=' has no value) and percent-decode the path. Header-only: each
 * fuzzer is one translation unit plus the libraries. */
#ifndef EVENTS_FUZZ_UTIL_H
#define EVENTS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

static inline int fz_hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* In place, as MHD_http_unescape: a '%' not followed by two hex digits
 * stays as it is. A decoded NUL ends the C string, as it does for the
 * handlers, which only see C strings. */
static inline void fz_unescape(char *s) {
  char *o = s;
  for (char *p = s; *p;) {
    int hi, lo;
    if (p[0] == '%' && (hi = fz_hex(p[1])) >= 0 && (lo = fz_hex(p[2])) >= 0) {
      *o++ = (char)(hi << 4 | lo);
      p += 3;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
}

static inline void fz_unescape_arg(char *s) {
  for (char *p = s; *p; p++)
    if (*p == '+') *p = ' ';
  fz_unescape(s);
}

/* Splits the query string `qs` (modified in place) into at most cap
 * arguments; returns how many were stored. */
static inline size_t fz_parse_query(char *qs, gw_query_arg *out, size_t cap) {
  size_t n = 0;
  char *args = qs;
  while (args && *args && n < cap) {
    char *amper = strchr(args, '&');
    char *equals = strchr(args, '=');
    if (amper) *amper = '\0';
    if (equals && (!amper || equals < amper)) {
      *equals = '\0';
      fz_unescape_arg(args);
      fz_unescape_arg(equals + 1);
      out[n++] = (gw_query_arg){args, equals + 1};
    } else {
      fz_unescape_arg(args);
      out[n++] = (gw_query_arg){args, NULL};
    }
    args = amper ? amper + 1 : NULL;
  }
  return n;
}

/* A NUL-terminated copy of data[0..size). */
static inline char *fz_strndup(const unsigned char *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif
