/* nh_client_abort.c: a client that gives up on a download by closing its
 * connection in the middle (a proxy dropping an upstream, a user pressing
 * stop). The kernel resets the connection, which is how the sender learns to
 * stop: prints whether the sender's writes failed with a reset, and whether
 * that happened at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int sender_errno;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sends until a write fails, for 5 s at most. */
static void *sender(void *arg)
{
	int fd = *(int *)arg;
	static char chunk[65536];
	double until = now_s() + 5;
	struct timeval most = { 2, 0 }; /* a write that blocks ends too */

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &most, sizeof most);

	while (now_s() < until) {
		if (write(fd, chunk, sizeof chunk) < 0) {
			sender_errno = errno;
			return NULL;
		}
	}
	return NULL;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	char buf[1000];
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		return 1;
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&a, sizeof a) < 0)
		return 1;
	int conn = accept(l, NULL, NULL);
	pthread_create(&t, NULL, sender, &conn);

	ssize_t got = recv(client, buf, sizeof buf, MSG_WAITALL);
	printf("client read the start of the download: %s\n", got == sizeof buf ? "yes" : "no");
	double closed_at = now_s();
	printf("client close: %d\n", close(client));
	pthread_join(t, NULL);
	double took = now_s() - closed_at;
	printf("sender stopped by a reset: %s\n",
	       sender_errno == ECONNRESET || sender_errno == EPIPE ? "yes" : "no");
	printf("sender learned it: %s\n", took < 2 ? "at once" : "late or never");
	return 0;
}
