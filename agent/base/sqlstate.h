/*
 * sqlstate.h
 *    The SQLSTATEs the agent sends or recognizes, in one place.
 *
 * SQLSTATE is SQL's five-character error code (class + subclass); the
 * values and names below are PostgreSQL's (src/backend/utils/errcodes.txt),
 * which clients and drivers match on, so the agent uses the very code
 * PostgreSQL would send in the same situation. MySQL's error packets carry
 * a SQLSTATE too; a MySQL driver maps its own error numbers beside these.
 *
 * Contract: each macro is a string literal (usable where a const char * or
 * a literal is expected); the name is PostgreSQL's condition name in upper
 * case. Code never writes a five-character code as a literal; grep for the
 * name to find every place that sends it.
 */
#ifndef HD_SQLSTATE_H
#define HD_SQLSTATE_H

/* Class 08: connection exception */
#define HD_SQLSTATE_CONNECTION_FAILURE "08006"
#define HD_SQLSTATE_UNABLE_TO_CONNECT "08001"	/* sqlclient_unable_to_establish_sqlconnection */
#define HD_SQLSTATE_PROTOCOL_VIOLATION "08P01"
/* Class 0A: feature not supported */
#define HD_SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"
/* Class 22: data exception */
#define HD_SQLSTATE_INVALID_PARAMETER_VALUE "22023"
/* Class 28: invalid authorization specification */
#define HD_SQLSTATE_INVALID_AUTHORIZATION "28000"
#define HD_SQLSTATE_INVALID_PASSWORD "28P01"
/* Class 3D: invalid catalog name */
#define HD_SQLSTATE_INVALID_CATALOG_NAME "3D000"
/* Class 42: syntax error or access rule violation */
#define HD_SQLSTATE_INSUFFICIENT_PRIVILEGE "42501"
#define HD_SQLSTATE_SYNTAX_ERROR "42601"
#define HD_SQLSTATE_UNDEFINED_OBJECT "42704"
#define HD_SQLSTATE_DUPLICATE_OBJECT "42710"
/* Class 53: insufficient resources */
#define HD_SQLSTATE_OUT_OF_MEMORY "53200"
#define HD_SQLSTATE_TOO_MANY_CONNECTIONS "53300"
/* Class 54: program limit exceeded */
#define HD_SQLSTATE_PROGRAM_LIMIT_EXCEEDED "54000"
/* Class 57: operator intervention */
#define HD_SQLSTATE_QUERY_CANCELED "57014"
#define HD_SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define HD_SQLSTATE_CANNOT_CONNECT_NOW "57P03"
#define HD_SQLSTATE_IDLE_SESSION_TIMEOUT "57P05"
/* Class F0: configuration file error */
#define HD_SQLSTATE_CONFIG_FILE_ERROR "F0000"
/* Class XX: internal error */
#define HD_SQLSTATE_INTERNAL_ERROR "XX000"

#endif							/* HD_SQLSTATE_H */
