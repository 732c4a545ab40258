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

#include "jsontext.h"
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

/* json_dumps' text (reals with its 17 digits, so stored documents read as
 * they always have), through the faster writer the gateway uses. */
char *store_json_dumps(const json_t *doc) {
  return jsontext_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
}
