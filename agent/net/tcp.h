/*
 * tcp.h
 *    Sockets, whatever protocol runs over them: the options every client
 *    and origin socket gets, and a non-blocking connect to a config's origin.
 *
 * Contract:
 *   - hd_socket_prepare(fd): non-blocking, TCP_NODELAY (small replies must
 *     not wait for a timer) and SO_KEEPALIVE (the last two best effort, and
 *     harmless on a Unix-domain socket); 0, or -1 with errno.
 *   - hd_origin_connect(config, ...): resolves the config's host and port
 *     and starts a non-blocking connect to the first address that takes it;
 *     the descriptor (connecting: wait for it to be writable, then read
 *     SO_ERROR), or -1 with a message naming the host in err.
 */
#ifndef HD_TCP_H
#define HD_TCP_H

#include <stddef.h>

#include "config/configs.h"

extern int	hd_socket_prepare(int fd);
extern int	hd_origin_connect(const HdConfig *config, char *err, size_t errlen);

#endif							/* HD_TCP_H */
