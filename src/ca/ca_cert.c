/*
 * Building certificates (RFC 5280 4.1, 4.2): the self-signed root with
 * basicConstraints CA:TRUE pathlen:0 and keyUsage keyCertSign+cRLSign, and
 * server certificates with SAN, serverAuth, key identifiers (the CA/B
 * Forum and Apple profile) and a CRL distribution point when the CA
 * publishes one (4.2.1.13), plus CSRs (RFC 2986).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "ca/ca_private.h"
#include "core/util.h"

const EVP_MD *
ca_sign_md(EVP_PKEY *key)
{
	return EVP_sha256();
}

static int
serial_random(X509 *cert, char *err, size_t errsize)
{
	unsigned char b[CA_SERIAL_BYTES];
	ASN1_INTEGER *ai;
	BIGNUM *bn;
	int rc = -1;

	random_bytes(b, sizeof(b));
	/* Positive (top bit clear) and exactly 16 octets long (next bit
	 * set): 126 random bits, well above the 64 the CA/B BRs ask for. */
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL) {
		BN_free(bn);
		ca_ssl_err(err, errsize, "serial");
		return -1;
	}
	if (X509_set_serialNumber(cert, ai) == 1)
		rc = 0;
	else
		ca_ssl_err(err, errsize, "X509_set_serialNumber");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value, char *err,
    size_t errsize)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value)) == NULL) {
		ca_ssl_err(err, errsize, "extension %s=%s", OBJ_nid2sn(nid),
		    value);
		return -1;
	}
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1) {
		ca_ssl_err(err, errsize, "X509_add_ext");
		return -1;
	}
	return 0;
}

static int
set_name(X509_NAME *name, const char *cn, char *err, size_t errsize)
{
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1) {
		ca_ssl_err(err, errsize, "subject CN=%s", cn);
		return -1;
	}
	return 0;
}

static int
set_validity(X509 *cert, int days, time_t now, char *err, size_t errsize)
{
	time_t start = now - CA_BACKDATE_SECONDS;

	if (X509_time_adj_ex(X509_getm_notBefore(cert), 0, 0, &start) ==
	    NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, &now) ==
	    NULL) {
		ca_ssl_err(err, errsize, "validity");
		return -1;
	}
	return 0;
}

/* Version, serial, subject, key and validity, common to every kind. */
static X509 *
cert_start(EVP_PKEY *key, const char *cn, int days, time_t now, char *err,
    size_t errsize)
{
	X509 *cert;

	if ((cert = X509_new()) == NULL) {
		ca_ssl_err(err, errsize, "X509_new");
		return NULL;
	}
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    X509_set_pubkey(cert, key) != 1) {
		ca_ssl_err(err, errsize, "X509_set_pubkey");
		goto fail;
	}
	if (serial_random(cert, err, errsize) == -1 ||
	    set_name(X509_get_subject_name(cert), cn, err, errsize) == -1 ||
	    set_validity(cert, days, now, err, errsize) == -1)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

static int
cert_sign(X509 *cert, EVP_PKEY *key, char *err, size_t errsize)
{
	if (X509_sign(cert, key, ca_sign_md(key)) <= 0) {
		ca_ssl_err(err, errsize, "X509_sign");
		return -1;
	}
	return 0;
}

X509 *
ca_cert_make_root(EVP_PKEY *key, const char *name, int days, time_t now,
    char *err, size_t errsize)
{
	X509 *cert;

	if ((cert = cert_start(key, name, days, now, err, errsize)) == NULL)
		return NULL;
	if (X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1) {
		ca_ssl_err(err, errsize, "X509_set_issuer_name");
		goto fail;
	}
	/* RFC 5280 4.2.1.9: the CA MUST mark basicConstraints critical;
	 * pathlen 0 because this CA only ever signs server certificates. */
	if (add_ext(cert, cert, NID_basic_constraints,
	    "critical,CA:TRUE,pathlen:0", err, errsize) == -1 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign",
	    err, errsize) == -1 ||
	    add_ext(cert, cert, NID_subject_key_identifier, "hash", err,
	    errsize) == -1 ||
	    add_ext(cert, cert, NID_authority_key_identifier, "keyid:always",
	    err, errsize) == -1 ||
	    cert_sign(cert, key, err, errsize) == -1)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

