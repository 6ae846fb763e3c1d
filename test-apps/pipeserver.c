/*
 * pipeserver -- a pipelined request/response TCP server that reproduces the
 * "lost error reply" of the original bug report.
 *
 * Every line a client sends is one request. Request n (1-based, per
 * connection) gets "OK <n> <reply-size>\n" plus that many body bytes, in
 * order. Request --fail-at K gets "ERR <K> <error-size>\n" plus body, and the
 * server then ends the connection with the --close method without reading
 * anything more. Whatever the client pipelined after request K is still
 * unread (or still on its way), so Linux answers the close with a RST and the
 * client loses the error reply. It is an ordinary server, written the way
 * many are, with nothing special about how it closes.
 *
 * A request line that starts with "BAD" fails the same way, so a client
 * (pipeclient --bad-at K) can choose whether it triggers the error close.
 *
 * Models: single process (blocking or one epoll loop), a thread per
 * connection, or a fork per connection (the parent closes its copy at once).
 * Prints "READY <port>" once listening and, with --conns N, one JSON line of
 * counters when N connections are done (after --exit-delay-ms D):
 *   conns, eagain_wakeups, stale_events, errors  as always;
 *   max_conn_fd           highest descriptor number accept() ever returned;
 *   open_sockets_at_exit  descriptors in /proc/self/fd that are sockets, the
 *                         listening socket excluded, counted just before printing;
 *   helper_max_sockets    most sockets any --fork-helper child held (listener
 *                         excluded); -1 when no helper ran.
 *
 * --close says how a connection is let go of. Besides close(), all are ways
 * real servers release a socket without calling close(fd) on it directly:
 *   close          close(fd)
 *   dup            at accept: d = dup(fd), close(fd); serve d; close(d)
 *   shutdown-wr    shutdown(SHUT_WR), close()
 *   shutdown-rdwr  shutdown(SHUT_RDWR), close()
 *                  (--close-pause-ms P: both shutdown methods wait P ms between
 *                  the shutdown and the close, as a server that logs or
 *                  cleans up there does)
 *   fclose         fdopen(fd, "r+") when serving starts (in the fork model: in
 *                  the child), fully buffered with a 64 KiB buffer of its own;
 *                  replies go out with fwrite(), requests come in with read(fd);
 *                  the FILE is flushed only before a read() that may block, so
 *                  the tail of the error reply leaves in fclose(), which also
 *                  closes fd. Not with --io epoll.
 *   dup2-over      n = open("/dev/null"), dup2(n, fd), close(n); fd stays open
 *                  (on /dev/null) until the next accept() or exit, then close().
 *   close-range    close_range(fd, fd, 0)
 *   closefrom      closefrom(fd). Only right if fd is the highest descriptor:
 *                  allowed with --model single --io blocking (0-2, listener,
 *                  one connection) and --model fork (the child closes the
 *                  listener first); a warning goes to stderr if it is not.
 *   syscall        shutdown(SHUT_WR), then syscall(SYS_close, fd), as libuv does
 *   exit           fork only: the child calls exit(0) with the socket open
 *   _exit          fork only: the child does shutdown(SHUT_WR), _exit(0)
 *   stdio          fork only: the child moves the connection onto 0 and 1
 *                  (dup2 twice, close(fd)), reads fd 0, writes fd 1, then
 *                  closes 0 and then 1 (the last one releases the socket)
 *   exec           fork only: the child marks the socket FD_CLOEXEC and
 *                  execv()s --exec-path (default /bin/true)
 *
 * --fork-helper (model single): right after a connection is closed, fork a
 * short-lived child (like a CGI or logging helper) that counts the sockets it
 * inherited (/proc/self/fd + fstat S_ISSOCK, the listener excluded; with --io
 * epoll other connections still open count too), records the maximum in
 * helper_max_sockets (shared mapping), sleeps 300 ms and _exit()s. The parent reaps helpers without waiting (WNOHANG) while serving
 * and waits for all of them before it prints the stats line.
 *
 * --then-exec PATH: after the stats line the server replaces itself with
 * PATH (an upgrade re-exec), rather than returning from main.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_EVENTS 64
/* --close fclose: the stream's (full) buffer. */
#define FILE_BUF 65536

