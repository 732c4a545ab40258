/* utf8.h - UTF-8 validation shared by the mapper, the gateway and the logs:
 * protobuf-c and HTTP hand over bytes, jansson and JSON hold only UTF-8. */
#ifndef EVENTS_UTF8_H
#define EVENTS_UTF8_H

#include <stddef.h>

#include <jansson.h>

/* Length (1..4) of the valid UTF-8 sequence at s, of the n bytes there; 0
 * when it is not one (overlong, surrogate, cut short, out of range). */
size_t utf8_seq(const unsigned char *s, size_t n);
/* Replaces each byte not part of a valid sequence with '?', in place: the
 * length stays, so fixed buffers stay fixed. */
void utf8_scrub(char *s);
/* The n bytes at s as a JSON string, each invalid byte as U+FFFD; NULL only
 * when out of memory. */
json_t *utf8_json(const char *s, size_t n);

#endif
