/* ticker.c - a periodic background thread (see ticker.h). fn runs without
 * the ticker's lock held, so it may take its own. */
#include "ticker.h"

#include <time.h>

static void *loop(void *arg) {
  ticker *t = arg;
  pthread_mutex_lock(&t->mu);
  while (!t->stopping) {
    long long us = t->interval_us(t->arg);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (us % 1000000) * 1000;
    until.tv_sec += us / 1000000 + ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&t->wake, &t->mu, &until);
    if (t->stopping) break;
    pthread_mutex_unlock(&t->mu);
    t->fn(t->arg);
    pthread_mutex_lock(&t->mu);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

int ticker_start(ticker *t, void (*fn)(void *), long long (*interval_us)(void *), void *arg) {
  t->fn = fn;
  t->interval_us = interval_us;
  t->arg = arg;
  t->stopping = 0;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->wake, NULL);
  if (pthread_create(&t->thread, NULL, loop, t) != 0) goto destroy;
  t->running = 1;
  return 0;
destroy:
  pthread_cond_destroy(&t->wake);
  pthread_mutex_destroy(&t->mu);
  return -1;
}

void ticker_wake(ticker *t) {
  if (!t->running) return;
  pthread_mutex_lock(&t->mu);
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->mu);
}

void ticker_stop(ticker *t) {
  if (!t->running) return;
  pthread_mutex_lock(&t->mu);
  t->stopping = 1;
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->mu);
  pthread_join(t->thread, NULL);
  pthread_cond_destroy(&t->wake);
  pthread_mutex_destroy(&t->mu);
  t->running = 0;
}