enum model { MODEL_SINGLE, MODEL_THREAD, MODEL_FORK };
enum io_kind { IO_BLOCKING, IO_EPOLL };
enum close_method {
	CLOSE_PLAIN, CLOSE_DUP, CLOSE_SHUT_WR, CLOSE_SHUT_RDWR, CLOSE_FCLOSE,
	CLOSE_DUP2_OVER, CLOSE_RANGE, CLOSE_FROM, CLOSE_SYSCALL, CLOSE_EXIT,
	CLOSE__EXIT, CLOSE_STDIO, CLOSE_EXEC,
	NCLOSE
};
static const char *const close_names[NCLOSE] = {
	"close", "dup", "shutdown-wr", "shutdown-rdwr", "fclose",
	"dup2-over", "close-range", "closefrom", "syscall", "exit",
	"_exit", "stdio", "exec",
};

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum model model;
	enum io_kind io;
	enum close_method close;
	struct proto_opts proto;
	unsigned long conns, exit_delay_ms, close_pause_ms;
	bool fork_helper;
	const char *exec_path, *then_exec;
} opt = {
	.model = MODEL_SINGLE, .io = IO_BLOCKING, .close = CLOSE_PLAIN,
	.proto = PROTO_DEFAULTS, .conns = 0, .exec_path = "/bin/true",
};

/* Counters live in a shared mapping so that fork children can count errors. */
struct stats {
	unsigned long conns, eagain_wakeups, stale_events, errors;
	long max_conn_fd;         /* -1 until the first accept() */
	long helper_max_sockets;  /* -1 until a --fork-helper child reports */
};
static struct stats *stats;

/* The listening socket: not counted by the socket counts. */
static int listen_fd = -1;

static void count(unsigned long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static unsigned long counted(unsigned long *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static void raise_max(long *max, long v)
{
	long cur = __atomic_load_n(max, __ATOMIC_RELAXED);

	while (v > cur && !__atomic_compare_exchange_n(max, &cur, v, false,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Descriptors in /proc/self/fd that are sockets, except the listener. */
static long count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd == dirfd(d) || fd == listen_fd)
			continue;
		if (fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode))
			n++;
	}
	closedir(d);
	return n;
}

/* The process's peak resident memory (VmHWM), in kB; -1 when unknown. */
static long peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* ---- buffers ---------------------------------------------------------- */

/* Bytes data[off..len) are pending (unparsed input or unsent output). */
struct buf {
	char *data;
	size_t off, len, cap;
};

static size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

/* Make room for `extra` more bytes at the end, moving pending bytes to the front. */
static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, buf_pending(b));
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = realloc(b->data, cap);
	if (!b->data)
		die("realloc");
	b->cap = cap;
}

static void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* ---- one connection ----------------------------------------------------- */

struct conn {
	int fd;               /* the connection (-1 once it lives on 0 and 1: --close stdio) */
	int rfd, wfd;         /* where requests are read from / replies written to */
	FILE *f;              /* --close fclose: replies go through this stream */
	char *fbuf;           /* ... and this is its buffer */
	struct buf in, out;
	unsigned long nreq;
	bool closing;         /* the error reply is queued: close once it is out */
	uint32_t interest;    /* epoll only: EPOLLIN or EPOLLOUT */
};

enum rd { RD_DATA, RD_EOF, RD_AGAIN, RD_ERROR };

static void append_reply(struct buf *out, const char *kind, unsigned long n,
			 unsigned long len)
{
	char hdr[REPLY_HDR_MAX];
	size_t hlen = reply_header(hdr, kind, n, len);

	buf_reserve(out, hlen + len);
	memcpy(out->data + out->len, hdr, hlen);
	reply_body(out->data + out->len + hlen, len);
	out->len += hlen + len;
}

