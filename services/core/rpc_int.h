/* rpc_int.h - the call state shared by the server loop and the status code. */
#ifndef EVENTS_RPC_INT_H
#define EVENTS_RPC_INT_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "api.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "rpc.h"
#include "trace.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_method rpc_method;
typedef struct rpc_worker rpc_worker;

/* A completion queue tag: which batch of which call completed. call is
 * NULL for a call requested from core that no client has made yet (the tag
 * heads rpc_server.c's rpc_pending). */
typedef struct rpc_tag {
  struct rpc_call *call;
  int close; /* the call's own RECV_CLOSE_ON_SERVER batch */
} rpc_tag;

enum rpc_state {
  CALL_ARRIVED,     /* a client's call, being handled */
  CALL_REPLYING,    /* unary reply batch in flight */
  CALL_STREAM_READ, /* reflection: initial metadata or a reply sent, next request awaited */
  CALL_STREAM_CLOSING,
  CALL_WATCH_SENDING, /* health watch: a status message in flight */
  CALL_WATCH_IDLE,    /* health watch: waiting for a change */
  CALL_WATCH_DONE,
  CALL_FEED_SENDING, /* change feed: initial metadata or a change in flight */
  CALL_FEED_IDLE,    /* change feed: waiting for a change */
  CALL_FEED_DONE,
};

struct rpc_call {
  rpc_server *srv;
  store *store;       /* the server's; set alone where there is no server (fuzzing) */
  rpc_method *method; /* NULL: a call to an unknown method */
  const ProtobufCServiceDescriptor *service;    /* of the method being invoked */
  const ProtobufCMethodDescriptor *method_desc; /* the method being invoked */
  const ProtobufCMessageDescriptor *output;     /* its response type */
  const api *api;                               /* the rules requests are checked by; NULL: none */
  enum rpc_state state;
  rpc_tag tag, close_tag;
  /* Batches started and not completed yet: the call is freed when the last
   * completes, whatever the order (the close batch runs beside the others). */
  int refs;
  /* RECV_CLOSE_ON_SERVER completed: client gone, deadline hit, or done.
   * Atomic: set by whichever worker takes the close from the shared queue
   * while another may be serving the call. */
  int closed;
  grpc_call *call;
  gpr_timespec deadline;
  gpr_timespec started;
  grpc_metadata_array md;
  grpc_call_details details; /* unknown methods only */
  grpc_byte_buffer *payload;
  grpc_byte_buffer *response;
  int cancelled;
  int arrived; /* a client call, not just a pending request */
  char tenant[65];
  char request_id[65]; /* x-request-id metadata, when valid */
  /* This call's span, child of the caller's traceparent: allocated on
   * arrival, like the watched service, because the server keeps calls
   * requested for every method and those idle calls should stay small.
   * NULL before arrival (or when out of memory). */
  trace_ctx *trace;
  /* Health watch streams: the service watched, the status last sent. */
  char *watch_service;
  int watch_sent;
  struct rpc_call *watch_next;
  /* Change feed streams (rpc_feed.c): set by the Watch handler. */
  struct feed_watcher *feed;

  grpc_status_code status;
  char *message;
  Google__Rpc__BadRequest__FieldViolation **violations;
  size_t n_violations;
  grpc_slice details_bin; /* packed google.rpc.Status, when there are details */
  int has_details;
  grpc_metadata trailer;
};

/* The call's outcome as a google.rpc.Status (BadRequest details when it has
 * violations); free with protobuf_c_message_free_unpacked. NULL: no memory. */
Google__Rpc__Status *rpc_status_message(const rpc_call *c);
/* Appends a field violation whatever code the call already failed with; the
 * first outcome of the call still gives it its status (code). */
void rpc_violation_add(rpc_call *c, grpc_status_code code, const char *field, const char *reason,
                       const char *description);
/* Batches on a call (rpc_server.c), for the stream code beside it: start
 * one holding a reference; send the status (and the close op's partner
 * ops), after which the call is logged; drop a reference; log the call. */
int rpc_call_batch(rpc_call *c, const grpc_op *ops, size_t n, rpc_tag *tag);
void rpc_call_reply(rpc_call *c, int send_initial);
void rpc_call_unref(rpc_call *c);
void rpc_call_log(rpc_call *c);

/* Change feed events (rpc_feed.c): the handler opened a feed on the call;
 * a send completed; the call closed. */
void rpc_feed_begin(rpc_call *c);
void rpc_feed_sent(rpc_call *c, int ok);
void rpc_feed_closed(rpc_call *c);

/* Packs status + violations into details_bin (grpc-status-details-bin). */
void rpc_status_finish(rpc_call *c);
void rpc_status_clear(rpc_call *c);

#endif
