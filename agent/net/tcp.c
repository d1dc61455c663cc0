/*
 * tcp.c
 *    TCP sockets towards an origin, and the options every socket of the
 *    agent gets (tcp.h).
 */
#include "net/tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Non-blocking, no Nagle delay (small replies must not wait for a timer). */
int
hd_socket_prepare(int fd)
{
	int			on = 1;
	int			flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	return 0;
}

/* Start a non-blocking TCP connection to the origin; -1 with errno on failure. */
int
hd_origin_connect(const HdConfig *config, char *err, size_t errlen)
{
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	char		port[16];
	int			rc;
	int			fd = -1;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	snprintf(port, sizeof(port), "%d", config->port);
	rc = getaddrinfo(config->host, port, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "could not translate host name \"%s\" to address: %s",
				 config->host, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (hd_socket_prepare(fd) == 0 &&
			(connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS))
			break;
		snprintf(err, errlen, "could not connect to origin %s:%d: %s", config->host,
				 config->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}
