/* rpc_run.c - run tokens: how many of the server's workers run at once.
 *
 * The workers bound how many calls are served at once, since a handler
 * blocks its worker on the store. But every worker waiting in the completion
 * queue costs a wake-up for the calls core hands it: with 8 workers on 2
 * CPUs a GetEvent took 87 µs of service CPU, with 2 workers 60 µs (flame
 * graphs: 30 % of it in core's condition-variable waits and wake-ups). So
 * only a few workers (one per CPU less one: main.c) hold a token and wait on
 * the queue; the others stand by here, on a condition variable nobody
 * signals while the token holders keep up.
 *
 * A holder gives its token away while it waits on the store's network or a
 * group commit (store_set_block_hook), so a standby worker takes up the
 * queue meanwhile and concurrent creates still share a commit, as with every
 * worker on the queue. Back from the wait, the worker finishes its call
 * without a token and takes one before it waits on the queue again. A
 * standby thread holds no call, so waiting for a token never holds up one. */
#include "rpc_run.h"

static __thread rpc_run *tl_run; /* the tokens of the calling worker */
static __thread int tl_held;

int rpc_run_init(rpc_run *r, int tokens) {
  r->free = tokens > 0 ? tokens : 1;
  if (pthread_mutex_init(&r->mu, NULL)) return -1;
  if (pthread_cond_init(&r->cv, NULL)) goto destroy_mu;
  return 0;
destroy_mu:
  pthread_mutex_destroy(&r->mu);
  return -1;
}

void rpc_run_destroy(rpc_run *r) {
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
}

void rpc_run_take(rpc_run *r) {
  if (tl_held) return;
  tl_run = r;
  pthread_mutex_lock(&r->mu);
  while (r->free == 0)
    pthread_cond_wait(&r->cv, &r->mu);
  r->free--;
  pthread_mutex_unlock(&r->mu);
  tl_held = 1;
}

void rpc_run_give(void) {
  rpc_run *r = tl_run;
  if (!tl_held || !r) return;
  tl_held = 0;
  pthread_mutex_lock(&r->mu);
  r->free++;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}
