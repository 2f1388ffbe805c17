/*
 * Names of a server certificate: the subjectAltName entries (RFC 5280
 * 4.2.1.6), DNS names checked like the config's host names and IP
 * addresses (IPv4 and IPv6) recognised with inet_pton.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_private.h"
#include "core/config.h"
#include "core/util.h"

const char *
ca_hostname_check(const char *name, char *out)
{
	size_t i, len = strlen(name);

	if (len == 0)
		return "the host name is empty";
	if (len >= CA_HOST_MAX)
		return "the host name is longer than 253 characters";
	for (i = 0; i <= len; i++) {
		char c = name[i];

		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	/* Also a file name under tls/: the check admits only letters,
	 * digits, '-' and '.' inside labels, so no '/', "..", or ".". */
	if (!config_dns_name_ok(out))
		return "not a valid DNS host name (letters, digits, '-' and "
		    "'.', labels of at most 63 characters)";
	return NULL;
}

static bool
names_have(GENERAL_NAMES *names, GENERAL_NAME *gn)
{
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++)
		if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(names, i), gn) == 0)
			return true;
	return false;
}

static int
names_add(GENERAL_NAMES *names, const char *spec, char *err, size_t errsize)
{
	unsigned char addr[16];
	char host[CA_HOST_MAX];
	const char *ip = spec, *why;
	GENERAL_NAME *gn;
	ASN1_OCTET_STRING *os;
	ASN1_IA5STRING *ia5;
	int len = 0;

	if (strncasecmp(spec, "IP:", 3) == 0)
		ip = spec + 3;
	if (inet_pton(AF_INET, ip, addr) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		len = 16;
	else if (ip != spec) {
		ca_err(err, errsize, "%s: not an IPv4 or IPv6 address", spec);
		return -1;
	}
	if (strncasecmp(spec, "DNS:", 4) == 0)
		spec += 4;
	if ((gn = GENERAL_NAME_new()) == NULL) {
		ca_ssl_err(err, errsize, "GENERAL_NAME_new");
		return -1;
	}
	if (len > 0) {
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(os, addr, len) != 1) {
			ASN1_OCTET_STRING_free(os);
			GENERAL_NAME_free(gn);
			ca_ssl_err(err, errsize, "ASN1_OCTET_STRING_set");
			return -1;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	} else {
		if ((why = ca_hostname_check(spec, host)) != NULL) {
			GENERAL_NAME_free(gn);
			ca_err(err, errsize, "%s: %s", spec, why);
			return -1;
		}
		if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(ia5, host, (int)strlen(host)) != 1) {
			ASN1_IA5STRING_free(ia5);
			GENERAL_NAME_free(gn);
			ca_ssl_err(err, errsize, "ASN1_STRING_set");
			return -1;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	}
	if (names_have(names, gn)) {
		GENERAL_NAME_free(gn);
		return 0;
	}
	if (sk_GENERAL_NAME_num(names) >= CA_SAN_MAX) {
		GENERAL_NAME_free(gn);
		ca_err(err, errsize, "more than %d names", CA_SAN_MAX);
		return -1;
	}
	if (sk_GENERAL_NAME_push(names, gn) == 0) {
		GENERAL_NAME_free(gn);
		ca_ssl_err(err, errsize, "sk_GENERAL_NAME_push");
		return -1;
	}
	return 0;
}

GENERAL_NAMES *
ca_names_make(const char *host, const char *const *sans, size_t n_sans,
    char *err, size_t errsize)
{
	GENERAL_NAMES *names;
	size_t i;

	if ((names = GENERAL_NAMES_new()) == NULL) {
		ca_ssl_err(err, errsize, "GENERAL_NAMES_new");
		return NULL;
	}
	/* The host itself must be a DNS name: it is also the file name. */
	if (strncasecmp(host, "IP:", 3) == 0 || strchr(host, ':') != NULL ||
	    names_add(names, host, err, errsize) == -1) {
		if (strchr(host, ':') != NULL)
			ca_err(err, errsize, "%s: the host must be a DNS name; "
			    "give addresses with --san", host);
		GENERAL_NAMES_free(names);
		return NULL;
	}
	for (i = 0; i < n_sans; i++) {
		if (names_add(names, sans[i], err, errsize) == -1) {
			GENERAL_NAMES_free(names);
			return NULL;
		}
	}
	return names;
}

/* One name as "DNS:x" or "IP:x" into out; false for other kinds. */
static bool
name_string(const GENERAL_NAME *gn, char *out, size_t size)
{
	const ASN1_STRING *s;
	const unsigned char *p;
	char addr[INET6_ADDRSTRLEN];
	int type, len;
	void *v;

	v = GENERAL_NAME_get0_value(gn, &type);
	s = v;
	p = ASN1_STRING_get0_data(s);
	len = ASN1_STRING_length(s);
	if (type == GEN_DNS) {
		snprintf(out, size, "DNS:%.*s", len, (const char *)p);
		return true;
	}
	if (type == GEN_IPADD && (len == 4 || len == 16) &&
	    inet_ntop(len == 4 ? AF_INET : AF_INET6, p, addr,
	    sizeof(addr)) != NULL) {
		snprintf(out, size, "IP:%s", addr);
		return true;
	}
	return false;
}

void
ca_names_format(X509 *cert, char *out, size_t size)
{
	GENERAL_NAMES *names;
	char one[300];
	size_t used = 0;
	int i;

	out[0] = '\0';
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return;
	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		if (!name_string(sk_GENERAL_NAME_value(names, i), one,
		    sizeof(one)))
			snprintf(one, sizeof(one), "(other)");
		if (used < size)
			used += (size_t)snprintf(out + used, size - used,
			    "%s%s", i > 0 ? ", " : "", one);
	}
	GENERAL_NAMES_free(names);
}

int
ca_names_list(X509 *cert, char ***list_r, size_t *n_r, char *err,
    size_t errsize)
{
	GENERAL_NAMES *names;
	char one[300], **list;
	size_t n = 0;
	int i;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL) {
		ca_err(err, errsize, "the certificate has no subjectAltName");
		return -1;
	}
	list = xcalloc((size_t)sk_GENERAL_NAME_num(names) + 1, sizeof(*list));
	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		if (!name_string(sk_GENERAL_NAME_value(names, i), one,
		    sizeof(one)))
			continue;
		list[n++] = xstrdup(one);
	}
	GENERAL_NAMES_free(names);
	*list_r = list;
	*n_r = n;
	return 0;
}
