/* gw_tls.c - HTTPS certificates for libmicrohttpd. GnuTLS asks for the
 * certificate on every handshake; at most once a second the files are
 * stat'ed and, when they changed, loaded afresh. The previous generation is
 * kept until the next change, since a handshake already under way may still
 * hold pointers into it. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "gw_tls.h"
#include "log.h"

#define MAX_CHAIN 8

typedef struct generation {
  gnutls_pcert_st chain[MAX_CHAIN];
  unsigned n;
  gnutls_privkey_t key;
} generation;

static struct {
  pthread_mutex_t mu;
  char *cert_path, *key_path;
  struct stat cert_seen, key_seen;
  time_t checked;
  generation *live, *previous;
} tls = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void generation_free(generation *g) {
  if (!g) return;
  for (unsigned i = 0; i < g->n; i++)
    gnutls_pcert_deinit(&g->chain[i]);
  if (g->key) gnutls_privkey_deinit(g->key);
  free(g);
}

static int load(generation **out, char *err, size_t errlen) {
  gnutls_datum_t cert = {0}, key = {0};
  generation *g = calloc(1, sizeof *g);
  int rc = -1, e;
  if (!g) goto fail;
  if ((e = gnutls_load_file(tls.cert_path, &cert)) < 0) {
    snprintf(err, errlen, "%s: %s", tls.cert_path, gnutls_strerror(e));
    goto fail;
  }
  if ((e = gnutls_load_file(tls.key_path, &key)) < 0) {
    snprintf(err, errlen, "%s: %s", tls.key_path, gnutls_strerror(e));
    goto free_cert;
  }
  g->n = MAX_CHAIN;
  if ((e = gnutls_pcert_list_import_x509_raw(g->chain, &g->n, &cert, GNUTLS_X509_FMT_PEM, 0)) < 0) {
    g->n = 0;
    snprintf(err, errlen, "%s: %s", tls.cert_path, gnutls_strerror(e));
    goto free_key;
  }
  if ((e = gnutls_privkey_init(&g->key)) < 0 ||
      (e = gnutls_privkey_import_x509_raw(g->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
    snprintf(err, errlen, "%s: %s", tls.key_path, gnutls_strerror(e));
    goto free_key;
  }
  *out = g;
  g = NULL;
  rc = 0;
free_key:
  gnutls_free(key.data);
free_cert:
  gnutls_free(cert.data);
fail:
  if (rc < 0 && !err[0]) snprintf(err, errlen, "out of memory");
  generation_free(g);
  return rc;
}

/* Called with tls.mu held. */
static void refresh(void) {
  time_t now = time(NULL);
  if (now == tls.checked) return;
  tls.checked = now;
  struct stat c, k;
  if (stat(tls.cert_path, &c) < 0 || stat(tls.key_path, &k) < 0) return; /* mid-swap */
  if (c.st_ino == tls.cert_seen.st_ino && c.st_mtim.tv_sec == tls.cert_seen.st_mtim.tv_sec &&
      c.st_mtim.tv_nsec == tls.cert_seen.st_mtim.tv_nsec && k.st_ino == tls.key_seen.st_ino &&
      k.st_mtim.tv_sec == tls.key_seen.st_mtim.tv_sec &&
      k.st_mtim.tv_nsec == tls.key_seen.st_mtim.tv_nsec)
    return;
  char err[512] = "";
  generation *g;
  tls.cert_seen = c;
  tls.key_seen = k;
  if (load(&g, err, sizeof err) < 0) {
    /* Often the cert is written before its key: the next check retries. */
    tls.cert_seen.st_ino = 0;
    log_json(LOG_LEVEL_WARN, "HTTPS certificate not reloaded, the previous one stays",
             json_pack("{s:s}", "error", err));
    return;
  }
  generation_free(tls.previous);
  tls.previous = tls.live;
  tls.live = g;
  log_printf(LOG_LEVEL_INFO, "HTTPS certificate reloaded");
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length,
                    gnutls_privkey_t *privkey) {
  (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
  pthread_mutex_lock(&tls.mu);
  refresh();
  *pcert = tls.live->chain;
  *pcert_length = tls.live->n;
  *privkey = tls.live->key;
  pthread_mutex_unlock(&tls.mu);
  return 0;
}

int gw_tls_open(const char *cert, const char *key, char *err, size_t errlen) {
  err[0] = '\0';
  tls.cert_path = strdup(cert);
  tls.key_path = strdup(key);
  if (!tls.cert_path || !tls.key_path) {
    snprintf(err, errlen, "out of memory");
    goto free_paths;
  }
  stat(cert, &tls.cert_seen);
  stat(key, &tls.key_seen);
  tls.checked = time(NULL);
  if (load(&tls.live, err, errlen) < 0) goto free_paths;
  return 0;
free_paths:
  free(tls.cert_path);
  free(tls.key_path);
  tls.cert_path = tls.key_path = NULL;
  return -1;
}

void *gw_tls_cert_callback(void) {
  return (void *)retrieve;
}

void gw_tls_close(void) {
  generation_free(tls.live);
  generation_free(tls.previous);
  tls.live = tls.previous = NULL;
  free(tls.cert_path);
  free(tls.key_path);
  tls.cert_path = tls.key_path = NULL;
}
