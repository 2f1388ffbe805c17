/*
 * The private CA (src/ca): every certificate field checked with the
 * OpenSSL API (RFC 5280 profile, security-tests.md 40), chains verified
 * against a store holding only the root, revocation through the CRL, and
 * every refusal (weak keys, long validity, bad names, expired CA, a second
 * CA, wrong passphrase).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/ca_private.h"
#include "core/util.h"
#include "unit.h"

#define DAY	86400

static char err[1024];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/tegami-ca-unit-XXXXXX", *d;

	d = mkdtemp(tmpl);
	if (d == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	return xstrdup(d);
}

static void
rmdir_all(char **dp)
{
	nftw(*dp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	xfree(dp);
}

static X509 *
load(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	x = ca_cert_load(path, err, sizeof(err));
	if (x == NULL)
		fprintf(stderr, "load %s: %s\n", path, err);
	return x;
}

static mode_t
file_mode(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (stat(path, &st) == -1)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static bool
exists(const char *dir, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return access(path, F_OK) == 0;
}

/* -1 absent, else the critical flag. */
static int
ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	if (i < 0)
		return -1;
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static long
validity_seconds(X509 *x)
{
	int days, secs;

	if (ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)) != 1)
		return -1;
	return (long)days * DAY + secs;
}

static void
check_serial(X509 *x)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(x);

	CHECK(ASN1_STRING_length(s) == 16);
	CHECK(ASN1_STRING_type(s) == V_ASN1_INTEGER);	/* positive */
	CHECK((ASN1_STRING_get0_data(s)[0] & 0x80) == 0);
}

static bool
same_keyid(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
	return a != NULL && b != NULL && ASN1_OCTET_STRING_cmp(a, b) == 0;
}

/* X509_verify_cert of leaf against a store holding only root. */
static int
verify(X509 *root, X509 *leaf, X509_CRL *crl, int *error_r)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(store, root);
	if (crl != NULL) {
		X509_STORE_add_crl(store, crl);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT);
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(ctx);
	if (error_r != NULL)
		*error_r = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

static int
init_default(const char *dir)
{
	struct ca_init_opts o;

	memset(&o, 0, sizeof(o));
	o.name = "Unit Root CA";
	return ca_init(dir, &o, err, sizeof(err));
}

static int
issue(const char *dir, const char *host, const char *const *sans, size_t n,
    int days)
{
	struct ca_issue_opts o;

	memset(&o, 0, sizeof(o));
	o.sans = sans;
	o.n_sans = n;
	o.days = days;
	return ca_issue(dir, host, &o, false, NULL, err, sizeof(err));
}

static void
test_root_profile(void)
{
	char *dir = tmpdir();
	X509 *ca;
	EVP_PKEY *pk;
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_KEYID *akid;
	char name[64];
	size_t len;

	CHECK(init_default(dir) == 0);
	CHECK(file_mode(dir, "ca") == 0700);
	CHECK(file_mode(dir, "ca/ca.key") == 0600);
	CHECK(file_mode(dir, "ca/ca.crt") == 0644);
	CHECK(!ca_key_encrypted(dir));
	if ((ca = load(dir, "ca/ca.crt")) == NULL) {
		CHECK(0);
		rmdir_all(&dir);
		return;
	}
	CHECK(X509_get_version(ca) == X509_VERSION_3);
	CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(ca),
	    NID_commonName, name, sizeof(name)) > 0);
	CHECK_STR(name, "Unit Root CA");
	CHECK(X509_NAME_cmp(X509_get_subject_name(ca),
	    X509_get_issuer_name(ca)) == 0);
	/* RFC 5280 4.2.1.9: critical, CA:TRUE, pathlen 0. */
	CHECK(ext_critical(ca, NID_basic_constraints) == 1);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
	CHECK(bc != NULL && bc->ca);
	CHECK(bc != NULL && bc->pathlen != NULL &&
	    ASN1_INTEGER_get(bc->pathlen) == 0);
	BASIC_CONSTRAINTS_free(bc);
	CHECK(X509_get_pathlen(ca) == 0);
	CHECK(ext_critical(ca, NID_key_usage) == 1);
	CHECK(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	CHECK(X509_get_extended_key_usage(ca) == UINT32_MAX);	/* none */
	CHECK(ext_critical(ca, NID_subject_key_identifier) == 0);
	akid = X509_get_ext_d2i(ca, NID_authority_key_identifier, NULL, NULL);
	CHECK(akid != NULL && same_keyid(akid->keyid,
	    X509_get0_subject_key_id(ca)));
	AUTHORITY_KEYID_free(akid);
	CHECK(X509_get_signature_nid(ca) == NID_ecdsa_with_SHA256);
	pk = X509_get0_pubkey(ca);
	CHECK(EVP_PKEY_base_id(pk) == EVP_PKEY_EC);
	CHECK(EVP_PKEY_get_group_name(pk, name, sizeof(name), &len) == 1);
	CHECK_STR(name, "prime256v1");
	CHECK(X509_verify(ca, pk) == 1);
	check_serial(ca);
	CHECK(validity_seconds(ca) == 3650L * DAY + CA_BACKDATE_SECONDS);
	CHECK(X509_cmp_current_time(X509_get0_notBefore(ca)) < 0);
	/* A second CA would invalidate every certificate in the field. */
	CHECK(init_default(dir) == -1);
	CHECK(strstr(err, "already exists") != NULL);
	X509_free(ca);
	rmdir_all(&dir);
}

static void
test_root_rsa_and_key_sizes(void)
{
	struct ca_init_opts o;
	struct ca_key_spec k;
	char *dir = tmpdir();
	X509 *ca;

	memset(&k, 0, sizeof(k));
	k.type = CA_KEY_RSA;
	k.bits = 1024;
	CHECK(ca_key_spec_check(&k) != NULL);
	k.bits = 2047;
	CHECK(ca_key_spec_check(&k) != NULL);
	k.bits = 2048;
	CHECK(ca_key_spec_check(&k) == NULL);
	k.bits = 3000;
	CHECK(ca_key_spec_check(&k) != NULL);
	k.bits = 3072;
	CHECK(ca_key_spec_check(&k) == NULL);
	k.bits = 4096;
	CHECK(ca_key_spec_check(&k) == NULL);
	k.bits = 8192;
	CHECK(ca_key_spec_check(&k) != NULL);

	memset(&o, 0, sizeof(o));
	o.key.type = CA_KEY_RSA;
	o.key.bits = 1024;
	CHECK(ca_init(dir, &o, err, sizeof(err)) == -1);
	CHECK(strstr(err, "2048") != NULL);
	CHECK(!exists(dir, "ca/ca.key") && !exists(dir, "ca/ca.crt"));
	o.key.bits = 3072;
	o.days = 20;
	CHECK(ca_init(dir, &o, err, sizeof(err)) == 0);
	if ((ca = load(dir, "ca/ca.crt")) != NULL) {
		CHECK(EVP_PKEY_base_id(X509_get0_pubkey(ca)) == EVP_PKEY_RSA);
		CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(ca)) == 3072);
		CHECK(X509_get_signature_nid(ca) ==
		    NID_sha256WithRSAEncryption);
		CHECK(validity_seconds(ca) == 20L * DAY + CA_BACKDATE_SECONDS);
		X509_free(ca);
	} else
		CHECK(0);
	rmdir_all(&dir);

	dir = tmpdir();
	memset(&o, 0, sizeof(o));
	o.days = CA_MAX_CA_DAYS + 1;
	CHECK(ca_init(dir, &o, err, sizeof(err)) == -1);
	o.days = 10;
	o.name = "";
	CHECK(ca_init(dir, &o, err, sizeof(err)) == -1);
	o.name = "0123456789012345678901234567890123456789012345678901234567890"
	    "1234";
	CHECK(ca_init(dir, &o, err, sizeof(err)) == -1);
	CHECK(!ca_exists(dir));
	rmdir_all(&dir);
}

