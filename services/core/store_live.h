/* store_live.h - whether the store can be reached, as the service believes
 * it: a call that finds the store unreachable marks it down at once, and a
 * background ping (every second while up, four times a second while down)
 * brings it back. While it is down, calls that need it fail fast with
 * UNAVAILABLE instead of each waiting out the driver's timeout, and health
 * reports NOT_SERVING so readiness follows the store. */
#ifndef EVENTS_STORE_LIVE_H
#define EVENTS_STORE_LIVE_H

#include "store.h"

/* Starts the pinger over st; 0 or -1 (no thread). */
int store_live_start(store *st);
void store_live_stop(void);
/* 1 while the store is believed reachable (also before start). */
int store_live_up(void);
/* A call found the store unreachable. */
void store_live_down(void);

#endif
