/*
 * libFuzzer target for the SMTP command-line parser (RFC 5321 4.1): one
 * line through smtp_parse_command, then by verb through the MAIL, RCPT,
 * BDAT and EHLO argument parsers. Aborts when a result breaks its contract.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "DDD D.D.D text": a complete reply line, no CR, LF or NUL. */
static void
check_reply(const char *r, const char *codes)
{
	size_t i, n;

	if (r == NULL)
		return;
	n = strlen(r);
	/* all our enhanced codes have one-digit subject and detail */
	if (n < 11 || strchr(codes, r[0]) == NULL ||
	    r[1] < '0' || r[1] > '9' || r[2] < '0' || r[2] > '9' ||
	    r[3] != ' ' || r[4] != r[0] || r[5] != '.' || r[7] != '.' ||
	    r[6] < '0' || r[6] > '9' || r[8] < '0' || r[8] > '9' ||
	    r[9] != ' ')
		abort();
	for (i = 0; i < n; i++)
		if (r[i] < ' ' || r[i] > '~')
			abort();
}

static bool
has_byte_above(const char *s, size_t len, unsigned char c)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] > c)
			return true;
	return false;
}

static void
fuzz_args(const struct smtp_command *cmd, bool utf8)
{
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	uint64_t size;
	bool last;
	char name[256];
	const char *r;

	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
		r = smtp_parse_mail_args(cmd->args, cmd->args_len, utf8, &mp);
		check_reply(r, "45");
		if (r == NULL) {
			/* UTF-8 only with the parameter, and only if allowed */
			if (mp.from.utf8 && !mp.smtputf8)
				abort();
			if (mp.smtputf8 && !utf8)
				abort();
			if (mp.from.is_null && (mp.from.local[0] != '\0' ||
			    mp.from.domain[0] != '\0'))
				abort();
		}
		break;
	case SMTP_VERB_RCPT:
		r = smtp_parse_rcpt_args(cmd->args, cmd->args_len, utf8, &rp);
		check_reply(r, "45");
		if (r == NULL && (rp.to.is_null || (rp.to.utf8 && !utf8)))
			abort();
		break;
	case SMTP_VERB_BDAT:
		r = smtp_parse_bdat_args(cmd->args, cmd->args_len, &size,
		    &last);
		check_reply(r, "5");
		/* accepted: digits, then nothing or " LAST" */
		if (r == NULL && (cmd->args_len == 0 ||
		    cmd->args[0] < '0' || cmd->args[0] > '9'))
			abort();
		break;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		r = smtp_parse_helo_args(cmd->args, cmd->args_len, name,
		    sizeof(name));
		check_reply(r, "5");
		if (r == NULL) {
			/* printable ASCII, no space, not empty, in bounds */
			size_t n = strlen(name);

			if (n == 0 || n > 255 ||
			    has_byte_above(name, n, '~') ||
			    memchr(name, ' ', n) != NULL)
				abort();
		}
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum smtp_verb direct[] = { SMTP_VERB_MAIL,
	    SMTP_VERB_RCPT, SMTP_VERB_BDAT, SMTP_VERB_EHLO };
	struct smtp_command cmd;
	const char *line, *r;
	size_t len;
	bool utf8;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	line = (const char *)data + 1;
	len = size - 1;

	r = smtp_parse_command(line, len, &cmd);
	check_reply(r, "5");
	if (r == NULL) {
		if (len > SMTP_COMMAND_LINE_MAX - 2 ||
		    memchr(line, '\0', len) != NULL ||
		    has_byte_above(line, len - cmd.args_len, 0x7f))
			abort();
		if (cmd.verb == SMTP_VERB_UNKNOWN ||
		    strcmp(smtp_verb_name(cmd.verb), "UNKNOWN") == 0)
			abort();
		if (cmd.args < line || cmd.args + cmd.args_len > line + len)
			abort();
		fuzz_args(&cmd, utf8);
	}

	/* the argument parsers must also survive what the session never
	 * passes them: NULs, any length */
	cmd.args = line;
	cmd.args_len = len;
	cmd.verb = direct[(data[0] >> 1) % 4];
	fuzz_args(&cmd, utf8);
	return 0;
}