static void
test_leaf_profile(void)
{
	static const char *const sans[] = { "IMAP.local.test", "IP:127.0.0.1",
	    "::1", "mail.local.test" };
	unsigned char v4[4] = { 127, 0, 0, 1 }, v6[16] = { 0 };
	char *dir = tmpdir(), serial[64];
	struct ca_index_entry *list = NULL;
	X509 *ca = NULL, *leaf = NULL, *chain2 = NULL;
	GENERAL_NAMES *names;
	AUTHORITY_KEYID *akid;
	BASIC_CONSTRAINTS *bc;
	STACK_OF(X509_INFO) *infos;
	BIO *bio;
	size_t n;
	int e;

	v6[15] = 1;
	CHECK(init_default(dir) == 0);
	CHECK(issue(dir, "Mail.Local.Test", sans, 4, 0) == 0);
	CHECK(file_mode(dir, "tls") == 0755);
	CHECK(file_mode(dir, "tls/mail.local.test.key") == 0600);
	CHECK(file_mode(dir, "tls/mail.local.test.crt") == 0644);
	ca = load(dir, "ca/ca.crt");
	leaf = load(dir, "tls/mail.local.test.crt");
	if (ca == NULL || leaf == NULL) {
		CHECK(0);
		goto out;
	}
	CHECK(X509_get_version(leaf) == X509_VERSION_3);
	CHECK(X509_NAME_cmp(X509_get_issuer_name(leaf),
	    X509_get_subject_name(ca)) == 0);
	CHECK(ext_critical(leaf, NID_basic_constraints) == 1);
	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
	CHECK(bc != NULL && !bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	CHECK(ext_critical(leaf, NID_key_usage) == 1);
	CHECK(X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE);
	CHECK(X509_get_extended_key_usage(leaf) == XKU_SSL_SERVER);
	CHECK(ext_critical(leaf, NID_subject_key_identifier) == 0);
	CHECK(X509_get0_subject_key_id(leaf) != NULL);
	akid = X509_get_ext_d2i(leaf, NID_authority_key_identifier, NULL,
	    NULL);
	CHECK(akid != NULL && same_keyid(akid->keyid,
	    X509_get0_subject_key_id(ca)));
	AUTHORITY_KEYID_free(akid);
	CHECK(X509_get_signature_nid(leaf) == NID_ecdsa_with_SHA256);
	CHECK(EVP_PKEY_base_id(X509_get0_pubkey(leaf)) == EVP_PKEY_EC);
	CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(leaf)) == 256);
	check_serial(leaf);
	CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf),
	    X509_get0_serialNumber(ca)) != 0);
	CHECK(validity_seconds(leaf) == 397L * DAY + CA_BACKDATE_SECONDS);
	/* SAN: the host first, lower-cased; duplicates dropped. */
	CHECK(ext_critical(leaf, NID_subject_alt_name) == 0);
	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	CHECK(names != NULL && sk_GENERAL_NAME_num(names) == 4);
	if (names != NULL && sk_GENERAL_NAME_num(names) == 4) {
		GENERAL_NAME *g;
		ASN1_STRING *s;
		int type;

		g = sk_GENERAL_NAME_value(names, 0);
		s = GENERAL_NAME_get0_value(g, &type);
		CHECK(type == GEN_DNS && ASN1_STRING_length(s) == 15 &&
		    memcmp(ASN1_STRING_get0_data(s), "mail.local.test",
		    15) == 0);
		g = sk_GENERAL_NAME_value(names, 1);
		s = GENERAL_NAME_get0_value(g, &type);
		CHECK(type == GEN_DNS && ASN1_STRING_length(s) == 15 &&
		    memcmp(ASN1_STRING_get0_data(s), "imap.local.test",
		    15) == 0);
		g = sk_GENERAL_NAME_value(names, 2);
		s = GENERAL_NAME_get0_value(g, &type);
		CHECK(type == GEN_IPADD && ASN1_STRING_length(s) == 4 &&
		    memcmp(ASN1_STRING_get0_data(s), v4, 4) == 0);
		g = sk_GENERAL_NAME_value(names, 3);
		s = GENERAL_NAME_get0_value(g, &type);
		CHECK(type == GEN_IPADD && ASN1_STRING_length(s) == 16 &&
		    memcmp(ASN1_STRING_get0_data(s), v6, 16) == 0);
	}
	GENERAL_NAMES_free(names);
	CHECK(X509_check_host(leaf, "mail.local.test", 0, 0, NULL) == 1);
	CHECK(X509_check_host(leaf, "imap.local.test", 0, 0, NULL) == 1);
	CHECK(X509_check_host(leaf, "pop.local.test", 0, 0, NULL) != 1);
	CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
	/* The chain verifies against a store holding only the root. */
	CHECK(verify(ca, leaf, NULL, &e) == 1);
	/* The .crt is leaf then root: what a server sends. */
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/tls/mail.local.test.crt",
		    dir);
		bio = BIO_new_file(path, "r");
		infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
		BIO_free(bio);
		CHECK(infos != NULL && sk_X509_INFO_num(infos) == 2);
		if (infos != NULL && sk_X509_INFO_num(infos) == 2) {
			chain2 = sk_X509_INFO_value(infos, 1)->x509;
			CHECK(X509_cmp(chain2, ca) == 0);
			CHECK(X509_cmp(sk_X509_INFO_value(infos, 0)->x509,
			    leaf) == 0);
		}
		sk_X509_INFO_pop_free(infos, X509_INFO_free);
	}
	/* The key belongs to the certificate. */
	{
		char path[PATH_MAX];
		EVP_PKEY *k;

		snprintf(path, sizeof(path), "%s/tls/mail.local.test.key",
		    dir);
		k = ca_key_load(path, NULL, err, sizeof(err));
		CHECK(k != NULL && X509_check_private_key(leaf, k) == 1);
		EVP_PKEY_free(k);
	}
	/* The index records it. */
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0);
	CHECK(n == 1);
	CHECK(ca_serial_hex(X509_get0_serialNumber(leaf), serial,
	    sizeof(serial)) == 0);
	if (n == 1) {
		CHECK(list[0].status == 'V');
		CHECK_STR(list[0].serial, serial);
		CHECK_STR(list[0].host, "mail.local.test");
		CHECK_STR(list[0].revoked, "-");
	}
	free(list);
	/* Issuing again for the same host is a renewal, not an issue. */
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == -1);
	CHECK(strstr(err, "renew") != NULL);
out:
	X509_free(ca);
	X509_free(leaf);
	rmdir_all(&dir);
}

/* Server keys for the unprivileged front: 0640 and its group; the CA key
 * stays 0600 whatever the options. */
