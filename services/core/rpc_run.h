/* rpc_run.h - run tokens: how many of the server's workers run at once. */
#ifndef EVENTS_RPC_RUN_H
#define EVENTS_RPC_RUN_H

#include <pthread.h>

typedef struct rpc_run {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int free; /* tokens no worker holds */
} rpc_run;

int rpc_run_init(rpc_run *r, int tokens);
void rpc_run_destroy(rpc_run *r);
/* Waits for a token unless the calling thread holds one. */
void rpc_run_take(rpc_run *r);
/* Gives the calling thread's token back, if it holds one: before it waits
 * on something slow (the store's block hook) and when it ends. */
void rpc_run_give(void);

#endif
