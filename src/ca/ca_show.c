/*
 * `tegami ca show` and `ca list`: what an administrator needs to check a
 * certificate against what a client reports (subject, names, serial,
 * validity, SHA-256 fingerprint) and whether it is still good.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>

#include "ca/ca_private.h"
#include "core/util.h"

static void
time_string(const ASN1_TIME *t, char *out, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, size, "(invalid)");
}

static void
index_time_string(const char *t, char *out, size_t size)
{
	snprintf(out, size, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", t, t + 4,
	    t + 6, t + 8, t + 10, t + 12);
}

static void
name_string(const X509_NAME *name, char *out, size_t size)
{
	BIO *bio;
	char *data;
	long len;

	out[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return;
	/* RFC 2253 with UTF-8 kept and control characters escaped. */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 &
	    ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (len = BIO_get_mem_data(bio, &data)) >= 0)
		snprintf(out, size, "%.*s", (int)len, data);
	BIO_free(bio);
}

static void
key_string(X509 *cert, char *out, size_t size)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	char group[64];
	size_t glen;

	if (key == NULL)
		snprintf(out, size, "(unreadable)");
	else if (EVP_PKEY_base_id(key) == EVP_PKEY_RSA)
		snprintf(out, size, "RSA %d bits", EVP_PKEY_get_bits(key));
	else if (EVP_PKEY_base_id(key) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) == 1) {
		const char *nist = EC_curve_nid2nist(OBJ_sn2nid(group));

		snprintf(out, size, "ECDSA %s", nist != NULL ? nist : group);
	}
	else
		snprintf(out, size, "%s", OBJ_nid2sn(EVP_PKEY_base_id(key)));
}

static void
fingerprint(X509 *cert, const EVP_MD *alg, char *out, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	size_t used = 0;

	out[0] = '\0';
	if (X509_digest(cert, alg, md, &len) != 1)
		return;
	for (i = 0; i < len && used + 3 < size; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%02X",
		    i > 0 ? ":" : "", md[i]);
}

static void
now_index(char *out, size_t size)
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(out, size, "%Y%m%d%H%M%SZ", &tm);
}

static void
entry_status(const struct ca_index_entry *e, char *out, size_t size)
{
	char now[CA_INDEX_TIME_LEN + 1], t[32];

	now_index(now, sizeof(now));
	if (e->status == 'R') {
		index_time_string(e->revoked, t, sizeof(t));
		snprintf(out, size, "revoked (%s)", t);
	} else if (strcmp(e->not_after, now) < 0)
		snprintf(out, size, "expired");
	else
		snprintf(out, size, "valid");
}