static void
test_key_group(void)
{
	struct ca_issue_opts o;
	char *dir = tmpdir(), path[PATH_MAX];
	struct stat st;
	bool reused;

	CHECK(ca_setup_default_gid(dir, "mail.local.test", getegid(), err,
	    sizeof(err)) == 0);
	CHECK(file_mode(dir, "ca/ca.key") == 0600);
	CHECK(file_mode(dir, "tls/mail.local.test.key") == 0640);
	snprintf(path, sizeof(path), "%s/tls/mail.local.test.key", dir);
	CHECK(stat(path, &st) == 0 && st.st_gid == getegid());
	memset(&o, 0, sizeof(o));
	o.key_group_readable = true;
	o.key_gid = getegid();
	CHECK(ca_renew(dir, "mail.local.test", &o, NULL, err, sizeof(err)) ==
	    0);
	CHECK(file_mode(dir, "tls/mail.local.test.key") == 0640);
	CHECK(ca_selfsign(dir, "self.local.test", &o, err, sizeof(err)) == 0);
	CHECK(file_mode(dir, "tls/self.local.test.key") == 0640);
	CHECK(ca_csr(dir, "pub.local.test", &o, &reused, err, sizeof(err)) ==
	    0);
	CHECK(file_mode(dir, "tls/pub.local.test.key") == 0640);
	o.key_group_readable = false;
	CHECK(ca_issue(dir, "own.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	CHECK(file_mode(dir, "tls/own.local.test.key") == 0600);
	/* A group the caller may not give away (as non-root) fails
	 * cleanly and leaves no file behind. */
	o.key_group_readable = true;
	if (geteuid() != 0) {
		o.key_gid = 0;
		CHECK(ca_issue(dir, "root.local.test", &o, false, NULL, err,
		    sizeof(err)) == -1);
		CHECK(!exists(dir, "tls/root.local.test.key"));
	} else {
		/* root gives any group. */
		o.key_gid = 54321;
		CHECK(ca_issue(dir, "root.local.test", &o, false, NULL, err,
		    sizeof(err)) == 0);
		snprintf(path, sizeof(path), "%s/tls/root.local.test.key", dir);
		CHECK(stat(path, &st) == 0 && st.st_gid == 54321 &&
		    (st.st_mode & 07777) == 0640);
	}
	rmdir_all(&dir);
}

static void
test_leaf_rsa(void)
{
	struct ca_issue_opts o;
	char *dir = tmpdir();
	X509 *leaf, *ca;

	CHECK(init_default(dir) == 0);
	memset(&o, 0, sizeof(o));
	o.key.type = CA_KEY_RSA;
	o.key.bits = 1024;
	CHECK(ca_issue(dir, "rsa.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	CHECK(!exists(dir, "tls/rsa.local.test.key"));
	o.key.bits = 2048;
	CHECK(ca_issue(dir, "rsa.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	leaf = load(dir, "tls/rsa.local.test.crt");
	ca = load(dir, "ca/ca.crt");
	if (leaf != NULL && ca != NULL) {
		CHECK(EVP_PKEY_base_id(X509_get0_pubkey(leaf)) ==
		    EVP_PKEY_RSA);
		CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(leaf)) == 2048);
		CHECK(X509_get_key_usage(leaf) == (KU_DIGITAL_SIGNATURE |
		    KU_KEY_ENCIPHERMENT));
		/* Signed by the ECDSA CA. */
		CHECK(X509_get_signature_nid(leaf) == NID_ecdsa_with_SHA256);
		CHECK(verify(ca, leaf, NULL, NULL) == 1);
	} else
		CHECK(0);
	X509_free(leaf);
	X509_free(ca);
	rmdir_all(&dir);
}

static void
test_days_limits(void)
{
	struct ca_issue_opts o;
	char *dir = tmpdir();
	X509 *leaf;

	CHECK(init_default(dir) == 0);
	CHECK(issue(dir, "a.local.test", NULL, 0, 397) == 0);
	CHECK(issue(dir, "b.local.test", NULL, 0, 398) == -1);
	CHECK(strstr(err, "--force-days") != NULL);
	CHECK(!exists(dir, "tls/b.local.test.crt"));
	CHECK(issue(dir, "b.local.test", NULL, 0, 1) == 0);
	memset(&o, 0, sizeof(o));
	o.days = 825;
	o.force_days = true;
	CHECK(ca_issue(dir, "c.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	if ((leaf = load(dir, "tls/c.local.test.crt")) != NULL) {
		CHECK(validity_seconds(leaf) == 825L * DAY +
		    CA_BACKDATE_SECONDS);
		X509_free(leaf);
	} else
		CHECK(0);
	o.days = CA_MAX_FORCED_DAYS + 1;
	CHECK(ca_issue(dir, "d.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	o.days = -1;
	CHECK(ca_issue(dir, "d.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	rmdir_all(&dir);
}

static void
test_names_refused(void)
{
	static const char *const bad_hosts[] = { "", "a/b", "..", ".", "-a",
	    "a-", "a..b", "x_y.test", "1.2.3.4", "IP:1.2.3.4", "::1",
	    "a b", "host.", ".host", "*.local.test", "caf\xc3\xa9.test",
	    "a\tb", "../../etc/passwd" };
	static const char *const bad_sans[] = { "IP:999.1.1.1", "IP:x",
	    "bad name", "", "*.local.test", "a..b", "DNS:" };
	char *dir = tmpdir(), long_label[80], long_name[300], host[300];
	const char *san;
	size_t i;

	CHECK(init_default(dir) == 0);
	for (i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		if (issue(dir, bad_hosts[i], NULL, 0, 0) != -1) {
			fprintf(stderr, "accepted host \"%s\"\n", bad_hosts[i]);
			CHECK(0);
		}
	}
	for (i = 0; i < sizeof(bad_sans) / sizeof(bad_sans[0]); i++) {
		san = bad_sans[i];
		if (issue(dir, "ok.local.test", &san, 1, 0) != -1) {
			fprintf(stderr, "accepted san \"%s\"\n", san);
			CHECK(0);
		}
	}
	/* Labels: 63 characters ok, 64 not; names: 253 ok, 254 not. */
	memset(long_label, 'a', 63);
	snprintf(long_label + 63, sizeof(long_label) - 63, ".test");
	CHECK(ca_hostname_check(long_label, host) == NULL);
	memset(long_label, 'a', 64);
	snprintf(long_label + 64, sizeof(long_label) - 64, ".test");
	CHECK(ca_hostname_check(long_label, host) != NULL);
	for (i = 0; i < 253; i++)
		long_name[i] = (i % 50 == 49) ? '.' : 'a';
	long_name[253] = '\0';
	CHECK(ca_hostname_check(long_name, host) == NULL);
	long_name[253] = 'a';
	long_name[254] = '\0';
	CHECK(ca_hostname_check(long_name, host) != NULL);
	CHECK(ca_hostname_check("MAIL.Example.ORG", host) == NULL);
	CHECK_STR(host, "mail.example.org");
	/* Nothing was written for any refused name. */
	{
		struct ca_index_entry *list;
		size_t n;

		CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0);
		CHECK(n == 0);
		free(list);
	}
	rmdir_all(&dir);
}

static void
test_no_ca(void)
{
	char *dir = tmpdir();

	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == -1);
	CHECK(strstr(err, "ca init") != NULL);
	CHECK(ca_revoke(dir, "01", err, sizeof(err)) == -1);
	CHECK(ca_crl(dir, NULL, 0, err, sizeof(err)) == -1);
	CHECK(ca_export(dir, "/tmp/never", false, err, sizeof(err)) == -1);
	CHECK(ca_list(dir, stdout, err, sizeof(err)) == -1);
	rmdir_all(&dir);
}

static void
test_passphrase(void)
{
	struct ca_init_opts io;
	struct ca_issue_opts o;
	char *dir = tmpdir(), line[64];
	FILE *f;

	memset(&io, 0, sizeof(io));
	io.passphrase = "short";
	CHECK(ca_init(dir, &io, err, sizeof(err)) == -1);
	CHECK(!ca_exists(dir));
	io.passphrase = "correct horse battery";
	CHECK(ca_init(dir, &io, err, sizeof(err)) == 0);
	CHECK(ca_key_encrypted(dir));
	snprintf(line, sizeof(line), "%s/ca/ca.key", dir);
	if ((f = fopen(line, "r")) != NULL) {
		CHECK(fgets(line, sizeof(line), f) != NULL);
		CHECK_STR(line, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
		fclose(f);
	} else
		CHECK(0);
	memset(&o, 0, sizeof(o));
	CHECK(ca_issue(dir, "mail.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "passphrase") != NULL);
	o.passphrase = "wrong horse battery";
	CHECK(ca_issue(dir, "mail.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "wrong passphrase") != NULL);
	CHECK(!exists(dir, "tls/mail.local.test.crt"));
	o.passphrase = "correct horse battery";
	CHECK(ca_issue(dir, "mail.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	CHECK(ca_crl(dir, NULL, 0, err, sizeof(err)) == -1);
	CHECK(ca_crl(dir, "nope nope nope", 0, err, sizeof(err)) == -1);
	CHECK(ca_crl(dir, "correct horse battery", 0, err, sizeof(err)) == 0);
	/* Reading the public half needs no passphrase. */
	snprintf(line, sizeof(line), "%s/root.pem", dir);
	CHECK(ca_export(dir, line, false, err, sizeof(err)) == 0);
	rmdir_all(&dir);
}

static void
test_expired_ca(void)
{
	struct ca_init_opts io;
	char *dir = tmpdir();
	X509 *ca, *leaf;

	/* Created 20 days ago for 10 days: expired 10 days ago. */
	memset(&io, 0, sizeof(io));
	io.days = 10;
	io.now = time(NULL) - 20 * DAY;
	CHECK(ca_init(dir, &io, err, sizeof(err)) == 0);
	if ((ca = load(dir, "ca/ca.crt")) != NULL) {
		CHECK(X509_cmp_current_time(X509_get0_notAfter(ca)) < 0);
		X509_free(ca);
	}
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == -1);
	CHECK(strstr(err, "expired") != NULL);
	CHECK(!exists(dir, "tls/mail.local.test.crt"));
	rmdir_all(&dir);

	/* A CA with 100 days left: a leaf ends with it, not after. */
	dir = tmpdir();
	io.days = 100;
	io.now = 0;
	CHECK(ca_init(dir, &io, err, sizeof(err)) == 0);
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == 0);
	ca = load(dir, "ca/ca.crt");
	leaf = load(dir, "tls/mail.local.test.crt");
	if (ca != NULL && leaf != NULL) {
		CHECK(ASN1_TIME_compare(X509_get0_notAfter(leaf),
		    X509_get0_notAfter(ca)) == 0);
		CHECK(verify(ca, leaf, NULL, NULL) == 1);
	} else
		CHECK(0);
	X509_free(ca);
	X509_free(leaf);
	rmdir_all(&dir);
}

static X509_CRL *
load_crl(const char *dir)
{
	char path[PATH_MAX];
	X509_CRL *crl;
	BIO *bio;

	snprintf(path, sizeof(path), "%s/ca/crl.pem", dir);
	if ((bio = BIO_new_file(path, "r")) == NULL)
		return NULL;
	crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return crl;
}

static long
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
	    NULL);
	long v = n != NULL ? ASN1_INTEGER_get(n) : -1;

	ASN1_INTEGER_free(n);
	return v;
}

static void
test_revoke_crl(void)
{
	char *dir = tmpdir(), serial[64], colons[128];
	struct ca_index_entry *list = NULL;
	X509 *ca = NULL, *leaf = NULL, *other = NULL;
	X509_CRL *crl = NULL;
	AUTHORITY_KEYID *akid;
	STACK_OF(X509_REVOKED) *revs;
	size_t n, i, j;
	int days, secs, e;

	CHECK(init_default(dir) == 0);
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == 0);
	CHECK(issue(dir, "other.local.test", NULL, 0, 0) == 0);
	ca = load(dir, "ca/ca.crt");
	leaf = load(dir, "tls/mail.local.test.crt");
	other = load(dir, "tls/other.local.test.crt");
	if (ca == NULL || leaf == NULL || other == NULL) {
		CHECK(0);
		goto out;
	}
	/* An empty CRL first. */
	CHECK(ca_crl(dir, NULL, 0, err, sizeof(err)) == 0);
	crl = load_crl(dir);
	CHECK(crl != NULL && crl_number(crl) == 1);
	CHECK(crl != NULL && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl))
	    <= 0);
	CHECK(verify(ca, leaf, crl, &e) == 1);
	X509_CRL_free(crl);
	CHECK(file_mode(dir, "ca/crl.pem") == 0644);

	/* Revoke by the serial as a client shows it: lower case, colons. */
	CHECK(ca_serial_hex(X509_get0_serialNumber(leaf), serial,
	    sizeof(serial)) == 0);
	for (i = 0, j = 0; serial[i] != '\0'; i++) {
		if (i > 0 && i % 2 == 0)
			colons[j++] = ':';
		colons[j++] = (char)(serial[i] >= 'A' ? serial[i] + 32 :
		    serial[i]);
	}
	colons[j] = '\0';
	CHECK(ca_revoke(dir, colons, err, sizeof(err)) == 0);
	CHECK(ca_revoke(dir, serial, err, sizeof(err)) == -1);
	CHECK(strstr(err, "already revoked") != NULL);
	CHECK(ca_revoke(dir, "00DEADBEEF", err, sizeof(err)) == -1);
	CHECK(ca_revoke(dir, "xyz", err, sizeof(err)) == -1);
	CHECK(ca_revoke(dir, "", err, sizeof(err)) == -1);
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK(list[0].status == 'R' && strlen(list[0].revoked) == 15);
		CHECK(list[1].status == 'V');
	}
	free(list);

	CHECK(ca_crl(dir, NULL, 0, err, sizeof(err)) == 0);
	crl = load_crl(dir);
	if (crl == NULL) {
		CHECK(0);
		goto out;
	}
	CHECK(X509_CRL_get_version(crl) == X509_CRL_VERSION_2);
	CHECK(crl_number(crl) == 2);
	CHECK(X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1);
	CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca)) == 0);
	akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL,
	    NULL);
	CHECK(akid != NULL && same_keyid(akid->keyid,
	    X509_get0_subject_key_id(ca)));
	AUTHORITY_KEYID_free(akid);
	CHECK(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
	    X509_CRL_get0_nextUpdate(crl)) == 1 && days == 30 && secs == 0);
	revs = X509_CRL_get_REVOKED(crl);
	CHECK(sk_X509_REVOKED_num(revs) == 1);
	if (sk_X509_REVOKED_num(revs) == 1)
		CHECK(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(revs, 0)),
		    X509_get0_serialNumber(leaf)) == 0);
	CHECK(verify(ca, leaf, crl, &e) != 1);
	CHECK(e == X509_V_ERR_CERT_REVOKED);
	CHECK(verify(ca, other, crl, &e) == 1);
