/* ids.h - identifiers the dialects hand out: random lowercase hex of a
 * given length, UUIDv4 and time-ordered UUIDv7. */
#ifndef EVENTS_IDS_H
#define EVENTS_IDS_H

#include <stddef.h>

/* n bytes from the kernel's CSPRNG (buffered per thread). */
int ids_random(void *buf, size_t n);
/* buf receives len hex characters and a NUL (len+1 bytes). */
int ids_hex(char *buf, size_t len);
/* The same, but the first 12 characters are the time in milliseconds: ids
 * made one after another land side by side in a store's primary key (one
 * B-tree page for a batch instead of one page per document). The rest is
 * random. Shorter than 13 characters: ids_hex. */
int ids_hex_ordered(char *buf, size_t len);
int ids_uuid4(char buf[37]);
int ids_uuid7(char buf[37]);
/* 1 if s is exactly len lowercase hex characters. */
int ids_is_hex(const char *s, size_t len);
int ids_is_uuid(const char *s);
/* Microseconds since the epoch. */
long long ids_now_us(void);
/* Microseconds of a clock that never steps: for timeouts and deadlines. */
long long ids_mono_us(void);

#endif