/* What cert is relative to this CA, for the status line. */
static void
cert_status(X509 *cert, X509 *ca, struct ca_index_entry *list, size_t n,
    char *out, size_t size)
{
	char serial[CA_SERIAL_HEX_MAX];
	struct ca_index_entry *e;
	EVP_PKEY *cakey;

	/* Not X509_check_issued(cert, cert): it also demands keyCertSign,
	 * which a self-signed server certificate does not have. */
	if (X509_NAME_cmp(X509_get_subject_name(cert),
	    X509_get_issuer_name(cert)) == 0 &&
	    X509_verify(cert, X509_get0_pubkey(cert)) == 1) {
		if (X509_check_ca(cert) > 0)
			snprintf(out, size, "CA root certificate%s",
			    X509_cmp_current_time(X509_get0_notAfter(cert)) < 0
			    ? ", EXPIRED" : "");
		else
			snprintf(out, size, "SELF-SIGNED: clients warn unless "
			    "each one trusts this very certificate");
		return;
	}
	ERR_clear_error();
	cakey = ca != NULL ? X509_get0_pubkey(ca) : NULL;
	if (cakey == NULL || X509_verify(cert, cakey) != 1) {
		ERR_clear_error();
		snprintf(out, size, "issued by another CA");
		return;
	}
	if (ca_serial_hex(X509_get0_serialNumber(cert), serial,
	    sizeof(serial)) == -1 ||
	    (e = ca_index_find(list, n, serial)) == NULL) {
		snprintf(out, size, "issued by this CA, not in its index");
		return;
	}
	entry_status(e, out, size);
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static void
print_cert(FILE *out, X509 *cert, const char *status)
{
	char buf[4096];

	name_string(X509_get_subject_name(cert), buf, sizeof(buf));
	fprintf(out, "subject:     %s\n", buf);
	name_string(X509_get_issuer_name(cert), buf, sizeof(buf));
	fprintf(out, "issuer:      %s\n", buf);
	ca_names_format(cert, buf, sizeof(buf));
	if (buf[0] != '\0')
		fprintf(out, "names:       %s\n", buf);
	switch (ca_crldp_get(cert, buf, sizeof(buf))) {
	case 1:
		/* A public CA's certificate may hold anything here. */
		fprintf(out, "CRL:         %s\n", printable(buf) ? buf :
		    "(not printable)");
		break;
	case -1:
		fprintf(out, "CRL:         (unreadable)\n");
		break;
	}
	if (ca_serial_hex(X509_get0_serialNumber(cert), buf, sizeof(buf)) == 0)
		fprintf(out, "serial:      %s\n", buf);
	time_string(X509_get0_notBefore(cert), buf, sizeof(buf));
	fprintf(out, "not before:  %s\n", buf);
	time_string(X509_get0_notAfter(cert), buf, sizeof(buf));
	fprintf(out, "not after:   %s\n", buf);
	key_string(cert, buf, sizeof(buf));
	fprintf(out, "key:         %s\n", buf);
	fingerprint(cert, EVP_sha256(), buf, sizeof(buf));
	fprintf(out, "SHA-256:     %s\n", buf);
	/* What Windows shows as the "Thumbprint" when importing. */
	fingerprint(cert, EVP_sha1(), buf, sizeof(buf));
	fprintf(out, "SHA-1:       %s\n", buf);
	fprintf(out, "status:      %s\n", status);
}

int
ca_show(const char *state_dir, const char *host_in, FILE *out, char *err,
    size_t errsize)
{
	char host[CA_HOST_MAX], path[PATH_MAX], status[128];
	char url[CA_CRL_URL_MAX + 1];
	struct ca_index_entry *list = NULL;
	X509 *ca = NULL, *cert;
	const char *why;
	size_t n = 0;

	if (host_in == NULL) {
		if (ca_load(state_dir, NULL, &ca, NULL, err, errsize) == -1)
			return -1;
		cert_status(ca, ca, NULL, 0, status, sizeof(status));
		print_cert(out, ca, status);
		X509_free(ca);
		switch (ca_crl_url_default(state_dir, url, sizeof(url), err,
		    errsize)) {
		case 1:
			fprintf(out, "CRL default: %s (for `ca issue`)\n", url);
			break;
		case -1:
			return -1;
		}
		return 0;
	}
	if ((why = ca_hostname_check(host_in, host)) != NULL) {
		ca_err(err, errsize, "%s: %s", host_in, why);
		return -1;
	}
	if (ca_tls_path(state_dir, host, "crt", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if ((cert = ca_cert_load(path, err, errsize)) == NULL)
		return -1;
	if (ca_exists(state_dir)) {
		if (ca_load(state_dir, NULL, &ca, NULL, err, errsize) == -1 ||
		    ca_index_load(state_dir, &list, &n, err, errsize) == -1) {
			X509_free(ca);
			X509_free(cert);
			return -1;
		}
	}
	cert_status(cert, ca, list, n, status, sizeof(status));
	print_cert(out, cert, status);
	free(list);
	X509_free(ca);
	X509_free(cert);
	return 0;
}

/* tls/HOST.crt when it is the certificate with this serial, else NULL. */
static X509 *
current_cert(const char *state_dir, const char *host, const char *serial)
{
	char path[PATH_MAX], err[256], s[CA_SERIAL_HEX_MAX];
	X509 *cert;

	if (ca_tls_path(state_dir, host, "crt", path, sizeof(path)) == -1 ||
	    !ca_file_exists(path) ||
	    (cert = ca_cert_load(path, err, sizeof(err))) == NULL)
		return NULL;
	if (ca_serial_hex(X509_get0_serialNumber(cert), s, sizeof(s)) == 0 &&
	    strcmp(s, serial) == 0)
		return cert;
	X509_free(cert);
	return NULL;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The certificates in tls/ that are not in the index: self-signed ones
 * and chains from a public CA. */
static void
list_others(const char *state_dir, X509 *ca, struct ca_index_entry *list,
    size_t n, FILE *out)
{
	char path[PATH_MAX], err[256], status[128], s[CA_SERIAL_HEX_MAX];
	char **names = NULL;
	size_t count = 0, i, len;
	struct dirent *de;
	X509 *cert;
	DIR *d;

	if (path_join(path, sizeof(path), "%s/tls", state_dir) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".crt") == 0) {
			names = xreallocarray(names, count + 1,
			    sizeof(*names));
			names[count++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	qsort(names, count, sizeof(*names), cmp_str);
	for (i = 0; i < count; i++) {
		if (path_join(path, sizeof(path), "%s/tls/%s", state_dir,
		    names[i]) == -1 ||
		    (cert = ca_cert_load(path, err, sizeof(err))) == NULL)
			continue;
		if (ca_serial_hex(X509_get0_serialNumber(cert), s,
		    sizeof(s)) == 0 && ca_index_find(list, n, s) == NULL) {
			cert_status(cert, ca, list, n, status, sizeof(status));
			fprintf(out, "\nfile:        tls/%s\n", names[i]);
			print_cert(out, cert, status);
		}
		X509_free(cert);
	}
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int
ca_list(const char *state_dir, FILE *out, char *err, size_t errsize)
{
	struct ca_index_entry *list = NULL;
	char status[128], t[32];
	X509 *ca = NULL, *cert;
	size_t n = 0, i;

	if (ca_load(state_dir, NULL, &ca, NULL, err, errsize) == -1 ||
	    ca_index_load(state_dir, &list, &n, err, errsize) == -1) {
		X509_free(ca);
		return -1;
	}
	fprintf(out, "%zu certificate%s issued by this CA\n", n,
	    n == 1 ? "" : "s");
	for (i = 0; i < n; i++) {
		entry_status(&list[i], status, sizeof(status));
		fprintf(out, "\nhost:        %s\n", list[i].host);
		if ((cert = current_cert(state_dir, list[i].host,
		    list[i].serial)) != NULL) {
			fprintf(out, "file:        tls/%s.crt\n",
			    list[i].host);
			print_cert(out, cert, status);
			X509_free(cert);
			continue;
		}
		/* Replaced by a renewal or removed: the index knows enough
		 * to identify it in a client's error message. */
		index_time_string(list[i].not_after, t, sizeof(t));
		fprintf(out, "serial:      %s\nnot after:   %s\n"
		    "status:      %s (no longer in tls/)\n", list[i].serial, t,
		    status);
	}
	list_others(state_dir, ca, list, n, out);
	free(list);
	X509_free(ca);
	return 0;
}