out:
	X509_CRL_free(crl);
	X509_free(ca);
	X509_free(leaf);
	X509_free(other);
	rmdir_all(&dir);
}

static void
test_renew(void)
{
	static const char *const sans[] = { "imap.local.test", "10.0.0.1" };
	struct ca_issue_opts o;
	char *dir = tmpdir(), before[512], after[512], s1[64], s2[64];
	struct ca_index_entry *list = NULL;
	X509 *old, *renewed, *ca;
	size_t n;

	CHECK(init_default(dir) == 0);
	memset(&o, 0, sizeof(o));
	CHECK(ca_renew(dir, "mail.local.test", &o, NULL, err,
	    sizeof(err)) == -1);
	CHECK(issue(dir, "mail.local.test", sans, 2, 30) == 0);
	old = load(dir, "tls/mail.local.test.crt");
	CHECK(ca_renew(dir, "mail.local.test", &o, s2, err, sizeof(err)) ==
	    0);
	renewed = load(dir, "tls/mail.local.test.crt");
	ca = load(dir, "ca/ca.crt");
	if (old != NULL && renewed != NULL && ca != NULL) {
		ca_names_format(old, before, sizeof(before));
		ca_names_format(renewed, after, sizeof(after));
		CHECK_STR(before, "DNS:mail.local.test, DNS:imap.local.test, "
		    "IP:10.0.0.1");
		CHECK_STR(after, before);
		CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(old),
		    X509_get0_serialNumber(renewed)) != 0);
		CHECK(!EVP_PKEY_eq(X509_get0_pubkey(old),
		    X509_get0_pubkey(renewed)));
		CHECK(validity_seconds(renewed) == 397L * DAY +
		    CA_BACKDATE_SECONDS);
		/* The old certificate stays valid until it expires. */
		CHECK(verify(ca, old, NULL, NULL) == 1);
		CHECK(verify(ca, renewed, NULL, NULL) == 1);
		CHECK(ca_serial_hex(X509_get0_serialNumber(old), s1,
		    sizeof(s1)) == 0);
	} else
		CHECK(0);
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(list[0].serial, s1);
		CHECK(list[0].status == 'V');
		CHECK_STR(list[1].serial, s2);
	}
	free(list);
	/* A self-signed certificate is not this CA's to renew. */
	CHECK(ca_selfsign(dir, "self.local.test", &o, err, sizeof(err)) == 0);
	CHECK(ca_renew(dir, "self.local.test", &o, NULL, err, sizeof(err)) ==
	    -1);
	CHECK(strstr(err, "not issued by this CA") != NULL);
	X509_free(old);
	X509_free(renewed);
	X509_free(ca);
	rmdir_all(&dir);
}

