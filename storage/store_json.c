/* store_json.c - reads a stored document's JSON text into jansson values
 * faster than json_loadb, for the shape the store itself writes (json_dumps
 * output: ASCII keys and strings, short escapes, plain numbers). A list page parses 51
 * documents and json_loadb's character-at-a-time lexer was 40 % of the
 * service's CPU on a list (about 14 µs for a 550-byte event; this reader
 * builds the same values in about a quarter of that).
 *
 * It never decides what a document means: anything outside that shape (a
 * \u escape, a byte outside printable ASCII, a number it cannot read exactly,
 * deep nesting, a syntax error) makes it give up, and the caller parses the
 * text with json_loadb, so the result is always jansson's. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define FAST_MAX_DEPTH 32

typedef struct reader {
  const char *p, *end;
} reader;

static void skip_ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
    r->p++;
}

/* A string of printable ASCII, with the one-character escapes json_dumps
 * writes (\" \\ \/ \b \f \n \r \t); a \u escape gives up. *s and *n
 * point into the text when it has no escape, else into *buf (malloc'd, the
 * caller frees it). 0, or -1 to give up. */
static int read_string(reader *r, const char **s, size_t *n, char **buf) {
  const char *start = ++r->p; /* the opening quote */
  int escaped = 0;
  while (r->p < r->end && *r->p != '"') {
    unsigned char ch = (unsigned char)*r->p;
    if (ch < 0x20 || ch > 0x7e) return -1;
    if (ch == '\\') {
      if (++r->p >= r->end || !strchr("\"\\/bfnrt", *r->p)) return -1;
      escaped = 1;
    }
    r->p++;
  }
  if (r->p >= r->end) return -1;
  size_t len = (size_t)(r->p - start);
  r->p++;
  *buf = NULL;
  if (!escaped) {
    *s = start;
    *n = len;
    return 0;
  }
  char *out = malloc(len ? len : 1);
  if (!out) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = start[i];
    if (ch == '\\') {
      switch (start[++i]) {
      case 'b':
        ch = '\b';
        break;
      case 'f':
        ch = '\f';
        break;
      case 'n':
        ch = '\n';
        break;
      case 'r':
        ch = '\r';
        break;
      case 't':
        ch = '\t';
        break;
      default:
        ch = start[i];
        break; /* " \ / */
      }
    }
    out[o++] = ch;
  }
  *s = *buf = out;
  *n = o;
  return 0;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* JSON's number grammar, as jansson reads it: an integer when there is no
 * fraction or exponent, else a real. Integers of up to 18 digits are exact
 * here; longer ones, and reals strtod cannot read finitely, give up. */
static json_t *read_number(reader *r) {
  const char *start = r->p, *q = r->p;
  int neg = q < r->end && *q == '-';
  q += neg;
  if (q >= r->end || !is_digit(*q)) return NULL;
  if (*q == '0' && q + 1 < r->end && is_digit(q[1])) return NULL;
  const char *digits = q;
  while (q < r->end && is_digit(*q))
    q++;
  int real = 0;
  if (q < r->end && *q == '.') {
    real = 1;
    if (++q >= r->end || !is_digit(*q)) return NULL;
    while (q < r->end && is_digit(*q))
      q++;
  }
  if (q < r->end && (*q == 'e' || *q == 'E')) {
    real = 1;
    q++;
    if (q < r->end && (*q == '+' || *q == '-')) q++;
    if (q >= r->end || !is_digit(*q)) return NULL;
    while (q < r->end && is_digit(*q))
      q++;
  }
  r->p = q;
  if (!real) {
    if (q - digits > 18) return NULL;
    json_int_t v = 0;
    for (const char *d = digits; d < q; d++)
      v = v * 10 + (*d - '0');
    return json_integer(neg ? -v : v);
  }
  char buf[64];
  size_t len = (size_t)(q - start);
  if (len >= sizeof buf) return NULL;
  memcpy(buf, start, len);
  buf[len] = '\0';
  errno = 0;
  char *stop;
  double d = strtod(buf, &stop);
  if (stop != buf + len || errno == ERANGE || !isfinite(d)) return NULL;
  return json_real(d);
}

