/* tls.h - TLS material for both hops: PEM files checked at start-up (a bad
 * file stops start-up naming its setting), and gRPC credentials whose
 * certificates are re-read when the files change, so cert-manager and
 * Kubernetes Secret rotation need no restart and drop no connection. */
#ifndef EVENTS_TLS_H
#define EVENTS_TLS_H

#include <stddef.h>

#include <grpc/grpc_security.h>

/* Each path may be NULL or "". The names are the settings they came from,
 * used in messages. */
typedef struct tls_files {
  const char *cert, *key, *ca;
  const char *cert_var, *key_var, *ca_var;
} tls_files;

/* Checks the files that are set: readable PEM, a key that matches its
 * certificate, cert and key given together. Returns 0, or -1 with err and
 * *variable (the setting at fault). */
int tls_check(const tls_files *f, const char **variable, char *err, size_t errlen);
int tls_enabled(const tls_files *f);
/* Plaintext when no file is set; TLS otherwise, requiring and verifying
 * client certificates against f->ca when it is set (mTLS). */
grpc_server_credentials *tls_server_credentials(const tls_files *f);
/* Plaintext unless `on`; TLS verifying the server against f->ca (or the
 * system roots), presenting f->cert/f->key when set. */
grpc_channel_credentials *tls_channel_credentials(const tls_files *f, int on);

#endif
