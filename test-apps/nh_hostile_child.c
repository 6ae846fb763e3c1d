/* nh_hostile_child.c: a root server forks, per connection, a child that
 * drops to nobody and then writes garbage over every shared writable memfd
 * mapping it has (a compromised privilege-separated worker). The parent
 * keeps serving: each round's connection (which the child closed before
 * dropping) and one the child kept while it dropped, then a socket made
 * after the child is gone. Everything the parent sees must be as before.
 * Needs root to change user; otherwise it says so and does the rest. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/wait.h>

#include "tcp_pair.h"
#include "scribble.h"

#define ROUNDS 3

/* Reads the request, answers, closes; prints what the client got. */
static void serve(const char *what, int s, int client)
{
	char buf[16];

	printf("%s: server read %zd", what, read(s, buf, sizeof buf));
	printf(", wrote %zd", write(s, "REPLY\n", 6));
	printf(", close %d", close(s));
	printf(", client got: %s\n", pair_received(client, 2000, buf, sizeof buf));
	close(client);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int round = 0; round < ROUNDS; round++) {
		int client, kept_client, status;
		int s = tcp_pair(&client), kept = tcp_pair(&kept_client);

		pid_t pid = fork();
		if (pid == 0) {
			close(s);
			if (drop_to_nobody() < 0) {
				printf("cannot change user: %s\n", strerrorname_np(errno));
				_exit(0);
			}
			scribble_shared_memfds();
			_exit(0);
		}
		waitpid(pid, &status, 0);
		printf("round %d: child as nobody: status %d\n", round,
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		serve("its connection", s, client);
		serve("one it kept", kept, kept_client);
		int fresh = socket(AF_INET, SOCK_STREAM, 0);
		printf("a new socket: %s, close %d\n", fresh >= 0 ? "made" : "failed", close(fresh));
	}
	return 0;
}
