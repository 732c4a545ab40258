/* trace.c - W3C Trace Context level 1: exactly the version-00 layout
 * "00-<32 hex>-<16 hex>-<2 hex>", lowercase, all-zero ids invalid. Anything
 * else starts a new trace rather than propagating garbage. */
#include "trace.h"

#include "ids.h"

#include <string.h>

static int unhex(const char *s, size_t n, uint8_t *out) {
  int nonzero = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return -1;
    if (i % 2 == 0)
      out[i / 2] = (uint8_t)(v << 4);
    else
      out[i / 2] |= (uint8_t)v;
    nonzero |= v;
  }
  return nonzero ? 0 : -1;
}

static void tohex(const uint8_t *b, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static void random_id(uint8_t *b, size_t n) {
  do {
    if (ids_random(b, n) < 0) memset(b, 0, n);
    /* Not a secret: a zero-filled fallback is made non-zero below. */
    b[n - 1] |= (uint8_t)!b[0];
  } while (!b[n - 1] && !b[0]);
}

static int parse(trace_ctx *t, const char *s, size_t len) {
  uint8_t flags[1];
  if (len != 55 || memcmp(s, "00-", 3) != 0 || s[35] != '-' || s[52] != '-') return -1;
  if (unhex(s + 3, 32, t->trace_id) < 0 || unhex(s + 36, 16, t->parent_id) < 0) return -1;
  /* flags may legitimately be 00: check the hex only. */
  if (unhex(s + 53, 2, flags) < 0 && memcmp(s + 53, "00", 2) != 0) return -1;
  t->flags = memcmp(s + 53, "00", 2) == 0 ? 0 : flags[0];
  return 0;
}

int trace_begin(trace_ctx *t, const char *traceparent, size_t len, const char *tracestate,
                size_t state_len) {
  memset(t, 0, sizeof *t);
  int continued = traceparent && parse(t, traceparent, len) == 0;
  if (!continued) {
    memset(t, 0, sizeof *t);
    random_id(t->trace_id, sizeof t->trace_id);
    t->flags = 1;
  } else if (tracestate && state_len <= TRACE_STATE_MAX) {
    int printable = 1;
    for (size_t i = 0; i < state_len; i++)
      printable &= tracestate[i] >= 0x20 && tracestate[i] < 0x7f;
    if (printable) memcpy(t->state, tracestate, state_len);
  }
  random_id(t->span_id, sizeof t->span_id);
  tohex(t->trace_id, sizeof t->trace_id, t->trace_hex);
  tohex(t->span_id, sizeof t->span_id, t->span_hex);
  return continued;
}

void trace_header(const trace_ctx *t, char out[56]) {
  memcpy(out, "00-", 3);
  memcpy(out + 3, t->trace_hex, 32);
  out[35] = '-';
  memcpy(out + 36, t->span_hex, 16);
  out[52] = '-';
  tohex(&t->flags, 1, out + 53);
}

int trace_has_parent(const trace_ctx *t) {
  static const uint8_t zero[8];
  return memcmp(t->parent_id, zero, sizeof zero) != 0;
}
