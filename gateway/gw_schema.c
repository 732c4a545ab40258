/* gw_schema.c - JSON Schemas of messages for the OpenAPI document, derived
 * from the protobuf-c descriptors the same way the mapper renders them, so
 * the document describes the bodies actually served, and from the protos'
 * annotations: output-only fields are readOnly, limits become maxLength,
 * formats, patterns, bounds and maxItems. While a document is built
 * (gw_schema_begin), each message is described once under
 * components.schemas and referred to by $ref. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "gw.h"

/* The document being built on this thread (see gw_schema_begin). */
static __thread json_t *components;

void gw_schema_begin(json_t *schemas) {
  components = schemas;
}

void gw_schema_end(void) {
  components = NULL;
}

/* The annotations' limits of field f of message d, onto schema s. */
static void apply_rules(json_t *s, const ProtobufCMessageDescriptor *d,
                        const ProtobufCFieldDescriptor *f) {
  const api *a = gw_api();
  if (!a || !d) return;
  api_field af = api_field_of(a, d, f);
  const Events__Api__V1__FieldRules *r = af.rules;
  if (af.behavior & API_OUTPUT_ONLY) json_object_set_new(s, "readOnly", json_true());
  json_t *item = f->label == PROTOBUF_C_LABEL_REPEATED ? json_object_get(s, "items") : s;
  if (f->label == PROTOBUF_C_LABEL_REPEATED && r->max_items)
    json_object_set_new(s, "maxItems", json_integer(r->max_items));
  if (!item) return;
  if (r->max_chars) json_object_set_new(item, "maxLength", json_integer(r->max_chars));
  if (r->has_min) json_object_set_new(item, "minimum", json_integer(r->min));
  if (r->has_max) json_object_set_new(item, "maximum", json_integer(r->max));
  switch (r->format) {
  case EVENTS__API__V1__FORMAT__FORMAT_HEX26:
    json_object_set_new(item, "pattern", json_string("^[0-9a-f]{26}$"));
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_HEX32:
    json_object_set_new(item, "pattern", json_string("^[0-9a-f]{32}$"));
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_UUID:
  case EVENTS__API__V1__FORMAT__FORMAT_UUIDV7:
    json_object_set_new(item, "format", json_string("uuid"));
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_UUID_ANY_FORM:
    json_object_set_new(item, "pattern",
                        json_string("^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                                    "[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"));
    break;
  default:
    break;
  }
}

static json_t *message_schema(const ProtobufCMessageDescriptor *d, unsigned flags, int depth);

/* "ReviewStatus" -> "REVIEW_STATUS_": the prefix the mapper strips. */
static void enum_prefix(const char *name, char *out, size_t len) {
  size_t o = 0;
  for (size_t i = 0; name[i] && o + 2 < len; i++) {
    if (i && isupper((unsigned char)name[i]) && o + 3 < len) out[o++] = '_';
    out[o++] = (char)toupper((unsigned char)name[i]);
  }
  out[o++] = '_';
  out[o] = '\0';
}

static json_t *enum_schema(const ProtobufCEnumDescriptor *e) {
  char prefix[128];
  enum_prefix(e->short_name, prefix, sizeof prefix);
  size_t pl = strlen(prefix);
  json_t *values = json_array();
  for (unsigned i = 0; i < e->n_values; i++) {
    const char *n = e->values[i].name;
    if (strncmp(n, prefix, pl) == 0) n += pl;
    char lower[128];
    size_t j = 0;
    for (; n[j] && j < sizeof lower - 1; j++)
      lower[j] = (char)tolower((unsigned char)n[j]);
    lower[j] = '\0';
    if (strcmp(lower, "unspecified") == 0) continue;
    json_array_append_new(values, json_string(lower));
  }
  return json_pack("{s:s, s:o}", "type", "string", "enum", values);
}

static json_t *well_known(const char *name) {
  static const struct {
    const char *name;
    const char *type;
    const char *format;
  } wk[] = {
      {"google.protobuf.StringValue", "string", NULL},
      {"google.protobuf.BoolValue", "boolean", NULL},
      {"google.protobuf.Int64Value", "integer", "int64"},
      {"google.protobuf.Int32Value", "integer", "int32"},
      {"google.protobuf.UInt64Value", "integer", NULL},
      {"google.protobuf.UInt32Value", "integer", NULL},
      {"google.protobuf.DoubleValue", "number", NULL},
      {"google.protobuf.FloatValue", "number", NULL},
      {"google.protobuf.BytesValue", "string", "byte"},
      {"google.protobuf.Timestamp", "string", NULL},
      {"google.protobuf.FieldMask", "string", NULL},
  };
  for (size_t i = 0; i < sizeof wk / sizeof *wk; i++) {
    if (strcmp(name, wk[i].name) != 0) continue;
    json_t *s = json_pack("{s:s}", "type", wk[i].type);
    if (wk[i].format) json_object_set_new(s, "format", json_string(wk[i].format));
    return s;
  }
  if (strcmp(name, "google.protobuf.Struct") == 0) return json_pack("{s:s}", "type", "object");
  if (strcmp(name, "google.protobuf.ListValue") == 0)
    return json_pack("{s:s, s:{}}", "type", "array", "items");
  if (strcmp(name, "google.protobuf.Value") == 0) return json_object(); /* any JSON */
  return NULL;
}

static json_t *field_schema(const ProtobufCFieldDescriptor *f, unsigned flags, int depth) {
  json_t *s;
  int rfc3339 = !(flags & (PBJSON_SQL_TIME | PBJSON_MICROS_TIME));
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    s = json_pack("{s:s, s:s}", "type", "integer", "format", "int32");
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    s = json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
    break;
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_DOUBLE:
    s = json_pack("{s:s}", "type", "number");
    break;
  case PROTOBUF_C_TYPE_BOOL:
    s = json_pack("{s:s}", "type", "boolean");
    break;
  case PROTOBUF_C_TYPE_BYTES:
    s = json_pack("{s:s, s:s}", "type", "string", "format", "byte");
    break;
  case PROTOBUF_C_TYPE_ENUM:
    s = enum_schema(f->descriptor);
    break;
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessageDescriptor *md = f->descriptor;
    s = well_known(md->name);
    if (s && rfc3339 && strcmp(md->name, "google.protobuf.Timestamp") == 0)
      json_object_set_new(s, "format", json_string("date-time"));
    if (!s) s = depth < 8 ? message_schema(md, flags, depth + 1) : json_object();
    if (f->label != PROTOBUF_C_LABEL_REPEATED && strcmp(md->name, "google.protobuf.Value") != 0) {
      /* a $ref takes no siblings in OpenAPI 3.0: wrap it to say nullable */
      if (json_object_get(s, "$ref")) s = json_pack("{s:s, s:[o]}", "type", "object", "allOf", s);
      json_object_set_new(s, "nullable", json_true());
    }
    break;
  }
  default:
    s = json_pack("{s:s}", "type", "string");
    break;
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    s = json_pack("{s:s, s:o}", "type", "array", "items", s);
  return s;
}

static json_t *inline_schema(const ProtobufCMessageDescriptor *d, unsigned flags, int depth) {
  json_t *props = json_object();
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (gw_grpc_only(d, &d->fields[i])) continue;
    char buf[128];
    const char *name = pbjson_field_name(&d->fields[i], flags, buf, sizeof buf);
    json_t *fs = field_schema(&d->fields[i], flags, depth);
    apply_rules(fs, d, &d->fields[i]);
    json_object_set_new(props, name ? name : d->fields[i].name, fs);
  }
  return json_pack("{s:s, s:o}", "type", "object", "properties", props);
}

/* A $ref to the message's entry in components.schemas, made on first use
 * (the entry is claimed before its fields are described, so recursive
 * messages end in a $ref to themselves). */
static json_t *message_schema(const ProtobufCMessageDescriptor *d, unsigned flags, int depth) {
  if (!components) return inline_schema(d, flags, depth);
  char ref[300];
  snprintf(ref, sizeof ref, "#/components/schemas/%s", d->name);
  if (!json_object_get(components, d->name)) {
    json_object_set_new(components, d->name, json_object());
    json_object_set_new(components, d->name, inline_schema(d, flags, 0));
  }
  return json_pack("{s:s}", "$ref", ref);
}

json_t *gw_schema_component(const char *name, json_t *(*build)(void)) {
  if (!components) return build();
  if (!json_object_get(components, name)) json_object_set_new(components, name, build());
  char ref[300];
  snprintf(ref, sizeof ref, "#/components/schemas/%s", name);
  return json_pack("{s:s}", "$ref", ref);
}

json_t *gw_schema_required(const ProtobufCMessageDescriptor *d, unsigned flags) {
  const api *a = gw_api();
  json_t *req = json_array();
  for (unsigned i = 0; a && i < d->n_fields; i++) {
    if (!(api_field_of(a, d, &d->fields[i]).behavior & API_REQUIRED)) continue;
    char buf[128];
    const char *name = pbjson_field_name(&d->fields[i], flags, buf, sizeof buf);
    json_array_append_new(req, json_string(name ? name : d->fields[i].name));
  }
  return req;
}

/* A message a body spells out member by member (not a well-known type). */
static int plain_message(const ProtobufCFieldDescriptor *f) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
  json_t *wk = well_known(((const ProtobufCMessageDescriptor *)f->descriptor)->name);
  json_decref(wk);
  return !wk;
}