static int literal(reader *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
  r->p += n;
  return 1;
}

static json_t *read_value(reader *r, int depth);

static json_t *read_object(reader *r, int depth) {
  json_t *o = json_object();
  if (!o) return NULL;
  r->p++; /* { */
  skip_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    return o;
  }
  for (;;) {
    const char *key;
    char *kbuf;
    size_t klen;
    skip_ws(r);
    if (r->p >= r->end || *r->p != '"' || read_string(r, &key, &klen, &kbuf) < 0) goto fail;
    skip_ws(r);
    json_t *v = r->p < r->end && *r->p++ == ':' ? read_value(r, depth + 1) : NULL;
    /* Printable ASCII and these escapes make valid UTF-8 without a NUL: no
     * check needed. A repeated key replaces the earlier value, as in
     * json_loadb. */
    int bad = !v || json_object_setn_new_nocheck(o, key, klen, v) < 0;
    free(kbuf);
    if (bad) goto fail;
    skip_ws(r);
    if (r->p >= r->end) goto fail;
    if (*r->p == '}') {
      r->p++;
      return o;
    }
    if (*r->p++ != ',') goto fail;
  }
fail:
  json_decref(o);
  return NULL;
}

static json_t *read_array(reader *r, int depth) {
  json_t *a = json_array();
  if (!a) return NULL;
  r->p++; /* [ */
  skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return a;
  }
  for (;;) {
    json_t *v = read_value(r, depth + 1);
    if (!v || json_array_append_new(a, v) < 0) goto fail;
    skip_ws(r);
    if (r->p >= r->end) goto fail;
    if (*r->p == ']') {
      r->p++;
      return a;
    }
    if (*r->p++ != ',') goto fail;
  }
fail:
  json_decref(a);
  return NULL;
}

static json_t *read_value(reader *r, int depth) {
  if (depth > FAST_MAX_DEPTH) return NULL;
  skip_ws(r);
  if (r->p >= r->end) return NULL;
  switch (*r->p) {
  case '{':
    return read_object(r, depth);
  case '[':
    return read_array(r, depth);
  case '"': {
    const char *s;
    char *buf;
    size_t n;
    if (read_string(r, &s, &n, &buf) < 0) return NULL;
    json_t *v = json_stringn_nocheck(s, n);
    free(buf);
    return v;
  }
  case 't':
    return literal(r, "true", 4) ? json_true() : NULL;
  case 'f':
    return literal(r, "false", 5) ? json_false() : NULL;
  case 'n':
    return literal(r, "null", 4) ? json_null() : NULL;
  default:
    return read_number(r);
  }
}

json_t *store_json_load(const char *text, size_t len) {
  reader r = {text, text + len};
  skip_ws(&r);
  json_t *v = NULL;
  /* json_loadb (without JSON_DECODE_ANY) reads only an object or array at
   * the top, followed by nothing but white space. */
  if (r.p < r.end && (*r.p == '{' || *r.p == '[')) v = read_value(&r, 0);
  if (v) {
    skip_ws(&r);
    if (r.p == r.end) return v;
    json_decref(v);
  }
  json_error_t jerr;
  return json_loadb(text, len, 0, &jerr);
}

/* ---- writing ---------------------------------------------------------------- */

/* The writer mirrors json_dumps(JSON_COMPACT) byte for byte for documents of
 * ASCII strings (what the services store): a document's text was 14 % of a
 * batch create's CPU in json_dumps (a callback per token, snprintf per
 * integer). Anything else - a non-ASCII byte, deep nesting - is left to
 * json_dumps, so the text is always jansson's. */

