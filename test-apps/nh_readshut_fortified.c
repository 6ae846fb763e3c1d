/*
 * nh_readshut_fortified -- nh_readshut_reads built as Debian builds its
 * packages, with _FORTIFY_SOURCE=2 (the Makefile compiles with -O2): read,
 * recv and recvfrom are __read_chk, __recv_chk and __recvfrom_chk here.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "nh_readshut_body.h"

int main(void)
{
	return run_readers();
}
