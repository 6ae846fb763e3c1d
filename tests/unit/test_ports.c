/* test_ports.c: the SAFECLOSE_PORTS list: ports and ranges taken, anything
 * else refused with the previous filter kept, and a socket's local port
 * asked of the kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "config.h"
#include "ports.h"

static void lists_and_ranges_are_taken(void **state)
{
	(void)state;
	static struct sc_ports p;

	assert_true(sc_ports_parse(&p, "80,443, 8000-8100 ,65535"));
	assert_false(p.all);
	assert_string_equal(p.text, "80,443, 8000-8100 ,65535");
	unsigned in[] = { 80, 443, 8000, 8050, 8100, 65535 };
	unsigned out[] = { 1, 79, 81, 442, 7999, 8101, 65534 };
	for (unsigned i = 0; i < sizeof in / sizeof *in; i++)
		assert_true(sc_ports_has(&p, in[i]));
	for (unsigned i = 0; i < sizeof out / sizeof *out; i++)
		assert_false(sc_ports_has(&p, out[i]));
	assert_true(sc_ports_parse(&p, "all"));
	assert_true(p.all && sc_ports_has(&p, 1) && sc_ports_has(&p, 65535));
}

static void anything_else_is_refused_and_changes_nothing(void **state)
{
	(void)state;
	static struct sc_ports p;
	const char *bad[] = { "", " ", "0", "65536", "80,", ",80", "80,,443", "http", "80-",
			      "-80", "90-80", "+80", "0x50", "80 443", "80;443", "all,80",
			      "99999999999999999999" };

	assert_true(sc_ports_parse(&p, "7000"));
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_false(sc_ports_parse(&p, bad[i]));
		assert_string_equal(p.text, "7000");
		assert_true(sc_ports_has(&p, 7000) && !sc_ports_has(&p, 80));
	}
}

static void a_socket_is_admitted_by_its_local_port(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	char list[16];

	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	snprintf(list, sizeof list, "%u", ntohs(addr.sin_port));
	assert_true(sc_ports_admit(fd)); /* the default: every port */
	assert_true(sc_ports_parse(&sc_cfg.ports, list));
	assert_true(sc_ports_admit(fd));
	assert_true(sc_ports_parse(&sc_cfg.ports, "1"));
	assert_false(sc_ports_admit(fd));
	assert_false(sc_ports_admit(-1)); /* no local port to be in the list */
	assert_true(sc_ports_parse(&sc_cfg.ports, "all"));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lists_and_ranges_are_taken),
		cmocka_unit_test(anything_else_is_refused_and_changes_nothing),
		cmocka_unit_test(a_socket_is_admitted_by_its_local_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
