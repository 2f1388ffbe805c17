/*
 * A minimal unit-test harness: each tests/unit/test_*.c is one program whose
 * main() runs UNIT_RUN(fn) for each test and returns unit_finish(). A failed
 * check prints file:line and the expression and marks the test failed; the
 * test goes on so that one run shows every failure.
 */
#ifndef TEGAMI_UNIT_H
#define TEGAMI_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_checks_failed_in_test;
static int unit_tests_passed, unit_tests_failed;

#define CHECK(expr) do {						\
	if (!(expr)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n",		\
		    __FILE__, __LINE__, #expr);				\
		unit_checks_failed_in_test++;				\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *unit_a_ = (a), *unit_b_ = (b);			\
	if (unit_a_ == NULL || unit_b_ == NULL ?			\
	    unit_a_ != unit_b_ : strcmp(unit_a_, unit_b_) != 0) {	\
		fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s\n"	\
		    "  got:      \"%s\"\n  expected: \"%s\"\n",		\
		    __FILE__, __LINE__, #a, #b,				\
		    unit_a_ ? unit_a_ : "(null)",			\
		    unit_b_ ? unit_b_ : "(null)");			\
		unit_checks_failed_in_test++;				\
	}								\
} while (0)

/* Checks that a reply string starts with the given code, e.g. "501". */
#define CHECK_REPLY(reply, code) do {					\
	const char *unit_r_ = (reply);					\
	if (unit_r_ == NULL || strncmp(unit_r_, (code),			\
	    strlen(code)) != 0) {					\
		fprintf(stderr, "%s:%d: CHECK_REPLY failed: %s\n"	\
		    "  got:      \"%s\"\n  expected: \"%s...\"\n",	\
		    __FILE__, __LINE__, #reply,				\
		    unit_r_ ? unit_r_ : "(null)", (code));		\
		unit_checks_failed_in_test++;				\
	}								\
} while (0)

#define UNIT_RUN(fn) do {						\
	unit_checks_failed_in_test = 0;					\
	fn();								\
	if (unit_checks_failed_in_test == 0) {				\
		unit_tests_passed++;					\
	} else {							\
		fprintf(stderr, "FAIL %s\n", #fn);			\
		unit_tests_failed++;					\
	}								\
} while (0)

static inline int
unit_finish(void)
{
	printf("%d passed, %d failed\n", unit_tests_passed,
	    unit_tests_failed);
	return unit_tests_failed == 0 ? 0 : 1;
}

#endif
