/*
 * hyperdrive.c
 *    Module entry of the hyperdrive extension.
 *
 * The shared library is loaded in two ways: by CREATE EXTENSION / function
 * calls (the event-trigger functions of ddl_capture.c), and by logical
 * decoding when a slot uses the output plugin "hyperdrive" (decoder.c). It
 * needs no shared_preload_libraries entry and installs no hooks.
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;
