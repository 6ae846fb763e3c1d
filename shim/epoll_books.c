/* epoll_books.c: owns the record of the application's epoll registrations,
 * per descriptor number, kept by the epoll_ctl wrapper, so that a socket
 * handed to the background reaper can first be taken out of every set the
 * application put it in. Fixed slots and atomics only: the removal runs
 * inside close(). */
#include "rawsys.h"
#include "epoll_books.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdspace.h"

#define EPB_SLOTS EPB_SETS_MAX

struct epb_entry {
	int32_t epfd_plus1[EPB_SLOTS]; /* 0 = empty */
	int32_t overflow;              /* more sets than slots were added */
};

static struct fdspace_table table;

static struct epb_entry *entry_of(int fd, bool create)
{
	if (create && !fdspace_table_mapped(&table) &&
	    !fdspace_table_map(&table, fdspace_size(), sizeof(struct epb_entry)))
		return NULL;
	return fd < 0 ? NULL : fdspace_entry(&table, (uint32_t)fd);
}

void epb_added(int epfd, int fd)
{
	struct epb_entry *e = entry_of(fd, true);

	if (!e)
		return;
	for (int i = 0; i < EPB_SLOTS; i++) {
		int32_t empty = 0;
		if (__atomic_load_n(&e->epfd_plus1[i], __ATOMIC_ACQUIRE) == epfd + 1)
			return;
		if (__atomic_compare_exchange_n(&e->epfd_plus1[i], &empty, epfd + 1, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return;
	}
	__atomic_store_n(&e->overflow, 1, __ATOMIC_RELEASE);
}

void epb_deleted(int epfd, int fd)
{
	struct epb_entry *e = entry_of(fd, false);

	for (int i = 0; e && i < EPB_SLOTS; i++) {
		int32_t mine = epfd + 1;
		__atomic_compare_exchange_n(&e->epfd_plus1[i], &mine, 0, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

bool epb_registered(int fd)
{
	struct epb_entry *e = entry_of(fd, false);

	if (!e)
		return false;
	for (int i = 0; i < EPB_SLOTS; i++)
		if (__atomic_load_n(&e->epfd_plus1[i], __ATOMIC_ACQUIRE))
			return true;
	return __atomic_load_n(&e->overflow, __ATOMIC_ACQUIRE) != 0;
}

void epb_forget(int fd)
{
	struct epb_entry *e = entry_of(fd, false);

	if (!e)
		return;
	for (int i = 0; i < EPB_SLOTS; i++)
		__atomic_store_n(&e->epfd_plus1[i], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&e->overflow, 0, __ATOMIC_RELEASE);
}

static bool remove_everywhere(int fd)
{
	struct epb_entry *e = entry_of(fd, false);
	int saved_errno = errno;

	if (!e)
		return true; /* nothing was ever added anywhere */
	if (__atomic_load_n(&e->overflow, __ATOMIC_ACQUIRE))
		return false;
	for (int i = 0; i < EPB_SLOTS; i++) {
		int32_t epfd = __atomic_exchange_n(&e->epfd_plus1[i], 0, __ATOMIC_ACQ_REL) - 1;
		struct epoll_event unused = { 0 };
		if (epfd >= 0)
			raw_syscall(SYS_epoll_ctl, epfd, EPOLL_CTL_DEL, fd, &unused);
	}
	errno = saved_errno;
	return true;
}

bool epb_let_go(int fd, bool keep_alive)
{
	bool removed = !keep_alive || remove_everywhere(fd);

	epb_forget(fd);
	return removed;
}

int epb_sets_of(int fd, int sets[EPB_SETS_MAX])
{
	struct epb_entry *e = entry_of(fd, false);
	int n = 0;

	for (int i = 0; e && i < EPB_SLOTS; i++) {
		int32_t epfd = __atomic_load_n(&e->epfd_plus1[i], __ATOMIC_ACQUIRE) - 1;
		if (epfd >= 0)
			sets[n++] = epfd;
	}
	return n;
}
