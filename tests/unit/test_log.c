/*
 * log_escape: untrusted text must reach the log on one line, unambiguous
 * and bounded.
 */
#include <string.h>

#include "core/log.h"
#include "unit.h"

static void
test_escape_plain(void)
{
	char out[64];

	CHECK_STR(log_escape("alice@local.test", 16, out, sizeof(out)),
	    "alice@local.test");
	CHECK_STR(log_escape("", 0, out, sizeof(out)), "");
}

static void
test_escape_controls(void)
{
	char out[64];

	CHECK_STR(log_escape("a\r\nb", 4, out, sizeof(out)), "a\\x0d\\x0ab");
	CHECK_STR(log_escape("a\0b", 3, out, sizeof(out)), "a\\x00b");
	CHECK_STR(log_escape("\"q\\", 3, out, sizeof(out)), "\\\"q\\\\");
	CHECK_STR(log_escape("\xff\x7f", 2, out, sizeof(out)), "\\xff\\x7f");
}

static void
test_escape_bounded(void)
{
	char out[16], big[1000];
	size_t i;

	memset(big, 'x', sizeof(big));
	log_escape(big, sizeof(big), out, sizeof(out));
	CHECK(strlen(out) < sizeof(out));
	CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
	/* Escapes are never cut in half. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = '\n';
	log_escape(big, sizeof(big), out, sizeof(out));
	CHECK(strlen(out) < sizeof(out));
	CHECK(strstr(out, "\\x0a...") != NULL || strcmp(out, "...") == 0);
	{
		char tiny[1];

		log_escape("abc", 3, tiny, sizeof(tiny));
		CHECK(tiny[0] == '\0');
	}
}

int
main(void)
{
	UNIT_RUN(test_escape_plain);
	UNIT_RUN(test_escape_controls);
	UNIT_RUN(test_escape_bounded);
	return unit_finish();
}
