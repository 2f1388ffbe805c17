/*
 * ca/crl.pem and ca/crl.der: the CA's certificate revocation list, an
 * X.509 v2 CRL (RFC 5280 5) with the cRLNumber (5.2.3) and
 * authorityKeyIdentifier (5.2.1) extensions, listing every revoked serial
 * in ca/index; the DER copy is what an HTTP distribution point serves
 * (4.2.1.13).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_private.h"
#include "core/util.h"

/* The next CRL number from ca/crlnumber (hex; "1" when absent). */
static BIGNUM *
crl_number_read(const char *path, char *err, size_t errsize)
{
	char line[CA_SERIAL_HEX_MAX + 2], norm[CA_SERIAL_HEX_MAX];
	BIGNUM *bn = NULL;
	FILE *f;
	size_t len;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno != ENOENT) {
			ca_err(err, errsize, "%s: %s", path, strerror(errno));
			return NULL;
		}
		if (BN_hex2bn(&bn, "1") == 0)
			ca_ssl_err(err, errsize, "BN_hex2bn");
		return bn;
	}
	if (fgets(line, sizeof(line), f) == NULL || (len = strlen(line)) < 2 ||
	    line[len - 1] != '\n') {
		fclose(f);
		ca_err(err, errsize, "%s: malformed", path);
		return NULL;
	}
	fclose(f);
	line[len - 1] = '\0';
	if (ca_serial_normalise(line, norm, sizeof(norm)) == -1 ||
	    BN_hex2bn(&bn, norm) == 0) {
		ca_err(err, errsize, "%s: malformed", path);
		return NULL;
	}
	return bn;
}

static int
crl_add_revoked(X509_CRL *crl, const struct ca_index_entry *e, char *err,
    size_t errsize)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	BIGNUM *bn = NULL;
	int rc = -1;

	if (BN_hex2bn(&bn, e->serial) == 0 ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (when = ASN1_TIME_new()) == NULL ||
	    ASN1_TIME_set_string_X509(when, e->revoked) != 1 ||
	    (rev = X509_REVOKED_new()) == NULL ||
	    X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
	    X509_REVOKED_set_revocationDate(rev, when) != 1) {
		ca_ssl_err(err, errsize, "revoked entry %s", e->serial);
		goto out;
	}
	if (X509_CRL_add0_revoked(crl, rev) != 1) {
		ca_ssl_err(err, errsize, "X509_CRL_add0_revoked");
		goto out;
	}
	rev = NULL;
	rc = 0;
out:
	X509_REVOKED_free(rev);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return rc;
}

static int
crl_extensions(X509_CRL *crl, X509 *ca, BIGNUM *number, char *err,
    size_t errsize)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	ASN1_INTEGER *num;
	int ok;

	if ((num = BN_to_ASN1_INTEGER(number, NULL)) == NULL) {
		ca_ssl_err(err, errsize, "CRL number");
		return -1;
	}
	ok = X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
	ASN1_INTEGER_free(num);
	if (ok != 1) {
		ca_ssl_err(err, errsize, "cRLNumber");
		return -1;
	}
	X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always");
	if (ext == NULL) {
		ca_ssl_err(err, errsize, "authorityKeyIdentifier");
		return -1;
	}
	ok = X509_CRL_add_ext(crl, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1) {
		ca_ssl_err(err, errsize, "X509_CRL_add_ext");
		return -1;
	}
	return 0;
}

int
ca_crl(const char *state_dir, const char *passphrase, time_t now, char *err,
    size_t errsize)
{
	char numpath[PATH_MAX], crlpath[PATH_MAX], derpath[PATH_MAX];
	char *hex = NULL, *line = NULL;
	unsigned char *der = NULL;
	int derlen;
	struct ca_index_entry *list = NULL;
	EVP_PKEY *key = NULL;
	X509_CRL *crl = NULL;
	BIGNUM *number = NULL;
	ASN1_TIME *t = NULL;
	X509 *ca = NULL;
	BIO *bio = NULL;
	size_t n, i;
	int lock = -1, rc = -1;

	if (now == 0)
		now = time(NULL);
	if (ca_path(state_dir, "crlnumber", numpath, sizeof(numpath)) == -1 ||
	    ca_path(state_dir, "crl.pem", crlpath, sizeof(crlpath)) == -1 ||
	    ca_path(state_dir, "crl.der", derpath, sizeof(derpath)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if (ca_require(state_dir, err, errsize) == -1)
		return -1;
	if (ca_lock(state_dir, &lock, err, errsize) == -1)
		return -1;
	if (ca_load(state_dir, passphrase, &ca, &key, err, errsize) == -1 ||
	    ca_index_load(state_dir, &list, &n, err, errsize) == -1 ||
	    (number = crl_number_read(numpath, err, errsize)) == NULL)
		goto out;
	if ((crl = X509_CRL_new()) == NULL ||
	    X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
	    (t = X509_time_adj_ex(NULL, 0, 0, &now)) == NULL ||
	    X509_CRL_set1_lastUpdate(crl, t) != 1 ||
	    X509_time_adj_ex(t, CA_CRL_DAYS, 0, &now) == NULL ||
	    X509_CRL_set1_nextUpdate(crl, t) != 1) {
		ca_ssl_err(err, errsize, "CRL");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (list[i].status == 'R' &&
		    crl_add_revoked(crl, &list[i], err, errsize) == -1)
			goto out;
	if (crl_extensions(crl, ca, number, err, errsize) == -1)
		goto out;
	if (X509_CRL_sort(crl) != 1 ||
	    X509_CRL_sign(crl, key, ca_sign_md(key)) <= 0) {
		ca_ssl_err(err, errsize, "X509_CRL_sign");
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_CRL(bio, crl) != 1) {
		ca_ssl_err(err, errsize, "CRL encoding");
		goto out;
	}
	if ((derlen = i2d_X509_CRL(crl, &der)) <= 0) {
		ca_ssl_err(err, errsize, "CRL DER encoding");
		goto out;
	}
	/* The number is used up before the CRL appears, so that no two
	 * published CRLs ever share one (RFC 5280 5.2.3). */
	if (BN_add_word(number, 1) != 1 || (hex = BN_bn2hex(number)) == NULL) {
		ca_ssl_err(err, errsize, "CRL number");
		goto out;
	}
	line = xmalloc(strlen(hex) + 2);
	snprintf(line, strlen(hex) + 2, "%s\n", hex);
	if (ca_file_write(numpath, line, strlen(line), 0600, err, errsize) ==
	    -1 || ca_file_write_bio(crlpath, bio, 0644, err, errsize) == -1 ||
	    ca_file_write(derpath, der, (size_t)derlen, 0644, err, errsize) ==
	    -1)
		goto out;
	rc = 0;
out:
	OPENSSL_free(der);
	free(line);
	OPENSSL_free(hex);
	BIO_free(bio);
	ASN1_TIME_free(t);
	BN_free(number);
	X509_CRL_free(crl);
	free(list);
	X509_free(ca);
	EVP_PKEY_free(key);
	ca_unlock(&lock);
	return rc;
}
