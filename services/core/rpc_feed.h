/* rpc_feed.h - the change feed behind every dialect's Watch<Resource>s: a
 * server-streaming call that sends each change of the caller's tenant
 * (store_changes) matching a filter, in commit order, each with a resume
 * token. Dialects say what differs: the collections and conditions (built
 * by their list code) and how a stored document becomes their resource;
 * the streaming, the fan-out and the tokens are here.
 *
 * The response message of a Watch method has the fields `type` (enum:
 * 1 created, 2 updated, 3 deleted), one resource message field,
 * `resume_token` (string) and `commit_time` (Timestamp); they are found by
 * name in its descriptor. */
#ifndef EVENTS_RPC_FEED_H
#define EVENTS_RPC_FEED_H

#include <jansson.h>
#include <stddef.h>

#include "rpc.h"
#include "store.h"

/* Which changes a watcher gets: a change of one of its collections whose
 * document meets that collection's conditions (a delete: the document as it
 * was). Built by the handler; everything is copied in. */
typedef struct rpc_feed_filter rpc_feed_filter;

rpc_feed_filter *rpc_feed_filter_new(void);
/* Adds a collection with its conditions and expression (NULL: none);
 * -1 when out of memory. */
int rpc_feed_filter_add(rpc_feed_filter *f, const char *coll, const store_cond *conds, size_t n,
                        const store_expr *where);
void rpc_feed_filter_free(rpc_feed_filter *f);

/* A stored document as the method's resource message; NULL fails the
 * stream (the call is given for the failure). */
typedef ProtobufCMessage *(*rpc_feed_decode)(rpc_call *c, const char *coll, json_t *doc);

/* Called by a Watch handler instead of its closure: starts streaming after
 * resume_token (empty: from now). Takes f. On a bad token the call fails
 * (INVALID_ARGUMENT naming the field, or OUT_OF_RANGE for one older than
 * the retained history) and the server answers it as a unary failure. */
void rpc_feed_open(rpc_call *c, rpc_feed_filter *f, rpc_feed_decode decode,
                   const char *resume_token);

/* Frees the stream rpc_feed_open opened on c when it is not to be started
 * (rpc_feed_begin never called): a caller that runs handlers without a
 * gRPC call, the fuzzer. Nothing when none was opened. */
void rpc_feed_discard(rpc_call *c);

/* The feed's current position as a token, for a List response: reading it
 * before the list and watching from it misses nothing. Writes "" when the
 * store cannot say (the list itself still works); returns buf. */
char *rpc_feed_list_token(rpc_call *c, char *buf, size_t len);
#define RPC_FEED_TOKEN_MAX 64

/* Server side (rpc_server.c). */
void rpc_feed_start(store *st);
/* Ends every stream with UNAVAILABLE (clients resume elsewhere) and stops
 * the poller; streams whose send is in flight end when it completes. */
void rpc_feed_stop(void);
/* After the queues are drained: frees what is left. */
void rpc_feed_shutdown(void);

#endif
