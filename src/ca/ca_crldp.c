/*
 * Where clients fetch the CRL: the cRLDistributionPoints extension of
 * server certificates (RFC 5280 4.2.1.13) with one http(s) URI (RFC 3986),
 * and the CA's default URL in ca/crl-url (`tegami ca init --crl-url`).
 */
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ca/ca_private.h"
#include "core/config.h"
#include "core/util.h"

/* RFC 3986 2.2 and 2.3: the characters a URI may hold literally. */
static bool
uri_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("-._~:/?#[]@!$&'()*+,;=%",
	    c) != NULL;
}

static bool
hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* host[:port], as the authority of the URI; no user information. */
static const char *
authority_check(const char *a, size_t len)
{
	char host[CA_HOST_MAX], addr[16];
	const char *port = NULL, *hend;
	size_t hlen, i;
	long p;

	if (len == 0)
		return "the URL has no host";
	if (memchr(a, '@', len) != NULL)
		return "the URL must not hold a user name or password";
	if (a[0] == '[') {
		/* RFC 3986 3.2.2: an IPv6 literal in brackets. */
		if ((hend = memchr(a, ']', len)) == NULL)
			return "the URL's IPv6 address lacks its ']'";
		hlen = (size_t)(hend - a) - 1;
		if (hlen == 0 || hlen >= sizeof(host))
			return "the URL's host is not a valid IPv6 address";
		memcpy(host, a + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			return "the URL's host is not a valid IPv6 address";
		hend++;
		if (hend < a + len) {
			if (*hend != ':')
				return "the URL's host is not a valid IPv6 "
				    "address";
			port = hend + 1;
		}
	} else {
		hend = memchr(a, ':', len);
		hlen = hend != NULL ? (size_t)(hend - a) : len;
		if (hend != NULL)
			port = hend + 1;
		if (hlen == 0)
			return "the URL has no host";
		if (hlen >= sizeof(host))
			return "the URL's host is longer than 253 characters";
		memcpy(host, a, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, addr) != 1 &&
		    !config_dns_name_ok(host))
			return "the URL's host is not a valid DNS name or "
			    "IP address";
	}
	if (port != NULL) {
		size_t plen = (size_t)(a + len - port);

		if (plen == 0 || plen > 5)
			return "the URL's port is not a number from 1 to 65535";
		for (i = 0, p = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				return "the URL's port is not a number from 1 "
				    "to 65535";
			p = p * 10 + (port[i] - '0');
		}
		if (p < 1 || p > 65535)
			return "the URL's port is not a number from 1 to 65535";
	}
	return NULL;
}

const char *
ca_crl_url_check(const char *url)
{
	const char *a;
	size_t len = strlen(url), i, alen;

	if (len == 0)
		return "the CRL URL is empty";
	if (len > CA_CRL_URL_MAX)
		return "the CRL URL is longer than 1024 characters";
	/* Printable ASCII only: the extension holds an IA5String, and
	 * clients compare and fetch it byte for byte. Anything else must
	 * be percent-encoded. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c < 0x21 || c > 0x7e)
			return "the CRL URL may only hold printable ASCII "
			    "(percent-encode anything else)";
		if (!uri_char(url[i]))
			return "the CRL URL holds a character that URLs do not "
			    "allow (percent-encode it)";
		if (url[i] == '%' && (i + 2 >= len || !hex_digit(url[i + 1]) ||
		    !hex_digit(url[i + 2])))
			return "the CRL URL has a '%' without two hex digits";
	}
	/* RFC 5280 4.2.1.13: clients fetch a DER CRL over HTTP (or
	 * LDAP, which tegami does not publish to). */
	if (strncasecmp(url, "http://", 7) == 0)
		a = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		a = url + 8;
	else
		return "the CRL URL must start with http:// or https://";
	/* A fragment names a part of a document, meaningless for a CRL. */
	if (strchr(url, '#') != NULL)
		return "the CRL URL must not have a fragment ('#')";
	alen = strcspn(a, "/?");
	return authority_check(a, alen);
}

