/* fuzz_pbjson.c - the protobuf<->JSON mapper (common/pbjson.c) over
 * real message descriptors (every dialect's resources and requests, the
 * google.rpc and well-known types, and the all-types test messages) and
 * every flag combination.
 *
 * Input: byte 0 picks the message, byte 1 the flags (all five bits), byte 2
 * the mode; the rest is the document.
 *   mode even: the rest is JSON. When it decodes, its encoding must decode
 *     again to a message that encodes identically (the mapper's fixed point),
 *     and the decoded message must survive the protobuf wire unchanged.
 *   mode odd: the rest is protobuf wire data. When it unpacks, it must encode
 *     (unless nested beyond PBJSON_MAX_DEPTH), and when that JSON decodes
 *     back, encoding it again gives the same JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "events/activity/v1/activity.pb-c.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "events/customer/v1/customer.pb-c.h"
#include "events/object/v1/object.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "jsontext.h"
#include "pbjson.h"
#include "pbjson_test.pb-c.h"

static const ProtobufCMessageDescriptor *const messages[] = {
    &events__activity__v1__event__descriptor,
    &events__activity__v1__create_event_request__descriptor,
    &events__activity__v1__update_event_request__descriptor,
    &events__activity__v1__list_events_request__descriptor,
    &events__activity__v1__list_events_response__descriptor,
    &events__customer__v1__create_event_request__descriptor,
    &events__customer__v1__event__descriptor,
    &events__customer__v1__list_events_request__descriptor,
    &events__customer__v1__list_property_records_response__descriptor,
    &events__catalog__v1__resource__descriptor,
    &events__catalog__v1__update_event_request__descriptor,
    &events__catalog__v1__list_events_request__descriptor,
    &events__object__v1__event__descriptor,
    &events__object__v1__create_event_request__descriptor,
    &events__object__v1__list_events_request__descriptor,
    &google__rpc__bad_request__descriptor,
    &google__protobuf__struct__descriptor,
    &google__protobuf__value__descriptor,
    &pbjsontest__scalars__descriptor,
    &pbjsontest__repeats__descriptor,
    &pbjsontest__wrappers__descriptor,
    &pbjsontest__wkt__descriptor,
    &pbjsontest__choice__descriptor,
    &pbjsontest__everything__descriptor,
};
#define N_MESSAGES (sizeof messages / sizeof *messages)

/* Flags that only steer decoding do not change what encoding writes. */
#define ALL_FLAGS                                                                                  \
  (PBJSON_CAMEL | PBJSON_SQL_TIME | PBJSON_OMIT_NULL | PBJSON_IGNORE_UNKNOWN | PBJSON_MICROS_TIME)

static void dump_diff(const char *what, json_t *a, json_t *b) {
  char *sa = json_dumps(a, JSON_ENCODE_ANY | JSON_SORT_KEYS);
  char *sb = json_dumps(b, JSON_ENCODE_ANY | JSON_SORT_KEYS);
  fprintf(stderr, "%s:\n  first:  %s\n  second: %s\n", what, sa ? sa : "(null)",
          sb ? sb : "(null)");
  free(sa);
  free(sb);
}

/* m survives pack/unpack: the wire form encodes to the same JSON. */
static void check_wire(const ProtobufCMessage *m, unsigned flags, json_t *enc) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  FZ_CHECK(buf != NULL);
  FZ_CHECK(protobuf_c_message_pack(m, buf) == len);
  ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
  FZ_CHECK(back != NULL);
  json_t *again = pbjson_encode(back, flags);
  if (!json_equal(enc, again)) {
    dump_diff("wire round trip changed the encoding", enc, again);
    abort();
  }
  json_decref(again);
  protobuf_c_message_free_unpacked(back, NULL);
  free(buf);
}

/* Object members that are null, recursively: under PBJSON_OMIT_NULL a
 * present time no calendar form can show is written as null (pinned by the
 * unit tests) while an absent one is left out, so wire-made messages
 * compare without them. */
static void drop_nulls(json_t *v) {
  const char *k;
  void *tmp;
  json_t *m;
  size_t i;
  if (json_is_object(v)) {
    json_object_foreach_safe(v, tmp, k, m) {
      if (json_is_null(m))
        json_object_del(v, k);
      else
        drop_nulls(m);
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, m) drop_nulls(m);
  }
}

