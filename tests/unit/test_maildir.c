/*
 * Maildir paths, creation and unique names (store/maildir.c), and the
 * queue-id helpers they rely on.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "store/maildir.h"
#include "unit.h"

static void
test_path(void)
{
	char out[PATH_MAX];

	CHECK(maildir_path(out, sizeof(out), "/s/mail", "alice@local.test") == 0);
	CHECK_STR(out, "/s/mail/local.test/alice");
	CHECK(maildir_path(out, sizeof(out), "/s/mail", "a.b@x.y") == 0);
	CHECK_STR(out, "/s/mail/x.y/a.b");
	/* Never a path component that escapes or is empty. */
	CHECK(maildir_path(out, sizeof(out), "/s", "../x@local.test") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "a/b@local.test") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "alice@../etc") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "alice@a/b") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "@local.test") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "alice@") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", "alice") < 0);
	CHECK(maildir_path(out, sizeof(out), "/s", ".hidden@local.test") < 0);
	/* Too long for the buffer: an error, never a cut path. */
	CHECK(maildir_path(out, 10, "/s/mail", "alice@local.test") < 0);
	CHECK(errno == ENAMETOOLONG);
	CHECK_STR(out, "");
}

static void
test_names_unique_and_sized(void)
{
	char a[256], b[256];
	uint64_t size = 0;

	CHECK(maildir_new_name(a, sizeof(a), "mail.local.test", 1234) == 0);
	CHECK(maildir_new_name(b, sizeof(b), "mail.local.test", 1234) == 0);
	CHECK(strcmp(a, b) != 0);
	CHECK(strstr(a, ".mail.local.test,S=1234,W=1234") != NULL);
	CHECK(strchr(a, '/') == NULL);
	CHECK(maildir_name_size(a, &size) == 0);
	CHECK(size == 1234);
	/* maildir(5): '/' and ':' in the host name are encoded. */
	CHECK(maildir_new_name(a, sizeof(a), "we/ird:host", 1) == 0);
	CHECK(strchr(a, '/') == NULL);
	CHECK(strchr(a, ':') == NULL);
	CHECK(strstr(a, "we\\057ird\\072host") != NULL);
	CHECK(maildir_new_name(a, 10, "mail.local.test", 1) < 0);
}

static void
test_name_size_parse(void)
{
	uint64_t size = 7;

	CHECK(maildir_name_size("1.M2P3.h,S=99:2,S", &size) == 0);
	CHECK(size == 99);
	CHECK(maildir_name_size("1.M2P3.h,S=5,W=6", &size) == 0);
	CHECK(size == 5);
	CHECK(maildir_name_size("1.M2P3.h", &size) < 0);
	CHECK(maildir_name_size("1.M2P3.h,S=", &size) < 0);
	CHECK(maildir_name_size("1.M2P3.h,S=x", &size) < 0);
	CHECK(maildir_name_size("1.M2P3.h,S=12x", &size) < 0);
	CHECK(maildir_name_size("h,S=18446744073709551615", &size) == 0);
	CHECK(size == UINT64_MAX);
	CHECK(maildir_name_size("h,S=18446744073709551616", &size) < 0);
	CHECK(maildir_name_size("h,S=99999999999999999999999", &size) < 0);
}

static void
test_create(void)
{
	char tmpl[] = "/tmp/tegami-test-maildir-XXXXXX", path[PATH_MAX];
	struct stat st;
	const char *root = mkdtemp(tmpl);

	CHECK(root != NULL);
	if (root == NULL)
		return;
	CHECK(path_join(path, sizeof(path), "%s/mail/local.test/alice",
	    root) == 0);
	CHECK(maildir_create(path) == 0);
	CHECK(maildir_create(path) == 0);	/* existing is fine */
	CHECK(path_join(path, sizeof(path), "%s/mail/local.test/alice/new",
	    root) == 0);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK((st.st_mode & 0777) == 0700);
	CHECK(path_join(path, sizeof(path), "%s/mail/local.test/alice/tmp",
	    root) == 0);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(path_join(path, sizeof(path), "%s/mail/local.test/alice/cur",
	    root) == 0);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	/* A file where a directory should be is an error, not a crash. */
	CHECK(path_join(path, sizeof(path), "%s/file", root) == 0);
	{
		FILE *f = fopen(path, "w");

		CHECK(f != NULL);
		if (f != NULL)
			fclose(f);
	}
	CHECK(path_join(path, sizeof(path), "%s/file/x", root) == 0);
	CHECK(maildir_create(path) < 0);
	CHECK(path_join(path, sizeof(path), "rm -rf '%s'", root) == 0);
	CHECK(system(path) == 0);
}

static void
test_queue_ids(void)
{
	char a[17], b[17];

	queue_id_new(a);
	queue_id_new(b);
	CHECK(strlen(a) == 16);
	CHECK(strcmp(a, b) != 0);
	CHECK(queue_id_valid(a));
	CHECK(!queue_id_valid("0123456789abcdef"));	/* lower case */
	CHECK(!queue_id_valid("0123456789ABCDE"));
	CHECK(!queue_id_valid("0123456789ABCDEF0"));
	CHECK(!queue_id_valid("../../etc/passwd"));
	CHECK(!queue_id_valid(""));
}

int
main(void)
{
	UNIT_RUN(test_path);
	UNIT_RUN(test_names_unique_and_sized);
	UNIT_RUN(test_name_size_parse);
	UNIT_RUN(test_create);
	UNIT_RUN(test_queue_ids);
	return unit_finish();
}