int
ca_crldp_add(X509 *cert, const char *url, char *err, size_t errsize)
{
	CRL_DIST_POINTS *dps = NULL;
	DIST_POINT *dp = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	int rc = -1;

	/* Built with the API rather than a config string, in which a ','
	 * in the URL would split it. One distribution point, its full
	 * name the URI; no reasons and no cRLIssuer, so the CRL covers
	 * every reason and is issued by the CA itself (4.2.1.13). */
	if ((dps = sk_DIST_POINT_new_null()) == NULL ||
	    (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL ||
	    (gn = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, url, (int)strlen(url)) != 1) {
		ca_ssl_err(err, errsize, "cRLDistributionPoints");
		goto out;
	}
	dp->distpoint->type = 0;	/* fullName */
	GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) == 0) {
		ca_ssl_err(err, errsize, "cRLDistributionPoints");
		goto out;
	}
	gn = NULL;
	if (sk_DIST_POINT_push(dps, dp) == 0) {
		ca_ssl_err(err, errsize, "cRLDistributionPoints");
		goto out;
	}
	dp = NULL;
	/* Not critical: RFC 5280 recommends it so. */
	if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps, 0,
	    X509V3_ADD_REPLACE) != 1) {
		ca_ssl_err(err, errsize, "cRLDistributionPoints");
		goto out;
	}
	rc = 0;
out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

int
ca_crldp_get(X509 *cert, char *out, size_t size)
{
	CRL_DIST_POINTS *dps;
	GENERAL_NAMES *names;
	GENERAL_NAME *gn;
	DIST_POINT *dp;
	const ASN1_IA5STRING *uri;
	int i, j, crit, rc = 0;

	out[0] = '\0';
	dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit,
	    NULL);
	if (dps == NULL)
		return crit == -1 ? 0 : -1;
	for (i = 0; i < sk_DIST_POINT_num(dps) && rc == 0; i++) {
		dp = sk_DIST_POINT_value(dps, i);
		if (dp->distpoint == NULL || dp->distpoint->type != 0)
			continue;
		names = dp->distpoint->name.fullname;
		for (j = 0; j < sk_GENERAL_NAME_num(names); j++) {
			gn = sk_GENERAL_NAME_value(names, j);
			if (gn->type != GEN_URI)
				continue;
			uri = gn->d.uniformResourceIdentifier;
			if ((size_t)ASN1_STRING_length(uri) >= size ||
			    memchr(ASN1_STRING_get0_data(uri), '\0',
			    (size_t)ASN1_STRING_length(uri)) != NULL) {
				rc = -1;
				break;
			}
			snprintf(out, size, "%.*s", ASN1_STRING_length(uri),
			    (const char *)ASN1_STRING_get0_data(uri));
			rc = 1;
			break;
		}
	}
	CRL_DIST_POINTS_free(dps);
	return rc;
}

int
ca_crl_url_save(const char *state_dir, const char *url, char *err,
    size_t errsize)
{
	char path[PATH_MAX], line[CA_CRL_URL_MAX + 2];

	if (ca_path(state_dir, "crl-url", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	snprintf(line, sizeof(line), "%s\n", url);
	return ca_file_write(path, line, strlen(line), 0644, err, errsize);
}

int
ca_crl_url_default(const char *state_dir, char *out, size_t size,
    char *err, size_t errsize)
{
	char path[PATH_MAX], line[CA_CRL_URL_MAX + 3];
	const char *why;
	size_t len;
	FILE *f;

	out[0] = '\0';
	if (ca_path(state_dir, "crl-url", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		ca_err(err, errsize, "%s: empty", path);
		return -1;
	}
	fclose(f);
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	/* Checked again: the file may have been edited by hand. */
	if ((why = ca_crl_url_check(line)) != NULL) {
		ca_err(err, errsize, "%s: %s", path, why);
		return -1;
	}
	if (len >= size) {
		ca_err(err, errsize, "%s: too long", path);
		return -1;
	}
	memcpy(out, line, len + 1);
	return 1;
}