/* Consume one request line if a full one is buffered; queue its reply. */
static bool take_request(struct conn *c)
{
	size_t pending = buf_pending(&c->in);
	char *line = c->in.data + c->in.off;
	char *nl = pending ? memchr(line, '\n', pending) : NULL;
	/* "BAD ..." fails like --fail-at: the client asks for the error close. */
	bool bad = pending >= 3 && memcmp(line, "BAD", 3) == 0;

	if (nl)
		buf_consume(&c->in, (size_t)(nl - line) + 1);
	else if (pending >= MAX_LINE)
		buf_consume(&c->in, pending);
	else
		return false;

	c->nreq++;
	if (c->nreq == opt.proto.fail_at || bad) {
		append_reply(&c->out, "ERR", c->nreq, opt.proto.error_size);
		c->closing = true;
	} else {
		append_reply(&c->out, "OK", c->nreq, opt.proto.reply_size);
	}
	return true;
}

/* One read() of at most --read-size bytes, as a simple server does. */
static enum rd conn_read(struct conn *c)
{
	/* A stdio server pushes out what it has before it waits for more input. */
	if (c->f && fflush(c->f) != 0) {
		count(&stats->errors);
		return RD_ERROR;
	}
	buf_reserve(&c->in, opt.proto.read_size);
	for (;;) {
		ssize_t n = read(c->rfd, c->in.data + c->in.len, opt.proto.read_size);
		if (n > 0) {
			c->in.len += (size_t)n;
			return RD_DATA;
		}
		if (n == 0)
			return RD_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return RD_AGAIN;
		count(&stats->errors);
		return RD_ERROR;
	}
}

/* Write as much pending output as the kernel takes: 1 = all out, 0 = EAGAIN, -1 = error. */
static int conn_flush(struct conn *c)
{
	if (c->f) {
		/* Into the stream's buffer; stdio writes it out when full (or at fflush/fclose). */
		size_t n = fwrite(c->out.data + c->out.off, 1, buf_pending(&c->out), c->f);
		buf_consume(&c->out, n);
		if (buf_pending(&c->out) == 0)
			return 1;
		count(&stats->errors);
		return -1;
	}
	while (buf_pending(&c->out) > 0) {
		ssize_t n = write(c->wfd, c->out.data + c->out.off, buf_pending(&c->out));
		if (n >= 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		count(&stats->errors);
		return -1;
	}
	return 1;
}

/* ---- --close dup2-over: descriptors left open on /dev/null ------------ */

static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static int *parked;
static size_t nparked, parked_cap;

static void park(int fd)
{
	pthread_mutex_lock(&parked_lock);
	if (nparked == parked_cap) {
		parked_cap = parked_cap ? parked_cap * 2 : 8;
		parked = realloc(parked, parked_cap * sizeof(*parked));
		if (!parked)
			die("realloc");
	}
	parked[nparked++] = fd;
	pthread_mutex_unlock(&parked_lock);
}

/* Close the numbers left on /dev/null: at the next connection and at exit. */
static void unpark_all(void)
{
	pthread_mutex_lock(&parked_lock);
	for (size_t i = 0; i < nparked; i++)
		close(parked[i]);
	nparked = 0;
	pthread_mutex_unlock(&parked_lock);
}

/* --close closefrom relies on fd being the highest descriptor: say so if it is not. */
static void check_highest(int fd)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long n = strtol(de->d_name, &end, 10);
		if (!*end && end != de->d_name && n > fd && n != dirfd(d))
			fprintf(stderr, "pipeserver: closefrom(%d) also closes descriptor %ld\n",
				fd, n);
	}
	closedir(d);
}

/* ---- --fork-helper ------------------------------------------------------- */

static unsigned long helpers_running;

/* Reap finished helpers; with flags 0, all of them. */
static void reap_helpers(int flags)
{
	while (helpers_running > 0) {
		pid_t pid = waitpid(-1, NULL, flags);
		if (pid > 0)
			helpers_running--;
		else if (pid < 0 && errno == EINTR)
			continue;
		else if (pid < 0 && errno == ECHILD)
			helpers_running = 0;
		else
			return;
	}
}

