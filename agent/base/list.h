/*
 * list.h
 *    Intrusive doubly-linked lists (as in PgBouncer and the Linux kernel).
 *
 * Contract: an HdList is both a list head and a node. A node is on at most
 * one list at a time per HdList member; hd_list_del() makes it an empty,
 * self-linked node again, so deleting twice is harmless.
 */
#ifndef HD_LIST_H
#define HD_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct HdList
{
	struct HdList *next;
	struct HdList *prev;
} HdList;

static inline void
hd_list_init(HdList *list)
{
	list->next = list->prev = list;
}

static inline bool
hd_list_empty(const HdList *list)
{
	return list->next == list;
}

static inline void
hd_list_append(HdList *list, HdList *node)
{
	node->prev = list->prev;
	node->next = list;
	list->prev->next = node;
	list->prev = node;
}

/* Insert at the head (hd_list_first() returns it next). */
static inline void
hd_list_prepend(HdList *list, HdList *node)
{
	hd_list_append(list->next, node);
}

static inline void
hd_list_del(HdList *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	hd_list_init(node);
}

static inline HdList *
hd_list_first(const HdList *list)
{
	return hd_list_empty(list) ? NULL : list->next;
}

#define hd_container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

/* Iterate safely against deletion of the current node. */
#define hd_list_foreach_safe(item, tmp, list) \
	for ((item) = (list)->next, (tmp) = (item)->next; (item) != (list); (item) = (tmp), (tmp) = (item)->next)

#endif							/* HD_LIST_H */
