/* gw_park.h - idle keep-alive connections held outside libmicrohttpd.
 *
 * libmicrohttpd 0.9.75 zeroes a connection's whole memory pool after every
 * request, so each kept-alive connection holds its pool resident (64 KiB by
 * default) for as long as it stays open. A connection that has been idle
 * for a while (no byte of a next request read) is taken from the library
 * instead: its socket is kept here, in one epoll set, at the cost of a few
 * dozen bytes, and handed back with MHD_add_connection when the client
 * sends again. gw_conn decides when a connection may be parked; this module
 * only keeps the sockets, ends them at the idle timeout, and caps them. */
#ifndef EVENTS_GW_PARK_H
#define EVENTS_GW_PARK_H

#include <microhttpd.h>

/* Starts the parking thread for daemon d. A parked socket is closed once
 * idle_ms have passed since it was parked; at most max are held. */
int gw_park_start(struct MHD_Daemon *d, unsigned max, long long idle_ms);
/* Closes every parked socket; gw_park_put refuses from now on. */
void gw_park_stop(void);
/* Takes fd (a duplicate of a connection's socket that libmicrohttpd is
 * about to close): 0 when parked, -1 when refused (fd is closed then). */
int gw_park_put(int fd);
/* Sockets parked now. */
unsigned gw_park_count(void);

#endif