/* A CGI- or logging-style child: what sockets did it inherit? */
static void fork_helper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		long n = count_sockets();
		if (n >= 0)
			raise_max(&stats->helper_max_sockets, n);
		sleep_ms(300);
		_exit(0);
	}
	if (pid < 0) {
		perror("fork (helper)");
		count(&stats->errors);
		return;
	}
	helpers_running++;
	reap_helpers(WNOHANG);
}

/* ---- ending a connection ------------------------------------------------ */

/* End the connection the way --close says. dup already happened at accept. */
static void close_method(struct conn *c)
{
	int fd = c->fd;

	switch (opt.close) {
	case CLOSE_PLAIN:
	case CLOSE_DUP:
		close(fd);
		break;
	case CLOSE_SHUT_WR:
		shutdown(fd, SHUT_WR);
		sleep_ms(opt.close_pause_ms);
		close(fd);
		break;
	case CLOSE_SHUT_RDWR:
		shutdown(fd, SHUT_RDWR);
		sleep_ms(opt.close_pause_ms);
		close(fd);
		break;
	case CLOSE_FCLOSE:
		/* Flushes what the stream still buffers, then closes fd inside libc. */
		if (fclose(c->f) != 0)
			count(&stats->errors);
		c->f = NULL;
		free(c->fbuf);
		break;
	case CLOSE_DUP2_OVER: {
		int n = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (n < 0)
			die("open /dev/null");
		if (dup2(n, fd) < 0)
			die("dup2");
		close(n);
		park(fd);
		break;
	}
	case CLOSE_RANGE:
		if (close_range((unsigned)fd, (unsigned)fd, 0) < 0)
			die("close_range");
		break;
	case CLOSE_FROM:
		check_highest(fd);
		closefrom(fd);
		break;
	case CLOSE_SYSCALL:
		shutdown(fd, SHUT_WR);
		syscall(SYS_close, fd);
		break;
	case CLOSE_EXIT:
		exit(0);
	case CLOSE__EXIT:
		shutdown(fd, SHUT_WR);
		_exit(0);
	case CLOSE_STDIO:
		close(0);
		close(1);
		break;
	case CLOSE_EXEC: {
		char *const argv[] = { (char *)opt.exec_path, NULL };
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			die("fcntl FD_CLOEXEC");
		execv(opt.exec_path, argv);
		perror("execv");
		_exit(127);
	}
	case NCLOSE:
		break;
	}
}

static void conn_end(struct conn *c)
{
	free(c->in.data);
	free(c->out.data);
	c->in.data = c->out.data = NULL;
	close_method(c);
	if (opt.fork_helper)
		fork_helper();
}

/* Start serving fd: the set-up the --close method needs. */
static void conn_init(struct conn *c, int fd)
{
	c->fd = c->rfd = c->wfd = fd;
	if (opt.close == CLOSE_STDIO) {
		/* Fork child only: as inetd would, the connection becomes stdin and stdout. */
		if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
			die("dup2");
		close(fd);
		c->fd = -1;
		c->rfd = 0;
		c->wfd = 1;
	} else if (opt.close == CLOSE_FCLOSE) {
		c->f = fdopen(fd, "r+");
		if (!c->f)
			die("fdopen");
		/*
		 * setvbuf(f, NULL, _IOFBF, 65536) would get the st_blksize buffer
		 * (4 KiB for a socket): glibc ignores the size without a buffer.
		 */
		c->fbuf = malloc(FILE_BUF);
		if (!c->fbuf || setvbuf(c->f, c->fbuf, _IOFBF, FILE_BUF) != 0)
			die("setvbuf");
	}
}

/* Blocking model: read only when no full line is buffered, answer one request at a time. */
static void serve_blocking(int fd)
{
	struct conn c = { .fd = fd };

	conn_init(&c, fd);
	for (;;) {
		if (!take_request(&c)) {
			if (conn_read(&c) != RD_DATA)
				break;
			continue;
		}
		if (conn_flush(&c) < 0 || c.closing)
			break;
	}
	conn_end(&c);
}

/* ---- accepting -------------------------------------------------------- */

