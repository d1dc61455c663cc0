/*
 * version.h
 *    The agent's version, for SHOW VERSION and hyperdrive_build_info.
 *    main.c prints the same number for --version (keep them equal).
 */
#ifndef HD_VERSION_H
#define HD_VERSION_H

#ifndef HYPERDRIVE_VERSION
#define HYPERDRIVE_VERSION "0.1.0"
#endif

#endif							/* HD_VERSION_H */
