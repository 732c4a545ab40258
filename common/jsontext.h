/* jsontext.h - jansson values as JSON text (jsontext.c). */
#ifndef EVENTS_JSONTEXT_H
#define EVENTS_JSONTEXT_H

#include <stddef.h>

#include <jansson.h>

/* json_dumps with JSON_COMPACT, faster. Reals: with JSON_REAL_PRECISION(p)
 * in flags, as json_dumps writes them (the store's documents keep
 * jansson's text); without, in their shortest exact form (0.1, not
 * jansson's 0.10000000000000001), still with a '.' or an exponent so they
 * read back as reals. Everything else is written as jansson writes it
 * (JSON_ENSURE_ASCII, JSON_ESCAPE_SLASH and JSON_SORT_KEYS are honoured);
 * without JSON_COMPACT, or indented, it is json_dumps itself. Free the
 * text with free(); NULL when out of memory or not dumpable. */
char *jsontext_dumps(const json_t *j, size_t flags);
/* The shortest text of a finite double into buf (at least 40 bytes): 0, or
 * -1 when d is not finite or buf is too small. */
int jsontext_real(double d, char *buf, size_t len);

#endif
