/*
 * session_state.c
 *    hyperdrive.session_state(): the session state a pooler must know of
 *    before it gives an origin connection to another client.
 *
 * The agent pools client sessions onto few origin connections. A session can
 * change its own state in ways no statement text shows: a function that
 * calls set_config(..., false), SET ROLE run by EXECUTE in a DO block, a
 * temporary object or a session advisory lock taken inside a function. The
 * agent asks for this after each client transaction on a pooled connection
 * and compares it with what it was before; a difference the agent did not
 * cause keeps that connection with that client (docs/agent.md, "Session
 * state").
 *
 * The answer is a sequence of entries "name=length:value;" (the length of
 * the value in bytes, so that any value reads back unambiguously):
 *   @user      the current (outer) user's and the session user's OIDs
 *   @temp      the OID of the session's temporary schema, 0 if it has none
 *   @advisory  1 if the session holds an advisory lock (after a transaction
 *              only session-level ones remain), else 0
 *   then, in name order, every setting whose value the session itself set
 *   (SET, or set_config(..., false): source "session"), with that value;
 *   but not transaction_isolation, transaction_read_only and
 *   transaction_deferrable, which every transaction sets afresh (BEGIN
 *   ISOLATION LEVEL, and SET TRANSACTION outside a block, leave them marked
 *   as the session's).
 *
 * Invariants: no catalog access and no snapshot (it runs outside any
 * statement of the client's); the lock manager's partition locks are held
 * only to read the session's own lock list. Cheap enough for every
 * transaction: a loop over the setting variables in memory.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "hyperdrive.h"

PG_FUNCTION_INFO_V1(hyperdrive_session_state);

static void
append_entry(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, "%s=%zu:%s;", name, strlen(value), value);
}

/* Whether the session holds any advisory lock (its own PROCLOCK lists). */
static bool
holds_advisory_lock(void)
{
	for (int i = 0; i < NUM_LOCK_PARTITIONS; i++)
	{
		SHM_QUEUE  *procLocks = &MyProc->myProcLocks[i];
		PROCLOCK   *proclock;
		bool		found = false;

		LWLockAcquire(LockHashPartitionLockByIndex(i), LW_SHARED);
		proclock = (PROCLOCK *) SHMQueueNext(procLocks, procLocks,
											 offsetof(PROCLOCK, procLink));
		while (proclock && !found)
		{
			found = proclock->holdMask != 0 &&
				proclock->tag.myLock->tag.locktag_type == LOCKTAG_ADVISORY;
			proclock = (PROCLOCK *) SHMQueueNext(procLocks, &proclock->procLink,
												 offsetof(PROCLOCK, procLink));
		}
		LWLockRelease(LockHashPartitionLockByIndex(i));
		if (found)
			return true;
	}
	return false;
}

Datum
hyperdrive_session_state(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	struct config_generic **vars = get_guc_variables();
	int			nvars = GetNumConfigOptions();
	Oid			temp_namespace;
	Oid			temp_toast_namespace;
	char		number[64];

	initStringInfo(&buf);
	snprintf(number, sizeof(number), "%u/%u", GetOuterUserId(), GetSessionUserId());
	append_entry(&buf, "@user", number);
	GetTempNamespaceState(&temp_namespace, &temp_toast_namespace);
	snprintf(number, sizeof(number), "%u", temp_namespace);
	append_entry(&buf, "@temp", number);
	append_entry(&buf, "@advisory", holds_advisory_lock() ? "1" : "0");

	/* guc_variables is kept sorted by name */
	for (int i = 0; i < nvars; i++)
	{
		struct config_generic *conf = vars[i];
		const char *value;

		if (conf->source != PGC_S_SESSION || strncmp(conf->name, "transaction_", 12) == 0)
			continue;
		/* the session's own setting: no privilege check on reading it back */
		value = GetConfigOption(conf->name, true, false);
		append_entry(&buf, conf->name, value ? value : "");
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
