/* creds.h - the credentials file: which secret belongs to which tenant.
 *
 *   # tenant   scheme   secret
 *   acme       bearer   sk:6f1c0e...        # Authorization: Bearer sk:6f1c0e...
 *   acme       basic    crm:s3cret          # Authorization: Basic base64(crm:s3cret)
 *   globex     bearer   sha256:9f86d081...  # SHA-256 (hex) of the token
 *
 * Secrets are kept only as SHA-256 digests and compared in constant time. */
#ifndef EVENTS_CREDS_H
#define EVENTS_CREDS_H

#include <stddef.h>

typedef struct creds creds;

typedef struct creds_err {
  int line; /* 0 when not about one line */
  char msg[512];
} creds_err;

int creds_load(const char *path, creds **out, creds_err *err);
/* `name` labels messages (the file path). */
int creds_parse(const char *text, size_t len, const char *name, creds **out, creds_err *err);
void creds_free(creds *c);
size_t creds_count(const creds *c);
/* The tenant an Authorization header value belongs to, or NULL. */
const char *creds_lookup(const creds *c, const char *authorization, size_t len);

#endif
