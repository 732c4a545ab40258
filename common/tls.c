/* tls.c - PEM checks with OpenSSL, and gRPC TLS credentials built on core's
 * file-watcher certificate provider, which re-reads the files every few
 * seconds and applies new ones to new handshakes only. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* How often the provider looks at the files. */
#define TLS_REFRESH_S 2

static int set(const char *s) {
  return s && *s;
}

int tls_enabled(const tls_files *f) {
  return set(f->cert) || set(f->key) || set(f->ca);
}

static int fail(const char **variable, const char *var, char *err, size_t errlen, const char *what,
                const char *path) {
  *variable = var;
  unsigned long e = ERR_get_error();
  char ssl[256] = "";
  if (e) ERR_error_string_n(e, ssl, sizeof ssl);
  ERR_clear_error();
  snprintf(err, errlen, "%s: %s%s%s", path, what, *ssl ? ": " : "", ssl);
  return -1;
}

/* Every certificate in a PEM bundle; returns how many, -1 when unreadable. */
static int count_certs(const char *path, X509 **first) {
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  int n = 0;
  for (X509 *x; (x = PEM_read_X509(fp, NULL, NULL, NULL)); n++) {
    if (first && !*first)
      *first = x;
    else
      X509_free(x);
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  fclose(fp);
  return n;
}

int tls_check(const tls_files *f, const char **variable, char *err, size_t errlen) {
  X509 *cert = NULL;
  EVP_PKEY *key = NULL;
  int rc = -1;
  if (set(f->cert) != set(f->key))
    return fail(variable, set(f->cert) ? f->key_var : f->cert_var, err, errlen,
                "a certificate and its key are set together", set(f->cert) ? f->cert : f->key);
  if (set(f->ca) && count_certs(f->ca, NULL) <= 0)
    return fail(variable, f->ca_var, err, errlen, "no PEM certificate can be read", f->ca);
  if (!set(f->cert)) return 0;
  if (count_certs(f->cert, &cert) <= 0) {
    fail(variable, f->cert_var, err, errlen, "no PEM certificate can be read", f->cert);
    goto free_cert;
  }
  FILE *fp = fopen(f->key, "r");
  if (fp) {
    key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
  }
  if (!key) {
    fail(variable, f->key_var, err, errlen, "no PEM private key can be read", f->key);
    goto free_cert;
  }
  if (X509_check_private_key(cert, key) != 1) {
    fail(variable, f->key_var, err, errlen, "the key does not match the certificate", f->key);
    goto free_key;
  }
  rc = 0;
free_key:
  EVP_PKEY_free(key);
free_cert:
  X509_free(cert);
  return rc;
}

static grpc_tls_credentials_options *options(const tls_files *f) {
  grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
  grpc_tls_certificate_provider *p = grpc_tls_certificate_provider_file_watcher_create(
      set(f->key) ? f->key : NULL, set(f->cert) ? f->cert : NULL, set(f->ca) ? f->ca : NULL,
      TLS_REFRESH_S);
  grpc_tls_credentials_options_set_certificate_provider(o, p);
  grpc_tls_certificate_provider_release(p); /* the options hold their own ref */
  if (set(f->cert)) grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
  if (set(f->ca)) grpc_tls_credentials_options_watch_root_certs(o);
  return o;
}

grpc_server_credentials *tls_server_credentials(const tls_files *f) {
  if (!tls_enabled(f)) return grpc_insecure_server_credentials_create();
  grpc_tls_credentials_options *o = options(f);
  grpc_tls_credentials_options_set_cert_request_type(
      o, set(f->ca) ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc_tls_server_credentials_create(o);
}

grpc_channel_credentials *tls_channel_credentials(const tls_files *f, int on) {
  if (!on) return grpc_insecure_credentials_create();
  grpc_tls_credentials_options *o = options(f);
  grpc_tls_credentials_options_set_verify_server_cert(o, 1);
  return grpc_tls_credentials_create(o);
}
