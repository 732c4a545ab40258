/* ids.c - random and time-ordered identifiers from the kernel's CSPRNG. */
#include "ids.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* The kernel's generator, a few hundred bytes at a time per thread: a
 * getrandom call per id (three per customer event, 1,500 per batch) showed
 * in profiles. Handed-out bytes are wiped, so they are never handed out
 * twice. */
#define RANDOM_POOL 512
static _Thread_local uint8_t pool[RANDOM_POOL];
static _Thread_local size_t pool_left;

int ids_random(void *p, size_t n) {
  uint8_t *b = p;
  if (n > sizeof pool) {
    while (n) {
      ssize_t r = getrandom(b, n, 0);
      if (r < 0) return -1;
      b += r;
      n -= (size_t)r;
    }
    return 0;
  }
  if (pool_left < n) {
    if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool) return -1;
    pool_left = sizeof pool;
  }
  memcpy(b, pool + sizeof pool - pool_left, n);
  memset(pool + sizeof pool - pool_left, 0, n);
  pool_left -= n;
  return 0;
}

int ids_hex(char *buf, size_t len) {
  static const char hex[] = "0123456789abcdef";
  uint8_t raw[64];
  if (len > 2 * sizeof raw || ids_random(raw, (len + 1) / 2) < 0) return -1;
  for (size_t i = 0; i < len; i++)
    buf[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
  buf[len] = '\0';
  return 0;
}

int ids_hex_ordered(char *buf, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (len <= 12) return ids_hex(buf, len);
  if (ids_hex(buf + 12, len - 12) < 0) return -1;
  uint64_t ms = (uint64_t)(ids_now_us() / 1000);
  for (int i = 11; i >= 0; i--, ms >>= 4)
    buf[i] = hex[ms & 15];
  return 0;
}

static void format_uuid(const uint8_t b[16], char out[37]) {
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

int ids_uuid4(char out[37]) {
  uint8_t b[16];
  if (ids_random(b, sizeof b) < 0) return -1;
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  format_uuid(b, out);
  return 0;
}

long long ids_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long ids_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* UUIDv7 with a 12-bit counter in rand_a (RFC 9562 method 1), so ids made in
 * the same millisecond by this process still sort in creation order. */
int ids_uuid7(char out[37]) {
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  static uint64_t last_ms;
  static unsigned seq;
  uint8_t b[16];
  if (ids_random(b, sizeof b) < 0) return -1;
  uint64_t ms = (uint64_t)(ids_now_us() / 1000);
  pthread_mutex_lock(&mu);
  if (ms <= last_ms) {
    ms = last_ms;
    if (++seq > 0xfff) { /* counter spent: borrow the next millisecond */
      ms = ++last_ms;
      seq = 0;
    }
  } else {
    last_ms = ms;
    seq = 0;
  }
  unsigned s = seq;
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < 6; i++)
    b[i] = (uint8_t)(ms >> (40 - 8 * i));
  b[6] = (uint8_t)(0x70 | (s >> 8));
  b[7] = (uint8_t)s;
  b[8] = (b[8] & 0x3f) | 0x80;
  format_uuid(b, out);
  return 0;
}

int ids_is_hex(const char *s, size_t len) {
  if (strlen(s) != len) return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int ids_is_uuid(const char *s) {
  if (strlen(s) != 36) return 0;
  for (int i = 0; i < 36; i++) {
    char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return 0;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                 (ch >= 'A' && ch <= 'F'))) {
      return 0;
    }
  }
  return 1;
}
