/* supervise.h: running the program as a child to summarise its family's
 * stats when it ends (cmd/supervise.c). */
#ifndef SAFECLOSE_SUPERVISE_H
#define SAFECLOSE_SUPERVISE_H

/* Forks, runs run(argv) in the child (which execs the program), passes
 * signals on, prints the summary of stats_dir to stderr when the child has
 * ended, and returns its exit status (or raises its fatal signal). */
int supervise(char **argv, const char *stats_dir, int (*run)(char **argv));

#endif
