/* nh_upload_abort.c: a server that stops an upload by closing the connection
 * after the first kilobyte, without a word of reply (CPython's asyncio test
 * sendfile_close_peer_in_the_middle_of_receiving does this). The kernel
 * resets the connection, which is how the uploader learns to stop: prints
 * whether its writes failed with a reset, and whether at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int uploader_errno;
static double stopped_at;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Uploads until a write fails, for 5 s at most. */
static void *uploader(void *arg)
{
	int fd = *(int *)arg;
	static char chunk[65536];
	double until = now_s() + 5;
	struct timeval most = { 2, 0 }; /* a write that blocks ends too */

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &most, sizeof most);

	while (now_s() < until) {
		if (write(fd, chunk, sizeof chunk) < 0) {
			uploader_errno = errno;
			break;
		}
	}
	stopped_at = now_s();
	return NULL;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	char buf[1024];
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		return 1;
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&a, sizeof a) < 0)
		return 1;
	int conn = accept(l, NULL, NULL);
	pthread_create(&t, NULL, uploader, &client);

	ssize_t got = recv(conn, buf, sizeof buf, MSG_WAITALL);
	printf("server read the first kilobyte: %s\n", got == sizeof buf ? "yes" : "no");
	double closed_at = now_s();
	printf("server close: %d\n", close(conn));
	pthread_join(t, NULL);
	printf("uploader stopped by a reset: %s\n",
	       uploader_errno == ECONNRESET || uploader_errno == EPIPE ? "yes" : "no");
	printf("uploader learned it: %s\n", stopped_at - closed_at < 2 ? "at once" : "late or never");
	return 0;
}
