/* jsontext.c - jansson values as JSON text, faster than json_dumps (a
 * callback per token, printf per number) and with exact short reals: the
 * gateway's response bodies (pbjson) and the store's documents. */
#include "jsontext.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing output buffer; `failed` latches the first allocation failure. */
typedef struct obuf {
  char *p;
  size_t len, cap;
  int failed;
} obuf;

static void out_mem(obuf *o, const char *s, size_t n) {
  if (o->failed) return;
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
      cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
      o->failed = 1;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = '\0';
}

static void out_str(obuf *o, const char *s) {
  out_mem(o, s, strlen(s));
}

/* Without printf: a document's integers (ids, times) are most of its
 * numbers. */
static void out_integer(obuf *o, json_int_t v) {
  char tmp[24], *p = tmp + sizeof tmp;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do
    *--p = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--p = '-';
  out_mem(o, p, (size_t)(tmp + sizeof tmp - p));
}

/* A real as json_dumps writes it with JSON_REAL_PRECISION(p): %.<p>g, ".0"
 * when that reads as an integer, the exponent without '+' or leading
 * zeros. */
static int real_jansson(double d, size_t flags, char *buf, size_t len) {
  int n = snprintf(buf, len, "%.*g", (int)((flags >> 11) & 31), d);
  if (n < 0 || (size_t)n + 3 >= len || !isfinite(d)) return -1;
  size_t used = (size_t)n;
  char *e = strchr(buf, 'e');
  if (!e && !strchr(buf, '.')) {
    memcpy(buf + used, ".0", 3);
    used += 2;
  }
  if (e) {
    char *start = e + 1, *end = e + 2;
    if (*start == '-') start++;
    while (*end == '0')
      end++;
    if (end != start) memmove(start, end, used - (size_t)(end - buf) + 1);
  }
  return 0;
}

/* The shortest text that reads back as d (jansson writes 17 digits: 0.1 as
 * 0.10000000000000001), positional for exponents -4..15 and with a '.' so
 * that it reads back as a real ("42.0", "100.0", "0.001"), else with an
 * exponent ("1e20", "2.5e-8"): the form Python's repr picks. */
int jsontext_real(double d, char *buf, size_t len) {
  char tmp[40];
  int p, exp;
  if (!isfinite(d) || len < sizeof tmp) return -1;
  /* the fewest significant digits that read back as d */
  for (p = 1; p < 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    if (strtod(tmp, NULL) == d) break;
  }
  snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
  exp = atoi(strchr(tmp, 'e') + 1);
  if (exp >= -4 && exp < 16) {
    /* positional, as people write them: 100.0, 0.001, 1.5 */
    int decimals = p - 1 - exp;
    snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, d);
    if (!strchr(buf, '.')) strcat(buf, ".0");
  } else {
    /* 1e20, 2.5e-8: the exponent without '+' or leading zeros */
    *strchr(tmp, 'e') = '\0';
    snprintf(buf, len, "%se%d", tmp, exp);
  }
  return 0;
}

/* A string as jansson writes it: '"', '\\' and control characters escaped
 * (\uXXXX in upper case), other characters as they are unless `flags` ask for
 * ASCII or escaped slashes. The text is valid UTF-8 (jansson strings are). */
static void out_string(obuf *o, const char *s, size_t n, size_t flags) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i = 0, run = 0;
  out_mem(o, "\"", 1);
  while (i < n) {
    unsigned char ch = (unsigned char)s[i];
    char esc[16];
    const char *rep = NULL;
    size_t step = 1;
    if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\' && ch != '/') { /* most bytes */
      i++;
      run++;
      continue;
    }
    if (ch == '"')
      rep = "\\\"";
    else if (ch == '\\')
      rep = "\\\\";
    else if (ch == '\b')
      rep = "\\b";
    else if (ch == '\f')
      rep = "\\f";
    else if (ch == '\n')
      rep = "\\n";
    else if (ch == '\r')
      rep = "\\r";
    else if (ch == '\t')
      rep = "\\t";
    else if (ch == '/' && (flags & JSON_ESCAPE_SLASH))
      rep = "\\/";
    else if (ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
      rep = esc;
    } else if (ch >= 0x80 && (flags & JSON_ENSURE_ASCII)) {
      /* decode one UTF-8 sequence; surrogate pairs above the BMP */
      size_t k = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;
      uint32_t cp = ch & (k == 4 ? 0x07 : k == 3 ? 0x0F : 0x1F);
      for (size_t m = 1; m < k && i + m < n; m++)
        cp = (cp << 6) | ((unsigned char)s[i + m] & 0x3F);
      step = k;
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        snprintf(esc, sizeof esc, "\\u%04X\\u%04X", (unsigned)(0xD800 | (v >> 10)),
                 (unsigned)(0xDC00 | (v & 0x3FF)));
      } else {
        snprintf(esc, sizeof esc, "\\u%04X", (unsigned)cp);
      }
      rep = esc;
    }
    if (!rep) {
      i++;
      run++;
      continue;
    }
    out_mem(o, s + i - run, run);
    out_str(o, rep);
    run = 0;
    i += step;
  }
  out_mem(o, s + n - run, run);
  out_mem(o, "\"", 1);
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Responses are built by the gateway, never cyclic; the bound only keeps a
 * runaway document from exhausting the stack. */
