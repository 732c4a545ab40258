/* creds.c - credentials file parser and constant-time lookup. */
#include "creds.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

enum { SCHEME_BEARER, SCHEME_BASIC };

typedef struct cred {
  char tenant[65];
  int scheme;
  unsigned char digest[SHA256_DIGEST_LENGTH];
} cred;

struct creds {
  cred *v;
  size_t n, cap;
  /* Fetched once: OpenSSL 3's one-shot SHA256() looks the algorithm up on
   * every call, a visible share of each RPC. */
  EVP_MD *sha256;
};

static int fail(creds_err *err, const char *name, int line, const char *fmt, const char *arg) {
  char what[256];
  snprintf(what, sizeof what, fmt, arg);
  err->line = line;
  if (line)
    snprintf(err->msg, sizeof err->msg, "%s:%d: %s", name, line, what);
  else
    snprintf(err->msg, sizeof err->msg, "%s: %s", name, what);
  return -1;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* "sha256:<64 hex>" fills digest and returns 1; anything else returns 0. */
static int parse_digest(const char *s, size_t len, unsigned char *digest) {
  if (len != 7 + 2 * SHA256_DIGEST_LENGTH || strncmp(s, "sha256:", 7) != 0) return 0;
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    int hi = hexval(s[7 + 2 * i]), lo = hexval(s[8 + 2 * i]);
    if (hi < 0 || lo < 0) return 0;
    digest[i] = (unsigned char)(hi << 4 | lo);
  }
  return 1;
}

/* Splits the next whitespace-separated word off [*p, end). */
static int next_word(const char **p, const char *end, const char **w, size_t *wlen) {
  const char *s = *p;
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  if (s == end || *s == '#') return 0;
  const char *e = s;
  while (e < end && *e != ' ' && *e != '\t')
    e++;
  *w = s;
  *wlen = (size_t)(e - s);
  *p = e;
  return 1;
}

static int valid_tenant(const char *s, size_t len) {
  if (len == 0 || len > 64) return 0;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i])) return 0;
  return 1;
}

static int parse_line(creds *c, const char *s, const char *end, const char *name, int lineno,
                      creds_err *err) {
  const char *w[4];
  size_t wl[4];
  int n = 0;
  char buf[256];
  while (n < 4 && next_word(&s, end, &w[n], &wl[n]))
    n++;
  if (n == 0) return 0; /* blank or comment */
  if (n < 3) return fail(err, name, lineno, "%s", "expected \"tenant scheme secret\"");
  if (n > 3) {
    snprintf(buf, sizeof buf, "%.*s", (int)wl[3], w[3]);
    return fail(err, name, lineno, "unexpected \"%s\" after the secret", buf);
  }
  if (!valid_tenant(w[0], wl[0])) {
    snprintf(buf, sizeof buf, "%.*s", (int)(wl[0] > 100 ? 100 : wl[0]), w[0]);
    return fail(err, name, lineno, "bad tenant \"%s\" (1-64 of A-Z a-z 0-9 _ . -)", buf);
  }
  cred cr = {0};
  memcpy(cr.tenant, w[0], wl[0]);
  if (wl[1] == 6 && strncasecmp(w[1], "bearer", 6) == 0) {
    cr.scheme = SCHEME_BEARER;
  } else if (wl[1] == 5 && strncasecmp(w[1], "basic", 5) == 0) {
    cr.scheme = SCHEME_BASIC;
  } else {
    snprintf(buf, sizeof buf, "%.*s", (int)(wl[1] > 100 ? 100 : wl[1]), w[1]);
    return fail(err, name, lineno, "unknown scheme \"%s\" (expected bearer or basic)", buf);
  }
  if (!parse_digest(w[2], wl[2], cr.digest)) {
    if (wl[2] >= 7 && strncmp(w[2], "sha256:", 7) == 0)
      return fail(err, name, lineno, "%s", "sha256: must be followed by 64 hex digits");
    if (cr.scheme == SCHEME_BASIC && !memchr(w[2], ':', wl[2]))
      return fail(err, name, lineno, "%s", "a basic secret is user:password");
    if (!EVP_Digest(w[2], wl[2], cr.digest, NULL, c->sha256, NULL))
      return fail(err, name, lineno, "%s", "cannot hash the secret");
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    cred *v = realloc(c->v, cap * sizeof *v);
    if (!v) return fail(err, name, lineno, "%s", "out of memory");
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = cr;
  return 0;
}

int creds_parse(const char *text, size_t len, const char *name, creds **out, creds_err *err) {
  creds *c = calloc(1, sizeof *c);
  if (!c) return fail(err, name, 0, "%s", "out of memory");
  if (!(c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
    fail(err, name, 0, "%s", "SHA-256 is not available");
    goto free_creds;
  }
  const char *p = text, *end = text + len;
  int lineno = 0;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    lineno++;
    if (memchr(p, '\0', (size_t)(le - p))) {
      fail(err, name, lineno, "%s", "NUL byte in line");
      goto free_creds;
    }
    const char *trim = le;
    if (trim > p && trim[-1] == '\r') trim--;
    if (parse_line(c, p, trim, name, lineno, err) < 0) goto free_creds;
    p = eol ? eol + 1 : end;
  }
  if (c->n == 0) {
    fail(err, name, 0, "%s", "no credentials");
    goto free_creds;
  }
  *out = c;
  return 0;
free_creds:
  creds_free(c);
  return -1;
}

int creds_load(const char *path, creds **out, creds_err *err) {
  if (!path || !*path) return fail(err, "EVENTS_CREDENTIALS", 0, "%s", "not set");
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, path, 0, "%s", strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = -1;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      if (cap > (16u << 20)) {
        fail(err, path, 0, "%s", "larger than 16 MiB");
        goto close_file;
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        fail(err, path, 0, "%s", "out of memory");
        goto close_file;
      }
      buf = nb;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (r == 0) break;
  }
  if (ferror(f)) {
    fail(err, path, 0, "%s", "read error");
    goto close_file;
  }
  rc = creds_parse(buf ? buf : "", len, path, out, err);
close_file:
  free(buf);
  fclose(f);
  return rc;
}

