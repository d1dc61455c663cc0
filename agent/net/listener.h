/*
 * listener.h
 *    Listening sockets: opening them (TCP, and Unix-domain as PostgreSQL
 *    names them) and accepting in the loop without spinning when the
 *    process runs out of file descriptors.
 *
 * Contract:
 *   - hd_listener_open_tcp() listens on addr:port ("*": every address);
 *     hd_listener_open_unix() on DIR/.s.PGSQL.PORT with mode 0777 (as
 *     PostgreSQL's default unix_socket_permissions). Both return 0, or -1
 *     with a message in err that names the address and the way out
 *     (`setting` names the settings to change).
 *   - A Unix-domain socket file already there is removed only if it is a
 *     socket nothing answers on (left by a process that died); one that
 *     answers (another agent, or a PostgreSQL on that port) or a file of
 *     another kind is an error, and is left alone. hd_listener_close()
 *     removes the file if it is still the one this listener created.
 *   - A started listener hands each accepted connection (close-on-exec) to
 *     its callback, which owns the descriptor from then on. At most
 *     HD_ACCEPT_BATCH are taken per event, so that a flood of connections
 *     cannot starve the clients already in.
 *   - When accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
 *     ENOMEM) or for any other reason that is not about one connection, the
 *     listener stops watching the socket and tries again after
 *     HD_ACCEPT_PAUSE seconds, or at once after hd_listener_wake() (call it
 *     when a descriptor was freed); connections wait in the kernel's backlog
 *     meanwhile. It logs the first failure, then at most one line a minute
 *     while failures go on, and one line when it has caught up (the backlog
 *     is empty): running out of descriptors costs neither CPU nor log volume.
 *   - No global state; the caller owns the HdListener.
 */
#ifndef HD_LISTENER_H
#define HD_LISTENER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "base/log.h"

#define HD_ACCEPT_BATCH 256
#define HD_ACCEPT_PAUSE 1.0		/* seconds */

/* A new connection: fd (owned by the callee) and the peer's address. */
typedef void (*HdAcceptFn) (void *arg, int fd, const struct sockaddr_storage *addr);

typedef struct HdListener
{
	int			fd;				/* -1: not open */
	struct ev_loop *loop;		/* NULL: not started */
	ev_io		io;
	ev_timer	pause;			/* accepting again after a failure */
	const char *what;			/* for the log: "clients", "metrics" */
	HdAcceptFn	on_accept;
	void	   *arg;
	bool		paused;
	bool		starved;		/* accept() failed since the backlog was last empty */
	uint64_t	failures;		/* failed accept() calls while starved */
	HdLogLimit	starved_log;	/* lines about them */
	/* a Unix-domain socket's file ("" for TCP), and its identity: only ours is removed */
	char		path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
	dev_t		dev;
	ino_t		ino;
} HdListener;

extern void hd_listener_init(HdListener *l);
extern int	hd_listener_open_tcp(HdListener *l, const char *addr, int port, const char *setting,
								 char *err, size_t errlen);
extern int	hd_listener_open_unix(HdListener *l, const char *dir, int port, char *err,
								  size_t errlen);
extern void hd_listener_start(HdListener *l, struct ev_loop *loop, const char *what,
							  HdAcceptFn on_accept, void *arg);
extern void hd_listener_wake(HdListener *l);
extern void hd_listener_close(HdListener *l);

#endif							/* HD_LISTENER_H */