/* accept4(); with --close dup the connection is served on a duplicate. -1 = try again. */
static int accept_conn(int lfd, int flags)
{
	int fd = accept4(lfd, NULL, NULL, flags);

	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != ECONNABORTED)
			perror("accept4");
		return -1;
	}
	raise_max(&stats->max_conn_fd, fd);
	if (opt.close == CLOSE_DUP2_OVER)
		unpark_all();   /* the previous connection's /dev/null leftovers */
	if (opt.close == CLOSE_DUP) {
		/* The original number goes away at once; the socket lives on as d. */
		int d = dup(fd);
		if (d < 0)
			die("dup");
		close(fd);
		fd = d;
	}
	return fd;
}

static bool all_accepted(unsigned long accepted)
{
	return opt.conns > 0 && accepted >= opt.conns;
}

static void run_single_blocking(int lfd)
{
	unsigned long accepted = 0;

	while (!all_accepted(accepted)) {
		int fd = accept_conn(lfd, 0);
		if (fd < 0)
			continue;
		accepted++;
		serve_blocking(fd);
		count(&stats->conns);
	}
}

/* ---- thread per connection ------------------------------------------ */

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static void *conn_thread(void *arg)
{
	serve_blocking((int)(intptr_t)arg);
	pthread_mutex_lock(&done_lock);
	count(&stats->conns);
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&done_lock);
	return NULL;
}

static void run_thread(int lfd)
{
	unsigned long accepted = 0;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!all_accepted(accepted)) {
		int fd = accept_conn(lfd, 0);
		pthread_t tid;
		if (fd < 0)
			continue;
		accepted++;
		int err = pthread_create(&tid, &attr, conn_thread, (void *)(intptr_t)fd);
		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			close(fd);
			count(&stats->errors);
			count(&stats->conns);
		}
	}
	pthread_attr_destroy(&attr);

	/* Detached threads cannot be joined: wait for their count instead. */
	pthread_mutex_lock(&done_lock);
	while (counted(&stats->conns) < accepted)
		pthread_cond_wait(&done_cond, &done_lock);
	pthread_mutex_unlock(&done_lock);
}

/* ---- fork per connection --------------------------------------------- */

/* Count finished children; with flags 0 wait for one. False once none is left. */
static bool reap(int flags)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, flags);
		if (pid > 0) {
			count(&stats->conns);
			if (flags == 0)
				return true;
		} else if (pid < 0 && errno == EINTR) {
			continue;
		} else {
			return pid == 0;
		}
	}
}

static void run_fork(int lfd)
{
	unsigned long accepted = 0;

	while (!all_accepted(accepted)) {
		reap(WNOHANG);
		int fd = accept_conn(lfd, 0);
		if (fd < 0)
			continue;
		accepted++;
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve_blocking(fd);
			exit(0);
		}
		if (pid < 0) {
			perror("fork");
			count(&stats->errors);
			count(&stats->conns);
		}
		/* The classic pattern: the parent drops its reference right away. */
		close(fd);
	}
	while (counted(&stats->conns) < accepted && reap(0))
		;
}

/* ---- single process, one epoll loop ---------------------------------- */

struct loop {
	int ep, lfd;
	struct conn **conns;  /* by fd; NULL doubles as the per-fd "not open" flag */
	size_t nconns;
	unsigned long accepted;
};

static void loop_set_interest(struct loop *lp, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.fd = c->fd };

	if (c->interest == ev)
		return;
	if (epoll_ctl(lp->ep, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0)
		die("epoll_ctl");
	c->interest = ev;
}

/*
 * A real event-loop server just calls close(): the kernel drops the epoll
 * registration together with the last reference to the socket. No EPOLL_CTL_DEL.
 */
static void loop_close(struct loop *lp, struct conn *c)
{
	lp->conns[c->fd] = NULL;
	conn_end(c);
	free(c);
	count(&stats->conns);
}

