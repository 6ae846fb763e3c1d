/* nh_unshare.c: unshare(CLONE_NEWUSER), and setns() into a mount
 * namespace, need a caller alone in its process (a container runtime's or a
 * sandbox's first steps). A program that served and closed a connection
 * with unread input (one a lingering close acts on) and opened another
 * socket calls them: prints each result, then whether a connection made
 * afterwards still serves. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "tcp_pair.h"

static void report(const char *what, int r)
{
	printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void)
{
	int client;
	char buf[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	int first_client, s = tcp_pair(&first_client);
	close(s);
	int other = socket(AF_INET, SOCK_STREAM, 0);

	int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	errno = 0;
	report("setns(own mount namespace)", setns(mnt, CLONE_NEWNS));
	report("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
	report("unshare(CLONE_NEWUSER | CLONE_NEWNS) again", unshare(CLONE_NEWUSER | CLONE_NEWNS));

	s = tcp_pair(&client);
	if (read(s, buf, 8) != 8)
		return 1;
	report("write(reply) afterwards", (int)write(s, "REPLY\n", 6));
	close(s);
	printf("peer received: %s\n", pair_received(client, 1000, buf, sizeof buf));
	close(client);
	close(other);
	/* The first connection's peer reads up to its end (or reset) only now. */
	pair_received(first_client, 1000, buf, sizeof buf);
	close(first_client);
	return 0;
}