static void
test_selfsign(void)
{
	static const char *const sans[] = { "www.local.test" };
	struct ca_issue_opts o;
	char *dir = tmpdir(), names[256];
	X509 *x;

	memset(&o, 0, sizeof(o));
	o.sans = sans;
	o.n_sans = 1;
	CHECK(ca_selfsign(dir, "self.local.test", &o, err, sizeof(err)) == 0);
	CHECK(file_mode(dir, "tls/self.local.test.key") == 0600);
	CHECK(!ca_exists(dir));
	if ((x = load(dir, "tls/self.local.test.crt")) != NULL) {
		CHECK(X509_NAME_cmp(X509_get_subject_name(x),
		    X509_get_issuer_name(x)) == 0);
		CHECK(X509_get_ext_by_NID(x, NID_authority_key_identifier,
		    -1) < 0);
		CHECK(X509_verify(x, X509_get0_pubkey(x)) == 1);
		CHECK(X509_check_ca(x) == 0);
		CHECK(X509_get_extended_key_usage(x) == XKU_SSL_SERVER);
		CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
		ca_names_format(x, names, sizeof(names));
		CHECK_STR(names, "DNS:self.local.test, DNS:www.local.test");
		check_serial(x);
		X509_free(x);
	} else
		CHECK(0);
	CHECK(ca_selfsign(dir, "self.local.test", &o, err, sizeof(err)) ==
	    -1);
	o.days = 398;
	CHECK(ca_selfsign(dir, "two.local.test", &o, err, sizeof(err)) == -1);
	rmdir_all(&dir);
}

static void
test_csr(void)
{
	static const char *const sans[] = { "www.local.test", "IP:192.0.2.1" };
	struct ca_issue_opts o;
	char *dir = tmpdir(), path[PATH_MAX];
	STACK_OF(X509_EXTENSION) *exts;
	X509_REQ *req;
	EVP_PKEY *key;
	X509 *leaf;
	BIO *bio;
	bool reused = true;
	char name[64];

	memset(&o, 0, sizeof(o));
	o.sans = sans;
	o.n_sans = 2;
	CHECK(ca_csr(dir, "pub.local.test", &o, &reused, err, sizeof(err)) ==
	    0);
	CHECK(!reused);
	CHECK(file_mode(dir, "tls/pub.local.test.key") == 0600);
	snprintf(path, sizeof(path), "%s/tls/pub.local.test.csr", dir);
	bio = BIO_new_file(path, "r");
	req = bio != NULL ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) :
	    NULL;
	BIO_free(bio);
	if (req != NULL) {
		CHECK(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1);
		CHECK(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
		    NID_commonName, name, sizeof(name)) > 0);
		CHECK_STR(name, "pub.local.test");
		exts = X509_REQ_get_extensions(req);
		CHECK(exts != NULL && sk_X509_EXTENSION_num(exts) == 1);
		if (exts != NULL && sk_X509_EXTENSION_num(exts) == 1) {
			GENERAL_NAMES *g = X509V3_get_d2i(exts,
			    NID_subject_alt_name, NULL, NULL);

			CHECK(g != NULL && sk_GENERAL_NAME_num(g) == 3);
			GENERAL_NAMES_free(g);
		}
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		snprintf(path, sizeof(path), "%s/tls/pub.local.test.key", dir);
		key = ca_key_load(path, NULL, err, sizeof(err));
		CHECK(key != NULL && EVP_PKEY_eq(key,
		    X509_REQ_get0_pubkey(req)) == 1);
		EVP_PKEY_free(key);
		X509_REQ_free(req);
	} else
		CHECK(0);

	/* With a certificate installed, the CSR reuses its key, so the
	 * server keeps working until the public chain arrives. */
	CHECK(init_default(dir) == 0);
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == 0);
	CHECK(ca_csr(dir, "mail.local.test", &o, &reused, err, sizeof(err))
	    == 0);
	CHECK(reused);
	leaf = load(dir, "tls/mail.local.test.crt");
	snprintf(path, sizeof(path), "%s/tls/mail.local.test.key", dir);
	key = ca_key_load(path, NULL, err, sizeof(err));
	CHECK(leaf != NULL && key != NULL &&
	    X509_check_private_key(leaf, key) == 1);
	EVP_PKEY_free(key);
	X509_free(leaf);
	o.key.type = CA_KEY_RSA;
	o.key.bits = 1024;
	CHECK(ca_csr(dir, "weak.local.test", &o, &reused, err, sizeof(err))
	    == -1);
	CHECK(ca_csr(dir, "bad/name", &o, &reused, err, sizeof(err)) == -1);
	rmdir_all(&dir);
}