static void loop_accept(struct loop *lp)
{
	while (!all_accepted(lp->accepted)) {
		int fd = accept_conn(lp->lfd, SOCK_NONBLOCK);
		if (fd < 0)
			return;
		lp->accepted++;
		if ((size_t)fd >= lp->nconns) {
			size_t n = (size_t)fd * 2 + 16;
			lp->conns = realloc(lp->conns, n * sizeof(*lp->conns));
			if (!lp->conns)
				die("realloc");
			memset(lp->conns + lp->nconns, 0, (n - lp->nconns) * sizeof(*lp->conns));
			lp->nconns = n;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c)
			die("calloc");
		conn_init(c, fd);
		lp->conns[fd] = c;
		loop_set_interest(lp, c, EPOLLIN);
	}
	/* Enough connections: stop being woken for new ones. */
	epoll_ctl(lp->ep, EPOLL_CTL_DEL, lp->lfd, NULL);
}

/* Answer buffered requests until output backs up, input runs out, or the error reply is out. */
static void loop_pump(struct loop *lp, struct conn *c)
{
	for (;;) {
		int r = conn_flush(c);
		if (r < 0 || (r > 0 && c->closing)) {
			loop_close(lp, c);
			return;
		}
		if (r == 0) {
			loop_set_interest(lp, c, EPOLLOUT);
			return;
		}
		if (!take_request(c)) {
			loop_set_interest(lp, c, EPOLLIN);
			return;
		}
	}
}

static void loop_conn_event(struct loop *lp, struct conn *c, uint32_t events)
{
	if (buf_pending(&c->out) == 0) {
		/* Writable with nothing to write: not for us (only a stale registration does that). */
		if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			return;
		/* Waiting for input (no full line buffered): one read per wake-up. */
		switch (conn_read(c)) {
		case RD_DATA:
			break;
		case RD_AGAIN:
			if (events & EPOLLIN)
				count(&stats->eagain_wakeups);
			return;
		default:
			loop_close(lp, c);
			return;
		}
	}
	loop_pump(lp, c);
}

static void run_epoll(int lfd)
{
	struct loop lp = { .lfd = lfd };
	struct epoll_event e = { .events = EPOLLIN, .data.fd = lfd };
	struct epoll_event evs[MAX_EVENTS];

	lp.ep = epoll_create1(EPOLL_CLOEXEC);
	if (lp.ep < 0 || epoll_ctl(lp.ep, EPOLL_CTL_ADD, lfd, &e) < 0)
		die("epoll");
	while (opt.conns == 0 || counted(&stats->conns) < opt.conns) {
		int n = epoll_wait(lp.ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd)
				loop_accept(&lp);
			else if ((size_t)fd < lp.nconns && lp.conns[fd])
				loop_conn_event(&lp, lp.conns[fd], evs[i].events);
			else
				count(&stats->stale_events);  /* a number we closed */
		}
	}
	close(lp.ep);
	free(lp.conns);
}

/* ---- setup --------------------------------------------------------------- */

static void usage(const char *msg)
{
	usage_exit("pipeserver", msg,
		"usage: pipeserver [--listen ADDR:PORT] [--model single|thread|fork]\n"
		"  [--io blocking|epoll] [--reply-size N] [--fail-at K] [--error-size N]\n"
		"  [--read-size N] [--close METHOD] [--close-pause-ms P] [--conns N]\n"
		"  [--exit-delay-ms D]\n"
		"  [--fork-helper] [--exec-path PATH] [--then-exec PATH]\n"
		"METHOD: close|dup|shutdown-wr|shutdown-rdwr|fclose|dup2-over|close-range|\n"
		"  closefrom|syscall, and with --model fork only: exit|_exit|stdio|exec\n");
}