typedef struct writer {
  char *buf;
  size_t len, cap;
} writer;

static int put(writer *w, const char *s, size_t n) {
  if (w->len + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap : 512;
    while (w->len + n + 1 > cap)
      cap *= 2;
    char *b = realloc(w->buf, cap);
    if (!b) return -1;
    w->buf = b;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  return 0;
}

static int put_string(writer *w, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (put(w, "\"", 1)) return -1;
  size_t run = 0; /* bytes copied as they are, pending */
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x80) return -1;
    if (ch >= 0x20 && ch != '"' && ch != '\\') {
      run++;
      continue;
    }
    if (put(w, s + i - run, run)) return -1;
    run = 0;
    char esc[6] = {'\\', 0};
    size_t k = 2;
    switch (ch) {
    case '"':
    case '\\':
      esc[1] = (char)ch;
      break;
    case '\b':
      esc[1] = 'b';
      break;
    case '\f':
      esc[1] = 'f';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default: /* jansson: \u%04X */
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[ch >> 4];
      esc[5] = hex[ch & 15];
      k = 6;
    }
    if (put(w, esc, k)) return -1;
  }
  return put(w, s + n - run, run) || put(w, "\"", 1) ? -1 : 0;
}

static int put_integer(writer *w, json_int_t v) {
  char tmp[24], *p = tmp + sizeof tmp;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do
    *--p = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--p = '-';
  return put(w, p, (size_t)(tmp + sizeof tmp - p));
}

/* jansson's real: %.17g, a ".0" when that reads as an integer, and the
 * exponent without '+' or leading zeros. */
static int put_real(writer *w, double v) {
  char tmp[40];
  int n = snprintf(tmp, sizeof tmp, "%.17g", v);
  if (n < 0 || (size_t)n + 3 >= sizeof tmp || isnan(v) || isinf(v)) return -1;
  size_t len = (size_t)n;
  char *e = strchr(tmp, 'e');
  if (!e && !strchr(tmp, '.')) {
    memcpy(tmp + len, ".0", 3);
    len += 2;
  }
  if (e) {
    char *start = e + 1, *end = e + 2;
    if (*start == '-') start++;
    while (*end == '0')
      end++;
    if (end != start) {
      memmove(start, end, len - (size_t)(end - tmp) + 1);
      len -= (size_t)(end - start);
    }
  }
  return put(w, tmp, len);
}

static int put_value(writer *w, const json_t *v, int depth) {
  if (depth > FAST_MAX_DEPTH) return -1;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *key;
    json_t *m;
    int first = 1;
    if (put(w, "{", 1)) return -1;
    json_object_foreach((json_t *)v, key, m) {
      if ((!first && put(w, ",", 1)) || put_string(w, key, strlen(key)) || put(w, ":", 1) ||
          put_value(w, m, depth + 1))
        return -1;
      first = 0;
    }
    return put(w, "}", 1);
  }
  case JSON_ARRAY:
    if (put(w, "[", 1)) return -1;
    for (size_t i = 0; i < json_array_size(v); i++)
      if ((i && put(w, ",", 1)) || put_value(w, json_array_get(v, i), depth + 1)) return -1;
    return put(w, "]", 1);
  case JSON_STRING:
    return put_string(w, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    return put_integer(w, json_integer_value(v));
  case JSON_REAL:
    return put_real(w, json_real_value(v));
  case JSON_TRUE:
    return put(w, "true", 4);
  case JSON_FALSE:
    return put(w, "false", 5);
  default:
    return put(w, "null", 4);
  }
}

char *store_json_dumps(const json_t *doc) {
  writer w = {0};
  if ((json_is_object(doc) || json_is_array(doc)) && put_value(&w, doc, 0) == 0) {
    w.buf[w.len] = '\0';
    return w.buf;
  }
  free(w.buf);
  return json_dumps(doc, JSON_COMPACT);
}