static void
test_export(void)
{
	char *dir = tmpdir(), path[PATH_MAX];
	const unsigned char *p;
	unsigned char buf[4096];
	X509 *ca, *x;
	size_t len;
	FILE *f;

	CHECK(init_default(dir) == 0);
	ca = load(dir, "ca/ca.crt");
	snprintf(path, sizeof(path), "%s/root.crt", dir);
	CHECK(ca_export(dir, path, true, err, sizeof(err)) == 0);
	CHECK(file_mode(dir, "root.crt") == 0644);
	if ((f = fopen(path, "rb")) != NULL) {
		len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		p = buf;
		x = d2i_X509(NULL, &p, (long)len);
		CHECK(x != NULL && p == buf + len);
		CHECK(x != NULL && ca != NULL && X509_cmp(x, ca) == 0);
		X509_free(x);
	} else
		CHECK(0);
	CHECK(ca_export(dir, path, false, err, sizeof(err)) == 0);
	x = load(dir, "root.crt");
	CHECK(x != NULL && ca != NULL && X509_cmp(x, ca) == 0);
	X509_free(x);
	X509_free(ca);
	CHECK(ca_export(dir, "/nonexistent-dir/x.crt", true, err,
	    sizeof(err)) == -1);
	rmdir_all(&dir);
}

static void
test_setup_default(void)
{
	char *dir = tmpdir(), name[80];
	X509 *ca, *leaf;

	CHECK(ca_setup_default(dir, "bad/host", err, sizeof(err)) == -1);
	CHECK(!ca_exists(dir));
	CHECK(ca_setup_default(dir, "mail.local.test", err, sizeof(err)) ==
	    0);
	ca = load(dir, "ca/ca.crt");
	leaf = load(dir, "tls/mail.local.test.crt");
	if (ca != NULL && leaf != NULL) {
		CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(ca),
		    NID_commonName, name, sizeof(name)) > 0);
		CHECK_STR(name, "tegami Root CA mail.local.test");
		CHECK(verify(ca, leaf, NULL, NULL) == 1);
		CHECK(X509_check_host(leaf, "mail.local.test", 0, 0, NULL) ==
		    1);
		CHECK(EVP_PKEY_base_id(X509_get0_pubkey(ca)) == EVP_PKEY_EC);
	} else
		CHECK(0);
	CHECK(file_mode(dir, "tls/mail.local.test.key") == 0600);
	CHECK(ca_setup_default(dir, "mail.local.test", err, sizeof(err)) ==
	    -1);
	X509_free(ca);
	X509_free(leaf);
	rmdir_all(&dir);
}

static void
write_index(const char *dir, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ca/index", dir);
	f = fopen(path, "w");
	if (f == NULL) {
		CHECK(0);
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void
test_index_format(void)
{
	static const char *const bad[] = {
		"V\tAB\t20271229215321Z\t-\n",			/* 4 fields */
		"V\tAB\t20271229215321Z\t-\th\tx\n",		/* 6 */
		"X\tAB\t20271229215321Z\t-\th\n",		/* status */
		"V\tab\t20271229215321Z\t-\th\n",		/* lower hex */
		"V\t\t20271229215321Z\t-\th\n",
		"V\tAB\t2027122921532Z\t-\th\n",		/* short time */
		"V\tAB\t20271229215321Z\t20271229215321Z\th\n",	/* V+time */
		"R\tAB\t20271229215321Z\t-\th\n",		/* R no time */
		"V\tAB\t20271229215321Z\t-\t\n",		/* no host */
		"V\tAB\t20271229215321Z\t-\th",			/* no LF */
		"V\tAB\t20271229215321Z\t-\th\r\n",		/* CR */
		"V\tAB\t20271229215321Z\t-\th x\n",		/* space */
	};
	static const char good[] = "V\tAB\t20271229215321Z\t-\th.test\n"
	    "R\t01\t20271229215321Z\t20261127215327Z\tx\n";
	struct ca_index_entry *list;
	char *dir = tmpdir(), out[64], path[PATH_MAX], back[256];
	size_t n, i, len;
	FILE *f;

	CHECK(ca_dirs_make(dir, err, sizeof(err)) == 0);
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0 && n == 0);
	free(list);
	write_index(dir, good);
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0 && n == 2);
	if (n == 2) {
		CHECK(list[1].status == 'R');
		CHECK_STR(list[1].revoked, "20261127215327Z");
		CHECK(ca_index_find(list, n, "01") == &list[1]);
		CHECK(ca_index_find(list, n, "1") == NULL);
		/* Saving writes back the same bytes. */
		CHECK(ca_index_save(dir, list, n, err, sizeof(err)) == 0);
		snprintf(path, sizeof(path), "%s/ca/index", dir);
		if ((f = fopen(path, "r")) != NULL) {
			len = fread(back, 1, sizeof(back) - 1, f);
			back[len] = '\0';
			fclose(f);
			CHECK_STR(back, good);
		} else
			CHECK(0);
	}
	free(list);
	CHECK(file_mode(dir, "ca/index") == 0600);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_index(dir, bad[i]);
		if (ca_index_load(dir, &list, &n, err, sizeof(err)) != -1) {
			fprintf(stderr, "accepted index line %zu\n", i);
			free(list);
			CHECK(0);
		} else
			CHECK(strstr(err, ":1: malformed") != NULL);
	}
	CHECK(ca_serial_normalise("0a:bC:01", out, sizeof(out)) == 0);
	CHECK_STR(out, "ABC01");
	CHECK(ca_serial_normalise("0000", out, sizeof(out)) == 0);
	CHECK_STR(out, "0");
	CHECK(ca_serial_normalise("12G", out, sizeof(out)) == -1);
	CHECK(ca_serial_normalise("-1", out, sizeof(out)) == -1);
	CHECK(ca_serial_normalise("1234", out, 5) == 0);
	CHECK(ca_serial_normalise("12345", out, 5) == -1);
	rmdir_all(&dir);
}

/* Concurrent issues from separate processes: the lock keeps every index
 * entry (a lost update would drop some). */
static void
test_concurrent_issue(void)
{
	enum { KIDS = 8 };
	struct ca_index_entry *list;
	char *dir = tmpdir(), host[64];
	pid_t pids[KIDS];
	int i, status, ok = 0;
	size_t n;

	CHECK(init_default(dir) == 0);
	for (i = 0; i < KIDS; i++) {
		if ((pids[i] = fork()) == 0) {
			snprintf(host, sizeof(host), "h%d.local.test", i);
			_exit(issue(dir, host, NULL, 0, 0) == 0 ? 0 : 1);
		}
	}
	for (i = 0; i < KIDS; i++)
		if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
	CHECK(ok == KIDS);
	CHECK(ca_index_load(dir, &list, &n, err, sizeof(err)) == 0);
	CHECK(n == KIDS);
	free(list);
	rmdir_all(&dir);
}