static int pick(const char *s, const char *const names[], int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	usage(what);
	return -1;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "model", required_argument, NULL, 'm' },
		{ "io", required_argument, NULL, 'i' },
		PROTO_LONGOPTS,
		{ "close", required_argument, NULL, 'c' },
		{ "conns", required_argument, NULL, 'n' },
		{ "close-pause-ms", required_argument, NULL, 'P' },
		{ "exit-delay-ms", required_argument, NULL, 'D' },
		{ "fork-helper", no_argument, NULL, 'H' },
		{ "exec-path", required_argument, NULL, 'x' },
		{ "then-exec", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const models[] = { "single", "thread", "fork" };
	static const char *const ios[] = { "blocking", "epoll" };
	int ch;

	parse_addr(DEFAULT_LISTEN, ADDR_LISTEN, &opt.addr, &opt.addrlen);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': parse_addr(optarg, ADDR_LISTEN, &opt.addr, &opt.addrlen); break;
		case 'm': opt.model = (enum model)pick(optarg, models, 3, "bad --model"); break;
		case 'i': opt.io = (enum io_kind)pick(optarg, ios, 2, "bad --io"); break;
		case 'c': opt.close = (enum close_method)pick(optarg, close_names, NCLOSE, "bad --close"); break;
		case 'n': opt.conns = parse_num(optarg, 0, ULONG_MAX); break;
		case 'P': opt.close_pause_ms = parse_num(optarg, 0, 60000); break;
		case 'D': opt.exit_delay_ms = parse_num(optarg, 0, 86400000); break;
		case 'H': opt.fork_helper = true; break;
		case 'x': opt.exec_path = optarg; break;
		case 'X': opt.then_exec = optarg; break;
		case 'h': usage(NULL); break;
		default:
			if (!proto_option(&opt.proto, ch, optarg))
				usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
	if (opt.io == IO_EPOLL && opt.model != MODEL_SINGLE)
		usage("--io epoll needs --model single");
	switch (opt.close) {
	case CLOSE_EXIT:
	case CLOSE__EXIT:
	case CLOSE_STDIO:
	case CLOSE_EXEC:
		if (opt.model != MODEL_FORK)
			usage("--close exit|_exit|stdio|exec need --model fork");
		break;
	case CLOSE_FCLOSE:
		if (opt.io == IO_EPOLL)
			usage("--close fclose needs --io blocking");
		break;
	case CLOSE_FROM:
		/* Elsewhere other connections may sit above fd. */
		if (opt.model == MODEL_THREAD || opt.io == IO_EPOLL)
			usage("--close closefrom needs --model single --io blocking or --model fork");
		break;
	default:
		break;
	}
	if (opt.fork_helper && opt.model != MODEL_SINGLE)
		usage("--fork-helper needs --model single");
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	/* A client that resets must cost one connection, never the server. */
	signal(SIGPIPE, SIG_IGN);
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED)
		die("mmap");

	stats->max_conn_fd = -1;
	stats->helper_max_sockets = -1;

	int lfd = listen_ready(&opt.addr, opt.addrlen, opt.io == IO_EPOLL ? SOCK_NONBLOCK : 0, 128);
	listen_fd = lfd;

	if (opt.io == IO_EPOLL)
		run_epoll(lfd);
	else if (opt.model == MODEL_THREAD)
		run_thread(lfd);
	else if (opt.model == MODEL_FORK)
		run_fork(lfd);
	else
		run_single_blocking(lfd);

	sleep_ms(opt.exit_delay_ms);
	reap_helpers(0);
	unpark_all();
	free(parked);
	long open_sockets = count_sockets();
	close(lfd);
	printf("{\"conns\": %lu, \"eagain_wakeups\": %lu, \"stale_events\": %lu, \"errors\": %lu, "
	       "\"max_conn_fd\": %ld, \"open_sockets_at_exit\": %ld, \"helper_max_sockets\": %ld, "
	       "\"peak_rss_kb\": %ld}\n",
	       counted(&stats->conns), counted(&stats->eagain_wakeups),
	       counted(&stats->stale_events), counted(&stats->errors),
	       __atomic_load_n(&stats->max_conn_fd, __ATOMIC_RELAXED), open_sockets,
	       __atomic_load_n(&stats->helper_max_sockets, __ATOMIC_RELAXED), peak_rss_kb());
	munmap(stats, sizeof(*stats));
	if (opt.then_exec) {
		char *const argv_exec[] = { (char *)opt.then_exec, NULL };
		fflush(stdout);
		execv(opt.then_exec, argv_exec);
		die("execv");
	}
	return 0;
}