void creds_free(creds *c) {
  if (!c) return;
  OPENSSL_cleanse(c->v, c->n * sizeof *c->v);
  EVP_MD_free(c->sha256);
  free(c->v);
  free(c);
}

size_t creds_count(const creds *c) {
  return c ? c->n : 0;
}

/* Compares against every credential of the scheme, without an early exit, so
 * the time taken does not tell which entry (or how much of one) matched. */
static const char *match(const creds *c, int scheme, const unsigned char *secret, size_t len) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const char *tenant = NULL;
  if (!EVP_Digest(secret, len, digest, NULL, c->sha256, NULL)) return NULL;
  for (size_t i = 0; i < c->n; i++) {
    int eq = CRYPTO_memcmp(digest, c->v[i].digest, sizeof digest) == 0;
    if (eq && c->v[i].scheme == scheme && !tenant) tenant = c->v[i].tenant;
  }
  return tenant;
}

const char *creds_lookup(const creds *c, const char *auth, size_t len) {
  if (!c || !auth) return NULL;
  while (len && (auth[len - 1] == ' ' || auth[len - 1] == '\t'))
    len--;
  if (len > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
    size_t i = 7;
    while (i < len && auth[i] == ' ')
      i++;
    if (i == len) return NULL;
    return match(c, SCHEME_BEARER, (const unsigned char *)auth + i, len - i);
  }
  if (len > 6 && strncasecmp(auth, "Basic ", 6) == 0) {
    size_t i = 6;
    while (i < len && auth[i] == ' ')
      i++;
    size_t b64 = len - i;
    if (b64 == 0 || b64 > 4096 || b64 % 4) return NULL;
    unsigned char plain[3072 + 4];
    int n = EVP_DecodeBlock(plain, (const unsigned char *)auth + i, (int)b64);
    if (n < 0) return NULL;
    /* EVP_DecodeBlock counts padding bytes as output; drop them. */
    if (auth[len - 1] == '=') n--;
    if (auth[len - 2] == '=') n--;
    if (!memchr(plain, ':', (size_t)n)) return NULL;
    const char *t = match(c, SCHEME_BASIC, plain, (size_t)n);
    OPENSSL_cleanse(plain, sizeof plain);
    return t;
  }
  return NULL;
}
