/* rpc_int.h - the call state shared by the server loop and the status code. */
#ifndef EVENTS_RPC_INT_H
#define EVENTS_RPC_INT_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "google/rpc/error_details.pb-c.h"
#include "rpc.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_method rpc_method;

enum rpc_state {
  CALL_REQUESTED,   /* waiting for a client */
  CALL_REPLYING,    /* unary reply batch in flight */
  CALL_STREAM_READ, /* reflection: initial metadata or a reply sent, next request awaited */
  CALL_STREAM_CLOSING,
};

struct rpc_call {
  rpc_server *srv;
  rpc_method *method; /* NULL: a call to an unknown method */
  grpc_completion_queue *cq;
  enum rpc_state state;
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

  grpc_status_code status;
  char *message;
  Google__Rpc__BadRequest__FieldViolation **violations;
  size_t n_violations;
  grpc_slice details_bin; /* packed google.rpc.Status, when there are details */
  int has_details;
  grpc_metadata trailer;
};

/* Packs status + violations into details_bin (grpc-status-details-bin). */
void rpc_status_finish(rpc_call *c);
void rpc_status_clear(rpc_call *c);

#endif