X509 *
ca_cert_make_leaf(EVP_PKEY *key, const char *host, GENERAL_NAMES *names,
    X509 *issuer, EVP_PKEY *issuer_key, int days, time_t now,
    const char *crl_url, char *err, size_t errsize)
{
	X509 *cert;
	const char *ku;

	if ((cert = cert_start(key, host, days, now, err, errsize)) == NULL)
		return NULL;
	if (X509_set_issuer_name(cert, X509_get_subject_name(issuer != NULL ?
	    issuer : cert)) != 1) {
		ca_ssl_err(err, errsize, "X509_set_issuer_name");
		goto fail;
	}
	/* keyEncipherment only where the key can do RSA key transport. */
	ku = EVP_PKEY_base_id(key) == EVP_PKEY_RSA ?
	    "critical,digitalSignature,keyEncipherment" :
	    "critical,digitalSignature";
	if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE",
	    err, errsize) == -1 ||
	    add_ext(cert, issuer, NID_key_usage, ku, err, errsize) == -1 ||
	    add_ext(cert, issuer, NID_ext_key_usage, "serverAuth", err,
	    errsize) == -1 ||
	    add_ext(cert, issuer, NID_subject_key_identifier, "hash", err,
	    errsize) == -1)
		goto fail;
	/* A self-signed certificate identifies itself; others name the CA's
	 * key so that clients find the issuer. */
	if (issuer != NULL && add_ext(cert, issuer,
	    NID_authority_key_identifier, "keyid:always", err, errsize) == -1)
		goto fail;
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0,
	    X509V3_ADD_REPLACE) != 1) {
		ca_ssl_err(err, errsize, "subjectAltName");
		goto fail;
	}
	if (crl_url != NULL && ca_crldp_add(cert, crl_url, err, errsize) == -1)
		goto fail;
	if (cert_sign(cert, issuer_key, err, errsize) == -1)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

X509_REQ *
ca_req_make(EVP_PKEY *key, const char *host, GENERAL_NAMES *names,
    char *err, size_t errsize)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext;
	X509_REQ *req;

	if ((req = X509_REQ_new()) == NULL) {
		ca_ssl_err(err, errsize, "X509_REQ_new");
		return NULL;
	}
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1) {
		ca_ssl_err(err, errsize, "X509_REQ_set_pubkey");
		goto fail;
	}
	if (set_name(X509_REQ_get_subject_name(req), host, err, errsize) == -1)
		goto fail;
	/* Public CAs take the names from the SAN request extension. */
	if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names)) == NULL) {
		ca_ssl_err(err, errsize, "subjectAltName");
		goto fail;
	}
	if (sk_X509_EXTENSION_push(exts, ext) == 0) {
		X509_EXTENSION_free(ext);
		ca_ssl_err(err, errsize, "sk_X509_EXTENSION_push");
		goto fail;
	}
	if (X509_REQ_add_extensions(req, exts) != 1) {
		ca_ssl_err(err, errsize, "X509_REQ_add_extensions");
		goto fail;
	}
	if (X509_REQ_sign(req, key, ca_sign_md(key)) <= 0) {
		ca_ssl_err(err, errsize, "X509_REQ_sign");
		goto fail;
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return req;
fail:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return NULL;
}

int
ca_serial_hex(const ASN1_INTEGER *serial, char *out, size_t size)
{
	BIGNUM *bn;
	char *hex;
	int rc = -1;

	if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL)
		return -1;
	if ((hex = BN_bn2hex(bn)) != NULL) {
		if (strlen(hex) < size) {
			snprintf(out, size, "%s", hex);
			rc = 0;
		}
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return rc;
}

int
ca_time_index(const ASN1_TIME *t, char *out, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	if (strftime(out, size, "%Y%m%d%H%M%SZ", &tm) != CA_INDEX_TIME_LEN)
		return -1;
	return 0;
}
