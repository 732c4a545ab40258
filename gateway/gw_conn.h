/* gw_conn.h - per-connection state kept between libmicrohttpd's callbacks:
 * what the guard notes while the request line is read, and the total
 * deadline for receiving a request. libmicrohttpd's own timeout only ends
 * connections that go silent; a client trickling a byte a second would hold
 * its connection for ever. The reaper ends any connection that has not
 * delivered a whole request within the deadline of becoming ready for one
 * (accepted, or its previous response sent). */
#ifndef EVENTS_GW_CONN_H
#define EVENTS_GW_CONN_H

#include <microhttpd.h>

typedef struct gw_conn {
  const char *target; /* the guard: the request line's target, as sent */
  unsigned flags;     /* the guard: GW_GUARD_* of the request being read */
  int fd;
  long long ready_us; /* when it became ready for a request (atomic) */
  int busy;           /* a whole request is in and being answered (atomic) */
  int reaped;
  struct gw_conn *prev, *next;
} gw_conn;

/* MHD_OPTION_NOTIFY_CONNECTION callback: allocates and frees the state. */
void gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe);
/* The state of conn, NULL when it could not be allocated. */
gw_conn *gw_conn_of(struct MHD_Connection *conn);
/* busy: a whole request arrived; !busy: its response went out. */
void gw_conn_set_busy(struct MHD_Connection *conn, int busy);
/* Starts the reaper for a deadline of timeout_ms (0: none). */
int gw_conn_reaper_start(long long timeout_ms);
void gw_conn_reaper_stop(void);

#endif
