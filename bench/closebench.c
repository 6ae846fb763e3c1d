/* closebench.c: how long close() takes, and what memory a lingering socket
 * costs, measured from inside an ordinary program. It knows nothing of any
 * preload: run it with and without one and compare (bench/run does).
 *
 *   closebench idle N      close() of N idle connections (the ordinary path:
 *                          nothing unread, nothing unacknowledged)
 *   closebench pending N   close() of N connections with a reply written
 *                          and unread input, whose peers keep them open:
 *                          under a lingering-close preload all N linger at
 *                          once
 *   closebench prompt N    close() of N connections with a reply written and
 *                          unread input, whose peer closes as soon as it
 *                          sees our FIN
 *   closebench scale N     N connections opened and closed one after another
 *                          with a reply written and unread input, the peer
 *                          keeping the last WINDOW of them open (so what
 *                          lingers stays until something ends it: a cap, a
 *                          timeout)
 *
 * Prints one JSON line: close() latency median, p99 and max in microseconds,
 * the growth of the process's resident memory (kB) and of its malloc'd
 * bytes (all arenas, mallinfo2) across the closes, and how many descriptors
 * the process holds beyond its own afterwards (/proc/self/fd: what something
 * else in the process keeps open), and the median time accept() and
 * socket() take. scale prints, instead, at 10 %, 50 % and
 * 100 % of the run: RSS (and its shared-memory part), descriptors beyond its own, and the close()
 * latency of the last 5 % of closes before that point; and the most
 * descriptors beyond its own seen at any batch.
 * Peers run in a child process, so the parent's memory is only its own. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* One "Name: N kB" line of /proc/self/status. */
static long status_kb(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	size_t len = strlen(name);

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, name, len) && sscanf(line + len, ": %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static long rss_kb(void)
{
	return status_kb("VmRSS");
}

/* Bytes handed out by malloc, in every arena and in mmap'd blocks. */
static size_t malloc_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* Open descriptors of this process (the directory's own one left out). */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1;

	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Room for n connections, their copies and a quarter to spare: as root
 * the hard limit can be raised, otherwise take what it allows. */
static void raise_fd_limit(int n)
{
	struct rlimit rl, want = { (rlim_t)n * 6 + 1024, (rlim_t)n * 6 + 1024 };

	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The peers: connect n times, send one request on each, then either keep
 * every connection open until told to stop, or close each one when its
 * server side's FIN arrives ("prompt"). */
static void peers(struct sockaddr_in addr, int n, int prompt, int go_fd)
{
	int *fds = calloc(n, sizeof *fds);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i], (struct sockaddr *)&addr, sizeof addr) < 0)
			_exit(2);
		if (write(fds[i], "GET 1\n", 6) != 6)
			_exit(3);
	}
	char c;
	if (!prompt) {
		if (read(go_fd, &c, 1) < 0) /* the parent is done measuring */
			_exit(4);
		_exit(0);
	}
	for (int left = n; left;) {
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			struct pollfd p = { .fd = fds[i], .events = POLLIN };
			if (poll(&p, 1, 0) == 1 && read(fds[i], &c, 1) <= 0) {
				close(fds[i]);
				fds[i] = -1;
				left--;
			}
		}
	}
	_exit(0);
}

/* The median time socket() takes, over a thousand TCP sockets made in a row
 * (and closed afterwards, untimed). */
static double socket_us(void)
{
	enum { SOCKETS = 1000 };
	static int fds[SOCKETS];
	static double lat[SOCKETS];

	for (int i = 0; i < SOCKETS; i++) {
		double t0 = now_us();
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		lat[i] = now_us() - t0;
	}
	for (int i = 0; i < SOCKETS; i++)
		close(fds[i]);
	qsort(lat, SOCKETS, sizeof *lat, cmp_double);
	return lat[SOCKETS / 2];
}

/* scale: connections come in batches, one batch more each time the parent
 * has closed the last one (a byte on go_fd), so the listen queue never
 * overflows into SYN retries; the oldest batch is closed once more than
 * WINDOW are open. */
#define BATCH 100
#define WINDOW 10000

static void scale_peer(struct sockaddr_in addr, int n, int go_fd)
{
	int *fds = calloc(WINDOW + BATCH, sizeof *fds), open_n = 0;
	char c;

	for (int done = 0; done < n; done += BATCH) {
		if (open_n + BATCH > WINDOW) { /* the oldest batch first */
			for (int i = 0; i < BATCH; i++)
				close(fds[i]);
			memmove(fds, fds + BATCH, (open_n - BATCH) * sizeof *fds);
			open_n -= BATCH;
		}
		for (int i = 0; i < BATCH; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0 ||
			    write(s, "GET 1\n", 6) != 6)
				_exit(2);
			fds[open_n++] = s;
		}
		if (read(go_fd, &c, 1) != 1)
			_exit(0);
	}
	_exit(0);
}

struct mark {
	int at;
	long rss_kb, shmem_kb;
	int fds;
	double median_us, p99_us;
};

static void mark_take(struct mark *m, int at, const double *lat, int extra_fds)
{
	int from = at - at / 20 > 0 ? at - at / 20 : 0, k = at - from;
	double *w = malloc((k ? k : 1) * sizeof *w);

	memcpy(w, lat + from, k * sizeof *w);
	qsort(w, k, sizeof *w, cmp_double);
	*m = (struct mark){ at, rss_kb(), status_kb("RssShmem"), extra_fds, k ? w[k / 2] : 0, k ? w[(int)(k * 0.99)] : 0 };
	free(w);
}

