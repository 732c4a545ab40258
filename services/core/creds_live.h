/* creds_live.h - the credentials in force, replaced atomically when the file
 * changes on disk (a Kubernetes Secret update swaps a symlink) or on SIGHUP.
 * A new file that does not parse is refused with its file:line and the
 * previous set stays in force. */
#ifndef EVENTS_CREDS_LIVE_H
#define EVENTS_CREDS_LIVE_H

#include <stddef.h>

#include "creds.h"

typedef struct creds_live creds_live;

/* Loads the file (generation 1) and starts watching it: polled every
 * poll_ms for a changed inode, size or mtime. */
int creds_live_open(const char *path, int poll_ms, creds_live **out, creds_err *err);
void creds_live_close(creds_live *l);
/* Re-reads the file now; 0 when the new set is in force, -1 (err set) when it
 * was refused. */
int creds_live_reload(creds_live *l, creds_err *err);
/* Copies the tenant of an Authorization value into tenant; 0, or -1 when the
 * credential is unknown. */
int creds_live_lookup(creds_live *l, const char *authorization, size_t len, char *tenant,
                      size_t tenant_len);
unsigned creds_live_generation(creds_live *l);
size_t creds_live_count(creds_live *l);

#endif
