/*
 * nh_readshut_reads -- after shutdown(SHUT_RD), read, readv, recv, recvfrom,
 * recvmsg and recvmmsg return what was queued, then 0, without blocking.
 * (nh_readshut_fortified: the same, built with _FORTIFY_SOURCE=2.)
 */
#define _GNU_SOURCE
#include "nh_readshut_body.h"

int main(void)
{
	return run_readers();
}
