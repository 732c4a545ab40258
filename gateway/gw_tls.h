/* gw_tls.h - the gateway's HTTPS certificate, served through libmicrohttpd's
 * certificate callback and re-read when its files change, so a rotated
 * certificate applies to new connections without dropping open ones. */
#ifndef EVENTS_GW_TLS_H
#define EVENTS_GW_TLS_H

/* Loads cert and key (PEM); 0, or -1 with err. */
int gw_tls_open(const char *cert, const char *key, char *err, size_t errlen);
/* The MHD_OPTION_HTTPS_CERT_CALLBACK function (a gnutls retrieve function). */
void *gw_tls_cert_callback(void);
void gw_tls_close(void);

#endif