#define DUMP_MAX_DEPTH 1024

static void out_value(obuf *o, const json_t *j, size_t flags, int depth);

/* An object's members in key order (JSON_SORT_KEYS). */
static void out_sorted(obuf *o, const json_t *j, size_t flags, int depth) {
  size_t n = json_object_size(j), i = 0;
  const char **keys = malloc((n ? n : 1) * sizeof *keys);
  const char *k;
  json_t *v;
  if (!keys) {
    o->failed = 1;
    return;
  }
  json_object_foreach((json_t *)j, k, v) keys[i++] = k;
  qsort(keys, n, sizeof *keys, key_cmp);
  for (i = 0; i < n && !o->failed; i++) {
    if (i) out_mem(o, ",", 1);
    out_string(o, keys[i], strlen(keys[i]), flags);
    out_mem(o, ":", 1);
    out_value(o, json_object_get(j, keys[i]), flags, depth + 1);
  }
  free(keys);
}

static void out_value(obuf *o, const json_t *j, size_t flags, int depth) {
  char buf[64];
  if (depth > DUMP_MAX_DEPTH) {
    o->failed = 1;
    return;
  }
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    int first = 1;
    out_mem(o, "{", 1);
    if (flags & JSON_SORT_KEYS) {
      out_sorted(o, j, flags, depth);
    } else {
      json_object_foreach((json_t *)j, k, v) {
        if (!first) out_mem(o, ",", 1);
        first = 0;
        out_string(o, k, strlen(k), flags);
        out_mem(o, ":", 1);
        out_value(o, v, flags, depth + 1);
      }
    }
    out_mem(o, "}", 1);
    return;
  }
  case JSON_ARRAY:
    out_mem(o, "[", 1);
    for (size_t i = 0; i < json_array_size(j) && !o->failed; i++) {
      if (i) out_mem(o, ",", 1);
      out_value(o, json_array_get(j, i), flags, depth + 1);
    }
    out_mem(o, "]", 1);
    return;
  case JSON_STRING:
    out_string(o, json_string_value(j), json_string_length(j), flags);
    return;
  case JSON_INTEGER:
    out_integer(o, json_integer_value(j));
    return;
  case JSON_REAL:
    /* jansson never holds a NaN or an infinity */
    if ((JSON_REAL_PRECISION(31) & flags ? real_jansson(json_real_value(j), flags, buf, sizeof buf)
                                         : jsontext_real(json_real_value(j), buf, sizeof buf)) != 0)
      o->failed = 1;
    out_str(o, buf);
    return;
  case JSON_TRUE:
    out_str(o, "true");
    return;
  case JSON_FALSE:
    out_str(o, "false");
    return;
  case JSON_NULL:
    out_str(o, "null");
    return;
  }
}

char *jsontext_dumps(const json_t *j, size_t flags) {
  obuf o = {0};
  if (!j || (!(flags & JSON_ENCODE_ANY) && !json_is_object(j) && !json_is_array(j))) return NULL;
  /* Indented output is for people, not for exact numbers: jansson's 17
   * digits read back the same. */
  if ((flags & JSON_MAX_INDENT) || !(flags & JSON_COMPACT)) return json_dumps(j, flags);
  out_value(&o, j, flags, 0);
  if (o.failed) {
    free(o.p);
    return NULL;
  }
  return o.p;
}
