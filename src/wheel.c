/* wheel.c — the one-second timing wheel. */
#include "wheel.h"

#include <stddef.h>

static void link_after(struct pav_wheel_node *head, struct pav_wheel_node *n)
{
	n->prev = head;
	n->next = head->next;
	head->next->prev = n;
	head->next = n;
}

void pav_wheel_init(struct pav_wheel *w, int64_t now_s)
{
	for (int i = 0; i < PAV_WHEEL_SLOTS; i++)
		w->slots[i].prev = w->slots[i].next = &w->slots[i];
	w->now_s = now_s;
}

void pav_wheel_del(struct pav_wheel_node *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

void pav_wheel_add(struct pav_wheel *w, struct pav_wheel_node *n,
		   int64_t due_s)
{
	pav_wheel_del(n);
	if (due_s <= w->now_s)
		due_s = w->now_s + 1;
	n->due_s = due_s;
	link_after(&w->slots[due_s % PAV_WHEEL_SLOTS], n);
}

/* One slot: detach its list first, so fn may add to any slot (this one
 * included) while we walk. */
static int run_slot(struct pav_wheel *w, int64_t s,
		    void (*fn)(struct pav_wheel_node *, void *), void *arg)
{
	struct pav_wheel_node *head = &w->slots[s % PAV_WHEEL_SLOTS];
	struct pav_wheel_node list;
	int ran = 0;

	if (head->next == head)
		return 0;
	list.next = head->next;
	list.prev = head->prev;
	list.next->prev = list.prev->next = &list;
	head->next = head->prev = head;
	while (list.next != &list) {
		struct pav_wheel_node *n = list.next;

		pav_wheel_del(n);
		if (n->due_s > s) { /* a later lap */
			link_after(head, n);
			continue;
		}
		fn(n, arg);
		ran++;
	}
	return ran;
}

int pav_wheel_advance(struct pav_wheel *w, int64_t now_s,
		      void (*fn)(struct pav_wheel_node *n, void *arg),
		      void *arg)
{
	int64_t from = w->now_s + 1;
	int ran = 0;

	/* after a long stall every slot is visited once, not once per
	 * missed second */
	if (now_s - from >= PAV_WHEEL_SLOTS)
		from = now_s - PAV_WHEEL_SLOTS + 1;
	for (int64_t s = from; s <= now_s; s++) {
		w->now_s = s;
		ran += run_slot(w, s, fn, arg);
	}
	if (now_s > w->now_s)
		w->now_s = now_s;
	return ran;
}
