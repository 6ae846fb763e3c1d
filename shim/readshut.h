/* readshut.h: the program's view of a socket whose read side it shut.
 *
 * A read side shut for real on a connection that is to linger makes Linux
 * reset what the peer still sends, so shutdown(SHUT_RD / SHUT_RDWR) on a
 * socket on the books shuts only the write half now (for SHUT_RDWR) and
 * marks the socket; the program's reads then see what the kernel would show
 * them (what is queued, then end-of-file, never blocking), and the real
 * SHUT_RD, which wakes a thread blocked reading, follows once our output is
 * acknowledged and only when such a thread waits (waiters.h), and only
 * while the program still holds the socket: once it lets go, nothing it
 * asked for earlier is carried out. */
#ifndef SAFECLOSE_READSHUT_H
#define SAFECLOSE_READSHUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* shutdown(fd, how) for a TCP socket on the books under `booked`; returns
 * what shutdown() returns, with the real error for anything the kernel
 * refuses. One probe_socket. */
int readshut_shutdown(int fd, uint64_t booked, int how);

/* The read entry points. Each returns false when fd is not a read-shut
 * socket (the caller then makes the real call); otherwise it has made the
 * read, never blocking, and *result (and errno) is what the program gets. */
bool readshut_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
		       socklen_t *addrlen, ssize_t *result);
bool readshut_readv(int fd, const struct iovec *iov, int iovcnt, ssize_t *result);
bool readshut_recvmsg(int fd, struct msghdr *msg, int flags, ssize_t *result);
bool readshut_recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags, int *result);

/* The release path, once the books said (own_release) that the program had
 * shut the socket's read side and this process holds no other descriptor
 * of it: a real SHUT_RD still waiting is cancelled (atomically against the
 * thread that would carry it out). Async-signal-safe. */
void readshut_let_go(uint64_t cookie);

/* The background thread, every LINGER_TICK_MS while readshut_waiting():
 * carries out the real SHUT_RDs whose output is acknowledged, a tick at the
 * earliest after the shutdown (the program's close usually comes first). Called under
 * the thread's lock, which dup2() onto one of the shim's numbers takes too. */
void readshut_step(uint64_t now_ms);
bool readshut_waiting(void);

/* dup2/dup3 is about to put a file of the program's at fd: when a real
 * SHUT_RD waits under that number, its descriptor moves elsewhere. */
void readshut_yield_number(int fd);

/* fork(): the child carries out nothing of the parent's (the descriptors
 * went with the shim's others; see reaper.c). */
void readshut_init(void);

#endif
