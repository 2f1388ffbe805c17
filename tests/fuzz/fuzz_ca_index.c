/*
 * libFuzzer target for the private CA's index lines (src/ca/ca_index.c)
 * and for serial numbers as users type them (ca_serial_normalise): any
 * bytes, split at newlines; an accepted line must format back (as
 * ca_index_save writes it) into a line that parses to the same entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const char *in, size_t len)
{
	struct ca_index_entry e, again;
	char *line = malloc(len + 1), out[1024];
	int n;

	if (line == NULL)
		abort();
	memcpy(line, in, len);
	line[len] = '\0';
	if (ca_index_parse_line(line, &e) == 0) {
		if (e.status != 'V' && e.status != 'R')
			abort();
		if (e.host[0] == '\0' || strchr(e.host, '\t') != NULL)
			abort();
		n = snprintf(out, sizeof(out), "%c\t%s\t%s\t%s\t%s", e.status,
		    e.serial, e.not_after, e.revoked, e.host);
		if (n < 0 || (size_t)n >= sizeof(out))
			abort();
		/* Field by field: the arrays' bytes past the NULs are not set. */
		if (ca_index_parse_line(out, &again) != 0 ||
		    again.status != e.status ||
		    strcmp(again.serial, e.serial) != 0 ||
		    strcmp(again.not_after, e.not_after) != 0 ||
		    strcmp(again.revoked, e.revoked) != 0 ||
		    strcmp(again.host, e.host) != 0)
			abort();
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	char serial[128], *copy;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		check_line(p, (size_t)((nl != NULL ? nl : end) - p));
		p = nl != NULL ? nl + 1 : end;
	}
	copy = malloc(size + 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (ca_serial_normalise(copy, serial, sizeof(serial)) == 0) {
		char again[128];

		/* Normalising is idempotent. */
		if (ca_serial_normalise(serial, again, sizeof(again)) != 0 ||
		    strcmp(serial, again) != 0)
			abort();
	}
	free(copy);
	return 0;
}
