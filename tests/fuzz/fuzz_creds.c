/* fuzz_creds.c - the credentials file parser and the Authorization lookup.
 * Input: a credentials file, then optionally "\n\f\n" and Authorization
 * header values, one per line, to look up against what was parsed. Checks:
 * a parse error names a line within the file, lookups are repeatable, and a
 * parsed bearer secret written verbatim is found again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "creds.h"

static size_t count_lines(const char *s, size_t n) {
  size_t lines = n ? 1 : 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\n' && i + 1 < n) lines++;
  return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  const char *sep = NULL;
  for (size_t i = 0; i + 3 <= size && !sep; i++)
    if (memcmp(text + i, "\n\f\n", 3) == 0) sep = text + i;
  size_t file_len = sep ? (size_t)(sep - text) : size;

  creds *c = NULL;
  creds_err err;
  memset(&err, 0, sizeof err);
  int rc = creds_parse(text, file_len, "fuzz.creds", &c, &err);
  if (rc < 0) {
    FZ_CHECK(c == NULL);
    FZ_CHECK(err.msg[0] != '\0');
    FZ_CHECK(err.line >= 0 && (size_t)err.line <= count_lines(text, file_len));
    return 0;
  }
  FZ_CHECK(c != NULL && creds_count(c) > 0);

  if (sep) {
    const char *p = sep + 3, *end = text + size;
    while (p <= end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      char *auth = malloc(n + 1);
      FZ_CHECK(auth != NULL);
      memcpy(auth, p, n);
      auth[n] = '\0';
      const char *t1 = creds_lookup(c, auth, n);
      const char *t2 = creds_lookup(c, auth, n);
      FZ_CHECK(t1 == t2);
      free(auth);
      if (!nl) break;
      p = nl + 1;
    }
  }

  /* Every bearer line's secret, sent as "Bearer <secret>", resolves to a
   * tenant (the first holder of that secret), unless it is a digest. Words
   * are split as the parser splits them: on spaces and tabs. */
  for (const char *p = text, *end = text + file_len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if (le > p && le[-1] == '\r') le--;
    const char *w[4];
    size_t wl[4], k = 0;
    for (const char *s = p; k < 4;) {
      while (s < le && (*s == ' ' || *s == '\t'))
        s++;
      if (s == le || *s == '#') break;
      const char *e = s;
      while (e < le && *e != ' ' && *e != '\t')
        e++;
      w[k] = s;
      wl[k++] = (size_t)(e - s);
      s = e;
    }
    if (k == 3 && wl[1] == 6 && memcmp(w[1], "bearer", 6) == 0 &&
        !(wl[2] >= 7 && memcmp(w[2], "sha256:", 7) == 0)) {
      char *auth = malloc(wl[2] + 8);
      FZ_CHECK(auth != NULL);
      memcpy(auth, "Bearer ", 7);
      memcpy(auth + 7, w[2], wl[2]);
      auth[7 + wl[2]] = '\0';
      FZ_CHECK(creds_lookup(c, auth, 7 + wl[2]) != NULL);
      free(auth);
    }
    p = nl ? nl + 1 : end;
  }
  creds_free(c);
  return 0;
}
