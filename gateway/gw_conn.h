/* gw_conn.h - per-connection state kept between libmicrohttpd's callbacks:
 * what the guard notes while the request line is read, and the total
 * deadline for receiving a request. libmicrohttpd's own timeout only ends
 * connections that go silent; a client trickling a byte a second would hold
 * its connection for ever. The reaper ends any connection that has not
 * delivered a whole request within the deadline of becoming ready for one
 * (accepted, or its previous response sent).
 *
 * It also decides when a connection may be parked (gw_park.h): when it has
 * been idle for the park delay and libmicrohttpd holds no byte of a next
 * request. The library's buffer cannot be inspected, so it is inferred:
 * the bytes it has read from the socket (the kernel's count of bytes
 * received, less those still queued) must equal the bytes of the requests
 * it has answered (each head's size plus its Content-Length). Anything else
 * (a request begun, pipelined bytes, a chunked body, stray line breaks)
 * keeps the connection in the library, so no byte is ever lost. */
#ifndef EVENTS_GW_CONN_H
#define EVENTS_GW_CONN_H

#include <microhttpd.h>

typedef struct gw_conn {
  const char *target; /* the guard: the request line's target, as sent */
  unsigned flags;     /* the guard: GW_GUARD_* of the request being read */
  int fd;
  long long ready_us; /* when it became ready for a request (atomic; ids_mono_us) */
  int busy;           /* a whole request is in and being answered (atomic) */
  int reaped;
  /* Parking, all on the connection's own thread. */
  int idle;                    /* no byte of a next request seen yet */
  int uncounted;               /* a chunked body: its wire size is unknown */
  unsigned long long consumed; /* bytes of the requests answered */
  struct gw_conn *prev, *next;
} gw_conn;

/* MHD_OPTION_NOTIFY_CONNECTION callback: allocates and frees the state. */
void gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe);
/* The state of conn, NULL when it could not be allocated. */
gw_conn *gw_conn_of(struct MHD_Connection *conn);
/* A whole request arrived: it is being answered. */
void gw_conn_busy(struct MHD_Connection *conn);
/* A request's line arrived on c: it is no longer idle. */
void gw_conn_request_begins(struct MHD_Connection *conn, gw_conn *c);
/* A request ended; kept: answered, and the connection waits for the next. */
void gw_conn_request_done(struct MHD_Connection *conn, int kept);
/* Parks connections idle for park_s seconds (0: never; less than idle_s),
 * giving them the rest of idle_s; call before the daemon starts. */
void gw_conn_park_after(unsigned park_s, unsigned idle_s);
/* Connections libmicrohttpd holds now. */
unsigned gw_conn_count(void);
/* Starts the reaper for a deadline of timeout_ms (0: none). */
int gw_conn_reaper_start(long long timeout_ms);
void gw_conn_reaper_stop(void);

#endif
