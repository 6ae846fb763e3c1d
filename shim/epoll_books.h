/* epoll_books.h: which of the application's epoll sets each descriptor is in. */
#ifndef SAFECLOSE_EPOLL_BOOKS_H
#define SAFECLOSE_EPOLL_BOOKS_H

#include <stdbool.h>

/* After a successful epoll_ctl(epfd, EPOLL_CTL_ADD / EPOLL_CTL_DEL, fd). */
void epb_added(int epfd, int fd);
void epb_deleted(int epfd, int fd);

/* fd is in at least one of the application's epoll sets (or in more than
 * the books can list). No syscall. */
bool epb_registered(int fd);

/* fd is closed (or replaced): whatever it was registered in went with it. */
void epb_forget(int fd);

/* The release path, fd let go of: as epb_forget; and when the shim is to
 * keep fd's open file alive under another descriptor (keep_alive), first
 * out of every set it was added to (EPOLL_CTL_DEL; stale entries only give
 * ENOENT), since a registration belongs to the open file and would keep
 * reporting events under fd's number. False when keep_alive and the books
 * cannot be sure they list every set (too many for one descriptor): the
 * caller must then not keep the file alive. errno is preserved. */
bool epb_let_go(int fd, bool keep_alive);

/* The sets fd was added to, as the books list them: at most EPB_SETS_MAX
 * numbers into sets[]; returns their count (no syscall). */
#define EPB_SETS_MAX 3
int epb_sets_of(int fd, int sets[EPB_SETS_MAX]);

#endif
