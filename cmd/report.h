/* report.h: summing stats files and printing the sum (cmd/report.c). */
#ifndef SAFECLOSE_REPORT_H
#define SAFECLOSE_REPORT_H

#include <stdbool.h>
#include <stdio.h>

enum report_format { REPORT_TABLE, REPORT_JSON, REPORT_PROMETHEUS };

struct totals;

/* Sums the files and directories named; false (with a line on stderr for
 * each) when any could not be read. *out is set either way. */
bool report_sum(struct totals **out, char *const *paths, int n);
void report_print(const struct totals *t, enum report_format format, FILE *to);
void report_free(struct totals *t);

/* `safeclose report ...`: argv[0] is "report". The exit status. */
int report_main(int argc, char **argv);

#endif
