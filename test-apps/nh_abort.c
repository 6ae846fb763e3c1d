/* nh_abort.c: one side of a connection gives up on a transfer by closing in
 * the middle of it, with input unread; the kernel resets the connection,
 * which is how the other side learns to stop. Prints whether the sender's
 * writes failed with a reset, and whether at once.
 *
 *   nh_abort client   a client closes in the middle of a download (a proxy
 *                     dropping an upstream, a user pressing stop)
 *   nh_abort upload   a server stops an upload after the first kilobyte,
 *                     without a word of reply (CPython's asyncio test
 *                     sendfile_close_peer_in_the_middle_of_receiving) */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>

#include "tcp_pair.h"

struct role {
	const char *name, *closer_read, *sender;
	size_t read_size;
	bool client_closes;
};

static const struct role roles[] = {
	{ "client", "client read the start of the download", "sender", 1000, true },
	{ "upload", "server read the first kilobyte", "uploader", 1024, false },
};

static int sender_errno;
static int64_t stopped_at;

/* Sends until a write fails, for 5 s at most. */
static void *sender(void *arg)
{
	int fd = *(int *)arg;
	static char chunk[65536];
	int64_t until = pair_now_ms() + 5000;
	struct timeval most = { 2, 0 }; /* a write that blocks ends too */

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &most, sizeof most);
	while (pair_now_ms() < until) {
		if (write(fd, chunk, sizeof chunk) < 0) {
			sender_errno = errno;
			break;
		}
	}
	stopped_at = pair_now_ms();
	return NULL;
}

int main(int argc, char **argv)
{
	const struct role *r = NULL;
	struct sockaddr_in a;
	char buf[1024];
	pthread_t t;

	for (unsigned i = 0; argc == 2 && i < sizeof roles / sizeof *roles; i++)
		if (strcmp(argv[1], roles[i].name) == 0)
			r = &roles[i];
	if (!r) {
		fprintf(stderr, "usage: nh_abort client|upload\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int l = pair_listener(&a);
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&a, sizeof a) < 0)
		return 1;
	int conn = accept(l, NULL, NULL);
	int closer = r->client_closes ? client : conn;
	int sending = r->client_closes ? conn : client;
	pthread_create(&t, NULL, sender, &sending);

	ssize_t got = recv(closer, buf, r->read_size, MSG_WAITALL);
	printf("%s: %s\n", r->closer_read, got == (ssize_t)r->read_size ? "yes" : "no");
	int64_t closed_at = pair_now_ms();
	printf("%s close: %d\n", r->client_closes ? "client" : "server", close(closer));
	pthread_join(t, NULL);
	printf("%s stopped by a reset: %s\n", r->sender,
	       sender_errno == ECONNRESET || sender_errno == EPIPE ? "yes" : "no");
	printf("%s learned it: %s\n", r->sender,
	       stopped_at - closed_at < 2000 ? "at once" : "late or never");
	return 0;
}
