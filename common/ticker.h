/* ticker.h - a background thread that calls a function at an interval
 * until stopped, and can be woken early. Behind the gateway's request
 * deadline reaper and the service's store pinger. */
#ifndef EVENTS_TICKER_H
#define EVENTS_TICKER_H

#include <pthread.h>

typedef struct ticker {
  void (*fn)(void *arg);
  long long (*interval_us)(void *arg); /* asked before each wait */
  void *arg;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int stopping, running;
} ticker;

/* Starts calling fn(arg) every interval_us(arg) microseconds; 0 or -1. */
int ticker_start(ticker *t, void (*fn)(void *), long long (*interval_us)(void *), void *arg);
/* Ends the current wait now: fn runs at once. */
void ticker_wake(ticker *t);
/* Stops and joins the thread; safe on a ticker never started. */
void ticker_stop(ticker *t);

#endif
