/* split.c: owns the A/B split: a stable hash of a connection's address
 * 4-tuple, and the arm it picks. Stable means computed from nothing but the
 * addresses (no seed, no pid), so a prefork family, a fork child and an
 * exec'd program all put a connection in the same arm, and a test (or an
 * operator's script) can compute it from the client's side. */
#include "split.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "rawsys.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* Address bytes, then the port in network order. */
static uint64_t hash_endpoint(uint64_t h, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		h = fnv(h, &in->sin_addr, 4);
		return fnv(h, &in->sin_port, 2);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		bool mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
		h = fnv(h, mapped ? &in6->sin6_addr.s6_addr[12] : in6->sin6_addr.s6_addr,
			mapped ? 4 : 16);
		return fnv(h, &in6->sin6_port, 2);
	}
	return h;
}

/* FNV's low digits follow the last bytes too closely (neighbouring ports):
 * a finalizer (splitmix64's) spreads every bit over the whole word. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t split_hash(const struct sockaddr *local, const struct sockaddr *peer)
{
	return mix(hash_endpoint(hash_endpoint(FNV_OFFSET, local), peer));
}

enum sc_arm split_arm_of(uint64_t hash, long percent)
{
	return (long)(hash % 100) < percent ? SC_ARM_LINGER : SC_ARM_CONTROL;
}

enum sc_arm split_arm(int fd, long percent)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof local, plen = sizeof peer;
	int saved_errno = errno;
	bool known;

	if (percent >= 100)
		return SC_ARM_LINGER;
	if (percent <= 0)
		return SC_ARM_CONTROL;
	known = raw_syscall(SYS_getsockname, fd, &local, &llen) == 0 &&
		raw_syscall(SYS_getpeername, fd, &peer, &plen) == 0;
	errno = saved_errno;
	if (!known)
		return SC_ARM_CONTROL;
	return split_arm_of(split_hash((struct sockaddr *)&local, (struct sockaddr *)&peer),
			    percent);
}