static void
test_show_list(void)
{
	char *dir = tmpdir(), *buf = NULL;
	size_t len = 0;
	FILE *f;

	CHECK(init_default(dir) == 0);
	CHECK(issue(dir, "mail.local.test", NULL, 0, 0) == 0);
	CHECK(ca_selfsign(dir, "self.local.test", &(struct ca_issue_opts){ 0 },
	    err, sizeof(err)) == 0);
	f = open_memstream(&buf, &len);
	CHECK(ca_show(dir, NULL, f, err, sizeof(err)) == 0);
	CHECK(ca_show(dir, "mail.local.test", f, err, sizeof(err)) == 0);
	CHECK(ca_show(dir, "self.local.test", f, err, sizeof(err)) == 0);
	CHECK(ca_show(dir, "none.local.test", f, err, sizeof(err)) == -1);
	CHECK(ca_show(dir, "../ca/ca", f, err, sizeof(err)) == -1);
	CHECK(ca_list(dir, f, err, sizeof(err)) == 0);
	fclose(f);
	CHECK(strstr(buf, "subject:     CN=Unit Root CA\n") != NULL);
	CHECK(strstr(buf, "status:      CA root certificate\n") != NULL);
	CHECK(strstr(buf, "names:       DNS:mail.local.test\n") != NULL);
	CHECK(strstr(buf, "key:         ECDSA P-256\n") != NULL);
	CHECK(strstr(buf, "status:      valid\n") != NULL);
	CHECK(strstr(buf, "status:      SELF-SIGNED") != NULL);
	CHECK(strstr(buf, "1 certificate issued by this CA\n") != NULL);
	CHECK(strstr(buf, "file:        tls/self.local.test.crt\n") != NULL);
	CHECK(strstr(buf, "SHA-256:     ") != NULL);
	free(buf);
	rmdir_all(&dir);
}

/* URLs that may become a CRL distribution point, and those that may not. */
static void
test_crl_url_check(void)
{
	static const char *const good[] = {
		"http://crl.example.org/root.crl",
		"https://crl.example.org/root.crl",
		"HTTP://CRL.EXAMPLE.ORG/ROOT.CRL",
		"http://crl.example.org",
		"http://crl.example.org:8080/x/y.crl?v=1&w=2",
		"http://192.0.2.1/root.crl",
		"http://[2001:db8::1]/root.crl",
		"http://[::1]:65535/root.crl",
		"http://localhost/a,b;c=d/%41%7e",
		"http://h.example/~user/!$'()*+@:=",
	};
	static const char *const bad[] = {
		"",
		"crl.example.org/root.crl",
		"ftp://crl.example.org/root.crl",
		"ldap://ldap.example.org/cn=CA",
		"file:///etc/passwd",
		"javascript:alert(1)",
		"http:/crl.example.org/x",
		"http://",
		"http:///root.crl",
		"http://?x",
		"http://crl example.org/x",
		"http://crl.example.org/a b",
		"http://crl.example.org/\t",
		"http://crl.example.org/\x7f",
		"http://crl.example.org/\xc3\xa9",
		"http://crl.example.org/\"x\"",
		"http://crl.example.org/<x>",
		"http://crl.example.org/a\\b",
		"http://crl.example.org/{x}|^`",
		"http://crl.example.org/x#frag",
		"http://crl.example.org/%4",
		"http://crl.example.org/%zz",
		"http://crl.example.org/%",
		"http://user:pass@crl.example.org/x",
		"http://@crl.example.org/x",
		"http://crl.example.org:/x",
		"http://crl.example.org:0/x",
		"http://crl.example.org:65536/x",
		"http://crl.example.org:123456/x",
		"http://crl.example.org:8a/x",
		"http://:80/x",
		"http://-bad-.example/x",
		"http://bad_host.example/x",
		"http://a..b/x",
		"http://[::1/x",
		"http://[]/x",
		"http://[zz::1]/x",
		"http://[::1]x/x",
		"http://[::1]:/x",
		"http://300.1.1.1.2/x",
	};
	char url[CA_CRL_URL_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *why = ca_crl_url_check(good[i]);

		if (why != NULL)
			fprintf(stderr, "refused %s: %s\n", good[i], why);
		CHECK(why == NULL);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ca_crl_url_check(bad[i]) == NULL)
			fprintf(stderr, "accepted %s\n", bad[i]);
		CHECK(ca_crl_url_check(bad[i]) != NULL);
	}
	/* Exactly at the limit, and one over. */
	memset(url, 'a', sizeof(url));
	memcpy(url, "http://h.example/", 17);
	url[CA_CRL_URL_MAX] = '\0';
	CHECK(strlen(url) == CA_CRL_URL_MAX);
	CHECK(ca_crl_url_check(url) == NULL);
	url[CA_CRL_URL_MAX] = 'a';
	url[CA_CRL_URL_MAX + 1] = '\0';
	CHECK(ca_crl_url_check(url) != NULL);
	/* Every byte outside printable ASCII, anywhere in the path. */
	for (i = 1; i < 256; i++) {
		char u[32];

		if (i >= 0x21 && i <= 0x7e)
			continue;
		snprintf(u, sizeof(u), "http://h.example/a%cb", (int)i);
		CHECK(ca_crl_url_check(u) != NULL);
	}
}

/* The URI in the certificate's cRLDistributionPoints, checked with the
 * OpenSSL API: one distribution point, a full name, one URI, no reasons
 * and no cRLIssuer; "" when the extension is absent. */
static void
crldp_uri(X509 *x, char *out, size_t size)
{
	CRL_DIST_POINTS *dps;
	DIST_POINT *dp;
	GENERAL_NAME *gn;
	int crit;

	out[0] = '\0';
	dps = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
	if (dps == NULL) {
		CHECK(crit == -1);
		return;
	}
	CHECK(crit == 0);	/* RFC 5280 4.2.1.13: SHOULD be non-critical */
	CHECK(sk_DIST_POINT_num(dps) == 1);
	dp = sk_DIST_POINT_value(dps, 0);
	CHECK(dp->reasons == NULL && dp->CRLissuer == NULL);
	CHECK(dp->distpoint != NULL && dp->distpoint->type == 0);
	if (dp->distpoint != NULL && dp->distpoint->type == 0 &&
	    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) == 1) {
		gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
		CHECK(gn->type == GEN_URI);
		if (gn->type == GEN_URI)
			snprintf(out, size, "%.*s",
			    ASN1_STRING_length(gn->d.uniformResourceIdentifier),
			    (const char *)ASN1_STRING_get0_data(
			    gn->d.uniformResourceIdentifier));
	} else
		CHECK(0);
	CRL_DIST_POINTS_free(dps);
}

static void
leaf_crl_url(const char *dir, const char *host, char *out, size_t size)
{
	char rel[300];
	X509 *x;

	snprintf(rel, sizeof(rel), "tls/%s.crt", host);
	out[0] = '\0';
	if ((x = load(dir, rel)) == NULL) {
		CHECK(0);
		snprintf(out, size, "(no certificate)");
		return;
	}
	crldp_uri(x, out, size);
	X509_free(x);
}

