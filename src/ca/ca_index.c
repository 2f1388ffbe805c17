/*
 * ca/index: one line per certificate the CA issued, so that it can be
 * listed and revoked. Fields are separated by one TAB:
 *   STATUS SERIAL NOT-AFTER REVOKED-AT HOST
 * STATUS is V or R, SERIAL upper-case hex, times YYYYMMDDHHMMSSZ (UTC),
 * REVOKED-AT "-" while valid. Updated under ca/lock, rewritten atomically.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_private.h"
#include "core/util.h"

#define INDEX_LINE_MAX	512
#define INDEX_ENTRIES_MAX 1000000

static bool
is_hex(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

static bool
is_index_time(const char *s)
{
	size_t i;

	if (strlen(s) != CA_INDEX_TIME_LEN || s[14] != 'Z')
		return false;
	for (i = 0; i < 14; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int
ca_serial_normalise(const char *in, char *out, size_t size)
{
	size_t n = 0;
	const char *p;

	for (p = in; *p != '\0'; p++) {
		char c = *p;

		if (c == ':')
			continue;
		if (c >= 'a' && c <= 'f')
			c = (char)(c - 'a' + 'A');
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return -1;
		/* Leading zeros as BN_bn2hex drops them. */
		if (n == 0 && c == '0')
			continue;
		if (n + 1 >= size)
			return -1;
		out[n++] = c;
	}
	if (n == 0) {
		if (size < 2)
			return -1;
		out[n++] = '0';
	}
	out[n] = '\0';
	return 0;
}

int
ca_index_parse_line(char *line, struct ca_index_entry *e)
{
	char *f[5], *p = line;
	size_t i;

	for (i = 0; i < 5; i++) {
		f[i] = p;
		p = strchr(p, '\t');
		if (i < 4) {
			if (p == NULL)
				return -1;
			*p++ = '\0';
		}
	}
	if (p != NULL)
		return -1;
	/* Hosts were validated when issued; anything else was edited in. */
	for (p = f[4]; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return -1;
	if (strlen(f[0]) != 1 || (f[0][0] != 'V' && f[0][0] != 'R') ||
	    strlen(f[1]) >= sizeof(e->serial) || !is_hex(f[1]) ||
	    !is_index_time(f[2]) ||
	    (f[0][0] == 'V' ? strcmp(f[3], "-") != 0 : !is_index_time(f[3])) ||
	    strlen(f[4]) >= sizeof(e->host) || f[4][0] == '\0')
		return -1;
	e->status = f[0][0];
	snprintf(e->serial, sizeof(e->serial), "%s", f[1]);
	snprintf(e->not_after, sizeof(e->not_after), "%s", f[2]);
	snprintf(e->revoked, sizeof(e->revoked), "%s", f[3]);
	snprintf(e->host, sizeof(e->host), "%s", f[4]);
	return 0;
}

int
ca_index_load(const char *state_dir, struct ca_index_entry **list_r,
    size_t *n_r, char *err, size_t errsize)
{
	char path[PATH_MAX], line[INDEX_LINE_MAX];
	struct ca_index_entry *list = NULL;
	size_t n = 0, cap = 0, lineno = 0, len;
	FILE *f;

	*list_r = NULL;
	*n_r = 0;
	if (ca_path(state_dir, "index", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		len = strlen(line);
		if (len == 0 || line[len - 1] != '\n')
			goto bad;
		line[len - 1] = '\0';
		if (n == cap) {
			if (cap >= INDEX_ENTRIES_MAX)
				goto bad;
			cap = cap == 0 ? 16 : cap * 2;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		if (ca_index_parse_line(line, &list[n]) == -1)
			goto bad;
		n++;
	}
	if (ferror(f)) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		fclose(f);
		free(list);
		return -1;
	}
	fclose(f);
	*list_r = list;
	*n_r = n;
	return 0;
bad:
	ca_err(err, errsize, "%s:%zu: malformed line", path, lineno);
	fclose(f);
	free(list);
	return -1;
}

int
ca_index_save(const char *state_dir, const struct ca_index_entry *list,
    size_t n, char *err, size_t errsize)
{
	char path[PATH_MAX], *buf;
	size_t i, used = 0, cap;
	int rc, len;

	if (ca_path(state_dir, "index", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	cap = (n + 1) * INDEX_LINE_MAX;
	buf = xmalloc(cap);
	for (i = 0; i < n; i++) {
		len = snprintf(buf + used, cap - used, "%c\t%s\t%s\t%s\t%s\n",
		    list[i].status, list[i].serial, list[i].not_after,
		    list[i].revoked, list[i].host);
		if (len < 0 || (size_t)len >= cap - used) {
			free(buf);
			ca_err(err, errsize, "%s: entry too long", path);
			return -1;
		}
		used += (size_t)len;
	}
	rc = ca_file_write(path, buf, used, 0600, err, errsize);
	free(buf);
	return rc;
}

int
ca_index_append(const char *state_dir, const struct ca_index_entry *e,
    char *err, size_t errsize)
{
	struct ca_index_entry *list;
	size_t n;
	int rc;

	if (ca_index_load(state_dir, &list, &n, err, errsize) == -1)
		return -1;
	list = xreallocarray(list, n + 1, sizeof(*list));
	list[n++] = *e;
	rc = ca_index_save(state_dir, list, n, err, errsize);
	free(list);
	return rc;
}

struct ca_index_entry *
ca_index_find(struct ca_index_entry *list, size_t n, const char *serial)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i].serial, serial) == 0)
			return &list[i];
	return NULL;
}
