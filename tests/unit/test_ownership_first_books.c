/* test_ownership_first_books.c: a fork in one thread while another makes the
 * process's books (its first socket put on them): found by TSan in the
 * close storm (make tsan-stress), where own_fork_prepare() read the books'
 * pointer and whether pids mean anything to them with plain loads while
 * books() published them. Each round runs in a fresh fork child, which has
 * no books yet; under TSan (make SAN=tsan unit) a race ends the child with
 * TSan's exit status, so the round fails. In every build the child's books
 * must count the socket: one release, and it is the last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ownership.h"
#include "release_as.h"

#define ROUNDS 20

static pthread_barrier_t go;

static void *make_books(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&go);
	own_track_new(200, 77001); /* the first socket: the books are made */
	return NULL;
}

static void *fork_meanwhile(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&go);
	own_fork_prepare();
	own_fork_parent(-1); /* as if the fork failed: references given back */
	return NULL;
}

static int one_round(void)
{
	pthread_t a, b;

	if (!own_init())
		return 2;
	pthread_barrier_init(&go, NULL, 2);
	pthread_create(&a, NULL, make_books, NULL);
	pthread_create(&b, NULL, fork_meanwhile, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return release_as(200, 77001, false) == OWN_LAST ? 0 : 1;
}

static void fork_while_the_books_are_made(void **state)
{
	(void)state;
	for (int i = 0; i < ROUNDS; i++) {
		int status;
		pid_t pid = fork();
		if (pid == 0)
			_exit(one_round());
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fork_while_the_books_are_made),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
