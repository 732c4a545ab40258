/* pbjson.h - protobuf <-> JSON mapping driven by protobuf-c descriptors.
 *
 * One mapper serves the gateway (REST bodies) and the service (stored
 * documents, with PBJSON_MICROS_TIME). Every dialect's bodies follow from it: the REST bodies use
 * the proto field names (snake_case) or their lowerCamelCase form, times as RFC 3339 or as
 * "YYYY-MM-DD HH:MM:SS", and everything else follows from the descriptors.
 * Well-known types map as in proto3 JSON: wrappers to their value or null,
 * Timestamp to a time string, Struct/Value/ListValue to free JSON, FieldMask
 * to a comma-separated string. Enums map to the lowercase value name without
 * the enum's prefix (ReviewStatus REVIEW_STATUS_PENDING -> "pending"). 64-bit
 * integers are JSON numbers, bytes base64. */
#ifndef EVENTS_PBJSON_H
#define EVENTS_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

enum {
  PBJSON_CAMEL = 1 << 0,          /* member names in lowerCamelCase */
  PBJSON_SQL_TIME = 1 << 1,       /* Timestamp as "YYYY-MM-DD HH:MM:SS" UTC */
  PBJSON_OMIT_NULL = 1 << 2,      /* output: leave out unset messages/wrappers (else null) */
  PBJSON_IGNORE_UNKNOWN = 1 << 3, /* input: skip unknown members (else an error) */
  PBJSON_MICROS_TIME = 1 << 4,    /* Timestamp as integer microseconds since the epoch */
};

/* Deepest nesting of JSON objects/arrays the mapper reads or writes; deeper
 * input is "invalid_value_format" (it bounds recursion on hostile input). */
#define PBJSON_MAX_DEPTH 64

/* What was wrong with the input, and where: path is the JSON path of the
 * offending member from the mapped object, e.g. "event.name" or
 * "property_records[3].property_id"; reason is one of "unknown_field",
 * "invalid_type", "invalid_value_format", "out_of_range", "not_allowed_value".
 * Two members of one oneof give "not_allowed_value" at the second; a failed
 * allocation gives "out_of_memory" (not the input's fault). */
typedef struct pbjson_err {
  char path[256];
  char msg[256];
  const char *reason;
} pbjson_err;

/* Decodes the JSON object `in` into a new message of type `desc`.
 * Returns 0 and sets *out (free with protobuf_c_message_free_unpacked(*out, NULL)),
 * or -1 and fills err. */
int pbjson_decode(const json_t *in, const ProtobufCMessageDescriptor *desc, unsigned flags,
                  ProtobufCMessage **out, pbjson_err *err);

/* Same, into an already initialised message (fields present in `in` are set:
 * scalars, repeated fields and well-known types are replaced, plain
 * sub-messages merged into, null unsets messages). On error the message stays
 * valid to free but may hold the members decoded before the failing one. */
int pbjson_merge(const json_t *in, ProtobufCMessage *msg, unsigned flags, pbjson_err *err);

/* Encodes a message as a new JSON object (never NULL for a valid message;
 * NULL only when out of memory or nested deeper than PBJSON_MAX_DEPTH). */
json_t *pbjson_encode(const ProtobufCMessage *msg, unsigned flags);

/* Helpers shared with the dialects. */
/* Writes the time as the encoder does under `flags` (RFC 3339 UTC, SQL form,
 * or decimal microseconds). 0, or -1 when nanos is not 0..999999999, the time
 * is outside years 1..9999, or buf is too small. */
int pbjson_time_format(int64_t seconds, int32_t nanos, unsigned flags, char *buf, size_t len);
/* RFC 3339 (offset or Z, fraction up to 9 digits) or "YYYY-MM-DD HH:MM:SS"
 * (UTC). 0; -1 when not such a time; -2 when outside years 1..9999. */
int pbjson_time_parse(const char *s, int64_t *seconds, int32_t *nanos); /* RFC 3339, or SQL form */
/* The JSON member name of a field under `flags`: f->name itself, or with
 * PBJSON_CAMEL its lowerCamelCase form written to buf (NULL if it does not fit). */
const char *pbjson_field_name(const ProtobufCFieldDescriptor *f, unsigned flags, char *buf,
                              size_t len);
/* The JSON name of value v of enum ed as the encoder writes it (lowercase,
 * without the enum's prefix: REVIEW_STATUS_PENDING -> "pending") in buf;
 * NULL when ed has no value v or buf is too small. */
const char *pbjson_enum_name(const ProtobufCEnumDescriptor *ed, int v, char *buf, size_t len);

/* Numbers keep their form: the encoder writes a double that holds an
 * integer within +/-2^53 as a JSON integer (42, never 42.0; 1.0, 1e2 and -0
 * come back as 1, 100 and 0), any other as a real; the decoder refuses
 * integers beyond +/-2^53 ("out_of_range"), which a double would round.
 */

/* Path styles of pbjson_find_unkeepable. */
enum { PBJSON_PATH_DOTTED = 0, PBJSON_PATH_POINTER = 1 };

/* The first number of the JSON text that jansson cannot read (an integer
 * beyond int64, a real that overflows a double: jansson refuses the whole
 * text with json_error_numeric_overflow), so that the refusal can name the
 * member: its path ("a.b[2]" as pbjson_err paths, or the JSON pointer
 * "/a/b/2") and its text as sent, each cut to fit. 0 when found; -1 when
 * there is none before the end or the first syntax error. */
int pbjson_find_unkeepable(const char *text, size_t len, unsigned style, char *path, size_t pathlen,
                           char *token, size_t toklen);

/* Whether a google.protobuf.Value, Struct or ListValue holds a NaN or an
 * infinity, which JSON cannot write (the encoder would turn it into the
 * string "NaN"); 1 with path set to where, relative and with its leading
 * separator (".a.b[2]", "" for m itself; cut to fit), else 0. Other messages
 * are not looked into. */
int pbjson_find_nonfinite(const ProtobufCMessage *m, char *path, size_t len);

#endif