static int scale(int l, int go, int n)
{
	double *lat = calloc(n, sizeof *lat);
	int base = fd_count(), most = 0, next = 0;
	int at[3] = { n / 10, n / 2, n };
	struct mark marks[3];

	for (int done = 0; done < n; done += BATCH) {
		int conns[BATCH];
		for (int i = 0; i < BATCH; i++) {
			conns[i] = accept(l, NULL, NULL);
			struct pollfd p = { .fd = conns[i], .events = POLLIN };
			if (conns[i] < 0 || write(conns[i], "OK\n", 3) != 3 || poll(&p, 1, 1000) != 1) {
				perror("accept");
				return 1;
			}
		}
		for (int i = 0; i < BATCH; i++) {
			double t0 = now_us();
			close(conns[i]);
			lat[done + i] = now_us() - t0;
		}
		int extra = fd_count() - base;
		most = extra > most ? extra : most;
		while (next < 3 && done + BATCH >= at[next])
			mark_take(&marks[next++], done + BATCH, lat, extra);
		if (done + BATCH < n && write(go, "x", 1) != 1)
			return 1;
	}
	printf("{\"case\": \"scale\", \"n\": %d, \"window\": %d, \"most_fds\": %d, \"marks\": [",
	       n, WINDOW, most);
	for (int i = 0; i < 3; i++)
		printf("%s{\"at\": %d, \"rss_kb\": %ld, \"shmem_kb\": %ld, \"fds\": %d, "
		       "\"median_us\": %.2f, \"p99_us\": %.2f}", i ? ", " : "", marks[i].at,
		       marks[i].rss_kb, marks[i].shmem_kb, marks[i].fds,
		       marks[i].median_us, marks[i].p99_us);
	printf("]}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "idle") && strcmp(argv[1], "pending") &&
			  strcmp(argv[1], "prompt") && strcmp(argv[1], "scale"))) {
		fprintf(stderr, "usage: closebench idle|pending|prompt|scale N\n");
		return 2;
	}
	int n = atoi(argv[2]), idle = !strcmp(argv[1], "idle"),
	    prompt = !strcmp(argv[1], "prompt"), scaling = !strcmp(argv[1], "scale");
	raise_fd_limit(scaling ? WINDOW + BATCH : n);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	int l = socket(AF_INET, SOCK_STREAM, 0), go[2];
	if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(l, 4096) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) < 0 || pipe(go) < 0) {
		perror("listen");
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		close(go[1]);
		if (scaling)
			scale_peer(addr, n, go[0]);
		peers(addr, n, prompt, go[0]);
	}
	close(go[0]);
	if (scaling) {
		int rc = scale(l, go[1], n);
		close(go[1]);
		waitpid(child, NULL, 0);
		return rc;
	}

	int *conns = calloc(n, sizeof *conns);
	double *lat = calloc(n, sizeof *lat), *lat_accept = calloc(n, sizeof *lat_accept);
	for (int i = 0; i < n; i++) {
		/* Timed once a connection waits, so the wait for the peer is left out. */
		struct pollfd ready = { .fd = l, .events = POLLIN };
		poll(&ready, 1, 5000);
		double t0 = now_us();
		conns[i] = accept(l, NULL, NULL);
		lat_accept[i] = now_us() - t0;
		if (conns[i] < 0) {
			perror("accept");
			return 1;
		}
		if (idle) {
			char buf[8]; /* read the request: nothing left unread */
			if (read(conns[i], buf, 6) != 6)
				return 1;
		} else if (write(conns[i], "OK\n", 3) != 3) { /* a reply a reset would cost */
			return 1;
		}
	}
	/* Let every request arrive, so each pending close really has input. */
	for (int i = 0; !idle && i < n; i++) {
		struct pollfd p = { .fd = conns[i], .events = POLLIN };
		poll(&p, 1, 1000);
	}
	long rss_before = rss_kb();
	size_t heap_before = malloc_bytes();
	int fds_before = fd_count();
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		close(conns[i]);
		lat[i] = now_us() - t0;
	}
	/* Let a background reaper, if any, take every socket over. */
	usleep(300000);
	long rss_after = rss_kb();
	size_t heap_after = malloc_bytes();
	int extra_fds = fd_count() - (fds_before - n);
	if (!prompt && write(go[1], "x", 1) != 1)
		return 1;
	waitpid(child, NULL, 0);

	qsort(lat, n, sizeof *lat, cmp_double);
	qsort(lat_accept, n, sizeof *lat_accept, cmp_double);
	printf("{\"case\": \"%s\", \"n\": %d, \"median_us\": %.2f, \"p99_us\": %.2f, "
	       "\"max_us\": %.2f, \"rss_growth_kb\": %ld, \"malloc_growth_bytes\": %ld, \"extra_fds\": %d, "
	       "\"accept_median_us\": %.2f, \"socket_median_us\": %.2f}\n",
	       argv[1], n, lat[n / 2], lat[(int)(n * 0.99)], lat[n - 1], rss_after - rss_before,
	       (long)heap_after - (long)heap_before, extra_fds, lat_accept[n / 2], socket_us());
	return 0;
}