static void
test_crl_url_issue_renew(void)
{
	static const char url[] = "http://crl.local.test/root,1.crl";
	static const char url2[] = "https://[2001:db8::1]:8443/c.crl?x=1";
	struct ca_init_opts io;
	struct ca_issue_opts o;
	char *dir = tmpdir(), got[CA_CRL_URL_MAX + 1];
	X509 *ca, *leaf;

	/* No URL unless asked: tegami init publishes nothing. */
	CHECK(init_default(dir) == 0);
	CHECK(!exists(dir, "ca/crl-url"));
	CHECK(ca_crl_url_default(dir, got, sizeof(got), err,
	    sizeof(err)) == 0);
	CHECK(issue(dir, "a.local.test", NULL, 0, 0) == 0);
	leaf_crl_url(dir, "a.local.test", got, sizeof(got));
	CHECK_STR(got, "");

	memset(&o, 0, sizeof(o));
	o.crl_url = url;
	CHECK(ca_issue(dir, "b.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	leaf_crl_url(dir, "b.local.test", got, sizeof(got));
	CHECK_STR(got, url);
	ca = load(dir, "ca/ca.crt");
	leaf = load(dir, "tls/b.local.test.crt");
	CHECK(ca != NULL && leaf != NULL && verify(ca, leaf, NULL, NULL) == 1);
	if (leaf != NULL) {
		CHECK(ca_crldp_get(leaf, got, sizeof(got)) == 1);
		CHECK_STR(got, url);
		/* Too small a buffer is an error, not a cut URL. */
		CHECK(ca_crldp_get(leaf, got, sizeof(url) - 1) == -1);
		CHECK(ca_crldp_get(leaf, got, sizeof(url)) == 1);
	}
	X509_free(leaf);
	X509_free(ca);

	/* Renew keeps the URL; --crl-url replaces it; --no-crl-url drops
	 * it, and the next renewal keeps having none. */
	memset(&o, 0, sizeof(o));
	CHECK(ca_renew(dir, "b.local.test", &o, NULL, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "b.local.test", got, sizeof(got));
	CHECK_STR(got, url);
	o.crl_url = url2;
	CHECK(ca_renew(dir, "b.local.test", &o, NULL, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "b.local.test", got, sizeof(got));
	CHECK_STR(got, url2);
	o.crl_url = NULL;
	o.no_crl_url = true;
	CHECK(ca_renew(dir, "b.local.test", &o, NULL, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "b.local.test", got, sizeof(got));
	CHECK_STR(got, "");
	o.no_crl_url = false;
	CHECK(ca_renew(dir, "b.local.test", &o, NULL, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "b.local.test", got, sizeof(got));
	CHECK_STR(got, "");
	/* A certificate without the URL renews into one with it. */
	o.crl_url = url;
	CHECK(ca_renew(dir, "a.local.test", &o, NULL, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "a.local.test", got, sizeof(got));
	CHECK_STR(got, url);

	/* Refusals leave nothing behind. */
	o.crl_url = "ftp://crl.local.test/x";
	CHECK(ca_issue(dir, "c.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "http://") != NULL);
	o.crl_url = url;
	o.no_crl_url = true;
	CHECK(ca_issue(dir, "c.local.test", &o, false, NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "contradict") != NULL);
	CHECK(!exists(dir, "tls/c.local.test.crt"));
	CHECK(!exists(dir, "tls/c.local.test.key"));
	/* Self-signed certificates and CSRs name no CRL. */
	o.no_crl_url = false;
	CHECK(ca_selfsign(dir, "self.local.test", &o, err, sizeof(err)) == 0);
	leaf_crl_url(dir, "self.local.test", got, sizeof(got));
	CHECK_STR(got, "");
	rmdir_all(&dir);

	/* ca init --crl-url: the default for issue, overridable. */
	dir = tmpdir();
	memset(&io, 0, sizeof(io));
	io.crl_url = "http://crl.local.test/bad url";
	CHECK(ca_init(dir, &io, err, sizeof(err)) == -1);
	CHECK(strstr(err, "printable ASCII") != NULL);
	CHECK(!ca_exists(dir));
	io.crl_url = url;
	CHECK(ca_init(dir, &io, err, sizeof(err)) == 0);
	CHECK(file_mode(dir, "ca/crl-url") == 0644);
	CHECK(ca_crl_url_default(dir, got, sizeof(got), err,
	    sizeof(err)) == 1);
	CHECK_STR(got, url);
	ca = load(dir, "ca/ca.crt");
	/* The root itself names none: clients do not check a root. */
	if (ca != NULL)
		CHECK(X509_get_ext_by_NID(ca, NID_crl_distribution_points,
		    -1) < 0);
	X509_free(ca);
	CHECK(issue(dir, "d.local.test", NULL, 0, 0) == 0);
	leaf_crl_url(dir, "d.local.test", got, sizeof(got));
	CHECK_STR(got, url);
	memset(&o, 0, sizeof(o));
	o.crl_url = url2;
	CHECK(ca_issue(dir, "e.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	leaf_crl_url(dir, "e.local.test", got, sizeof(got));
	CHECK_STR(got, url2);
	o.crl_url = NULL;
	o.no_crl_url = true;
	CHECK(ca_issue(dir, "f.local.test", &o, false, NULL, err,
	    sizeof(err)) == 0);
	leaf_crl_url(dir, "f.local.test", got, sizeof(got));
	CHECK_STR(got, "");
	rmdir_all(&dir);
}

/* ca/crl-url edited by hand into something that is not a URL: issue
 * refuses instead of putting it into a certificate. */
static void
test_crl_url_file_tampered(void)
{
	char *dir = tmpdir(), path[PATH_MAX], got[CA_CRL_URL_MAX + 1];
	FILE *f;

	CHECK(init_default(dir) == 0);
	snprintf(path, sizeof(path), "%s/ca/crl-url", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("http://crl.local.test/x\x01y\n", f);
		fclose(f);
	}
	CHECK(issue(dir, "a.local.test", NULL, 0, 0) == -1);
	CHECK(strstr(err, "crl-url") != NULL);
	CHECK(!exists(dir, "tls/a.local.test.crt"));
	if ((f = fopen(path, "w")) != NULL)
		fclose(f);
	CHECK(ca_crl_url_default(dir, got, sizeof(got), err,
	    sizeof(err)) == -1);
	/* Without a final newline is fine. */
	if ((f = fopen(path, "w")) != NULL) {
		fputs("http://crl.local.test/y", f);
		fclose(f);
	}
	CHECK(ca_crl_url_default(dir, got, sizeof(got), err,
	    sizeof(err)) == 1);
	CHECK_STR(got, "http://crl.local.test/y");
	rmdir_all(&dir);
}

int
main(void)
{
	UNIT_RUN(test_root_profile);
	UNIT_RUN(test_root_rsa_and_key_sizes);
	UNIT_RUN(test_leaf_profile);
	UNIT_RUN(test_key_group);
	UNIT_RUN(test_leaf_rsa);
	UNIT_RUN(test_days_limits);
	UNIT_RUN(test_names_refused);
	UNIT_RUN(test_no_ca);
	UNIT_RUN(test_passphrase);
	UNIT_RUN(test_expired_ca);
	UNIT_RUN(test_revoke_crl);
	UNIT_RUN(test_renew);
	UNIT_RUN(test_selfsign);
	UNIT_RUN(test_csr);
	UNIT_RUN(test_export);
	UNIT_RUN(test_setup_default);
	UNIT_RUN(test_index_format);
	UNIT_RUN(test_concurrent_issue);
	UNIT_RUN(test_show_list);
	UNIT_RUN(test_crl_url_check);
	UNIT_RUN(test_crl_url_issue_renew);
	UNIT_RUN(test_crl_url_file_tampered);
	return unit_finish();
}