/* enc came from a message; decoding it and encoding again changes nothing. */
static void check_fixed_point(const ProtobufCMessageDescriptor *d, unsigned flags, json_t *enc,
                              int must_decode) {
  ProtobufCMessage *m2 = NULL;
  pbjson_err err;
  if (pbjson_decode(enc, d, flags & ~PBJSON_IGNORE_UNKNOWN, &m2, &err) != 0) {
    if (must_decode) {
      char *s = json_dumps(enc, JSON_ENCODE_ANY);
      fprintf(stderr, "own encoding does not decode: %s: %s (%s)\n%s\n", err.path, err.msg,
              err.reason ? err.reason : "", s ? s : "");
      free(s);
      abort();
    }
    return;
  }
  json_t *enc2 = pbjson_encode(m2, flags);
  FZ_CHECK(enc2 != NULL);
  if (!must_decode && (flags & PBJSON_OMIT_NULL)) {
    enc = json_deep_copy(enc);
    drop_nulls(enc);
    drop_nulls(enc2);
  } else {
    json_incref(enc);
  }
  if (!json_equal(enc, enc2)) {
    dump_diff("decode+encode is not a fixed point", enc, enc2);
    abort();
  }
  json_decref(enc);
  json_decref(enc2);
  protobuf_c_message_free_unpacked(m2, NULL);
}

/* jsontext_dumps writes what reads back as the same document (each real in
 * its shortest form must still be exact), and what json_dumps writes where
 * the document holds no reals. */
static void check_dumps(const json_t *enc) {
  char *text = jsontext_dumps(enc, JSON_COMPACT | JSON_ENCODE_ANY);
  FZ_CHECK(text != NULL);
  json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);
  if (!back || !json_equal(back, enc)) {
    fprintf(stderr, "jsontext_dumps does not read back: %s\n", text);
    abort();
  }
  json_decref(back);
  free(text);
}

/* The scan that names a number jansson refuses agrees with jansson: it
 * finds one only where jansson refused a number. (Not always where it did:
 * jansson's lexer also refuses a number standing where none may, which the
 * scan reports as the syntax error it is.) */
static void check_unkeepable(const uint8_t *data, size_t size, const json_t *in,
                             const json_error_t *je) {
  char path[64], token[32];
  int rc = pbjson_find_unkeepable((const char *)data, size, (data[-1] >> 2) & 1, path, sizeof path,
                                  token, sizeof token);
  if (rc != 0) return;
  FZ_CHECK(in == NULL && json_error_code(je) == json_error_numeric_overflow);
  FZ_CHECK(token[0] == '-' || (token[0] >= '0' && token[0] <= '9'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const ProtobufCMessageDescriptor *d = messages[data[0] % N_MESSAGES];
  unsigned flags = data[1] & ALL_FLAGS;
  int wire = data[2] & 1;
  data += 3;
  size -= 3;

  if (!wire) {
    json_error_t je;
    size_t jflags = (data[-1] & 2) ? JSON_REJECT_DUPLICATES : 0;
    json_t *in = json_loadb((const char *)data, size, jflags | JSON_DECODE_ANY, &je);
    if (jflags == 0) check_unkeepable(data, size, in, &je);
    if (!in) return 0;
    check_dumps(in);
    ProtobufCMessage *m = NULL;
    pbjson_err err;
    memset(&err, 0xAB, sizeof err);
    if (pbjson_decode(in, d, flags, &m, &err) == 0) {
      FZ_CHECK(m != NULL);
      json_t *enc = pbjson_encode(m, flags);
      FZ_CHECK(enc != NULL);
      check_wire(m, flags, enc);
      check_fixed_point(d, flags, enc, 1);
      check_dumps(enc);
      json_decref(enc);
      protobuf_c_message_free_unpacked(m, NULL);
    } else {
      FZ_CHECK(m == NULL);
      FZ_CHECK(err.reason != NULL);
      FZ_CHECK(memchr(err.path, '\0', sizeof err.path) != NULL);
      FZ_CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
    }
    /* Merging into a message that already holds values must leave it valid. */
    ProtobufCMessage *base = NULL;
    json_t *empty = json_object();
    FZ_CHECK(pbjson_decode(empty, d, 0, &base, NULL) == 0);
    json_decref(empty);
    (void)pbjson_merge(in, base, flags, NULL);
    (void)pbjson_merge(in, base, flags, NULL);
    json_t *enc = pbjson_encode(base, flags);
    if (enc) check_wire(base, flags, enc);
    json_decref(enc);
    protobuf_c_message_free_unpacked(base, NULL);
    json_decref(in);
    return 0;
  }

  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
  if (!m) return 0;
  json_t *enc = pbjson_encode(m, flags);
  if (enc) {
    char *text = json_dumps(enc, JSON_ENCODE_ANY);
    FZ_CHECK(text != NULL); /* jansson holds only what it can write */
    free(text);
    check_fixed_point(d, flags, enc, 0);
    json_decref(enc);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