static json_t *create_constraints(const ProtobufCMessageDescriptor *d, unsigned flags, int depth) {
  const api *a = gw_api();
  json_t *req = gw_schema_required(d, flags), *props = json_object();
  for (unsigned i = 0; depth < 8 && i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!plain_message(f) || (a && (api_field_of(a, d, f).behavior & API_OUTPUT_ONLY))) continue;
    json_t *inner = create_constraints(f->descriptor, flags, depth + 1);
    if (!inner) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) inner = json_pack("{s:o}", "items", inner);
    char buf[128];
    const char *name = pbjson_field_name(f, flags, buf, sizeof buf);
    json_object_set_new(props, name ? name : f->name, inner);
  }
  json_t *s = json_object();
  if (json_array_size(req)) json_object_set(s, "required", req);
  if (json_object_size(props)) json_object_set(s, "properties", props);
  json_decref(req);
  json_decref(props);
  if (json_object_size(s)) return s;
  json_decref(s);
  return NULL;
}

json_t *gw_schema_create_constraints(const ProtobufCMessageDescriptor *d, unsigned flags) {
  return create_constraints(d, flags, 0);
}

json_t *gw_schema_field(const ProtobufCFieldDescriptor *f, unsigned flags) {
  return field_schema(f, flags, 0);
}

json_t *gw_schema_field_of(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                           unsigned flags) {
  json_t *s = field_schema(f, flags, 0);
  apply_rules(s, d, f);
  return s;
}

json_t *gw_schema(const ProtobufCMessageDescriptor *desc, unsigned flags) {
  json_t *wk = well_known(desc->name);
  return wk ? wk : message_schema(desc, flags, 0);
}
