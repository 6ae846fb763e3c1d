/* supervise.c: `safeclose --stats DIR -- PROGRAM`: the one case where the
 * command stays as the program's parent, because the family's summary can
 * only be printed once the program has ended. The program runs as a child;
 * signals sent to the command are passed on to it; when it ends the summary
 * of DIR goes to stderr and the command ends as the program did: the same
 * exit status, or the same fatal signal raised again. */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

/* What a supervisor passes on: the signals an operator or a service manager
 * sends to stop, reload or poke a server. SIGCHLD is ours; SIGKILL and
 * SIGSTOP cannot be caught (a SIGKILL of the command leaves the program
 * running, without its summary). */
static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				 SIGALRM, SIGWINCH, SIGCONT };
#define N_FORWARDED (sizeof forwarded / sizeof *forwarded)

static volatile pid_t child;

/* A signal the terminal sent (SI_KERNEL) went to the whole foreground
 * process group, so the program has it already: sending it again would
 * deliver it twice (two SIGINTs stop Python's http.server uncleanly). */
static void forward(int sig, siginfo_t *info, void *unused)
{
	(void)unused;
	int saved = errno;

	if (child > 0 && info->si_code != SI_KERNEL)
		kill(child, sig);
	errno = saved;
}

static void forwarded_set(sigset_t *set)
{
	sigemptyset(set);
	for (unsigned i = 0; i < N_FORWARDED; i++)
		sigaddset(set, forwarded[i]);
}

/* Ends the command as the program ended. A fatal signal is raised again
 * with its default action (and no core file: the program wrote its own). */
static int end_like(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	int sig = WTERMSIG(status);
	struct rlimit no_core = { 0, 0 };
	sigset_t set;

	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	return 128 + sig; /* a signal whose default is not to end a process */
}

static void summarise(const char *dir)
{
	struct totals *t;
	char *paths[] = { (char *)dir };
	bool ok = report_sum(&t, paths, 1);

	/* The program's output is stdout; the summary is the command's own. */
	if (ok) {
		fprintf(stderr, "safeclose: stats of the family in %s:\n", dir);
		report_print(t, REPORT_TABLE, stderr);
	}
	report_free(t);
}

int supervise(char **argv, const char *stats_dir, int (*run)(char **argv))
{
	sigset_t set, old;

	forwarded_set(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid_t pid = fork();
	if (pid < 0) {
		perror("safeclose: fork");
		return 125;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(run(argv));
	}
	child = pid;
	struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < N_FORWARDED; i++)
		sigaction(forwarded[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("safeclose: waitpid");
			return 125;
		}
	child = 0;
	summarise(stats_dir);
	return end_like(status);
}
