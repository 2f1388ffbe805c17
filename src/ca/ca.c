/*
 * The operations of `tegami ca`: creating the CA, issuing, renewing and
 * self-signing server certificates, CSRs for a public CA, revocation and
 * export of the root. Each takes ca/lock while it reads or changes the
 * index, so concurrent runs do not lose entries.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_private.h"
#include "core/util.h"

#define CA_DEFAULT_NAME	"tegami Root CA"

static time_t
now_or(time_t now)
{
	return now != 0 ? now : time(NULL);
}

static gid_t
key_gid(const struct ca_issue_opts *opts)
{
	return opts->key_group_readable ? opts->key_gid : (gid_t)-1;
}

bool
ca_exists(const char *state_dir)
{
	char crt[PATH_MAX], key[PATH_MAX];

	if (ca_path(state_dir, "ca.crt", crt, sizeof(crt)) == -1 ||
	    ca_path(state_dir, "ca.key", key, sizeof(key)) == -1)
		return false;
	return ca_file_exists(crt) || ca_file_exists(key);
}

int
ca_require(const char *state_dir, char *err, size_t errsize)
{
	if (ca_exists(state_dir))
		return 0;
	ca_err(err, errsize, "no CA in %s/ca: run `tegami ca init` first",
	    state_dir);
	return -1;
}

bool
ca_key_encrypted(const char *state_dir)
{
	char path[PATH_MAX], line[128];
	bool enc = false;
	FILE *f;

	if (ca_path(state_dir, "ca.key", path, sizeof(path)) == -1 ||
	    (f = fopen(path, "re")) == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL)
		enc = strstr(line, "ENCRYPTED") != NULL;
	fclose(f);
	return enc;
}

static int
check_passphrase(const char *passphrase, char *err, size_t errsize)
{
	size_t len;

	if (passphrase == NULL)
		return 0;
	len = strlen(passphrase);
	if (len < CA_PASSPHRASE_MIN || len > CA_PASSPHRASE_MAX) {
		ca_err(err, errsize, "the passphrase must have %d to %d "
		    "characters", CA_PASSPHRASE_MIN, CA_PASSPHRASE_MAX);
		return -1;
	}
	return 0;
}

int
ca_init(const char *state_dir, const struct ca_init_opts *opts, char *err,
    size_t errsize)
{
	char keypath[PATH_MAX], crtpath[PATH_MAX];
	const char *name = opts->name != NULL ? opts->name : CA_DEFAULT_NAME;
	int days = opts->days != 0 ? opts->days : CA_DEFAULT_CA_DAYS;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const char *why;
	int lock = -1, rc = -1;

	if (days < 1 || days > CA_MAX_CA_DAYS) {
		ca_err(err, errsize, "--days must be 1 to %d", CA_MAX_CA_DAYS);
		return -1;
	}
	if (name[0] == '\0' || strlen(name) > CA_NAME_MAX) {
		ca_err(err, errsize, "the CA name must have 1 to %d "
		    "characters", CA_NAME_MAX);
		return -1;
	}
	if ((why = ca_key_spec_check(&opts->key)) != NULL) {
		ca_err(err, errsize, "%s", why);
		return -1;
	}
	if (check_passphrase(opts->passphrase, err, errsize) == -1)
		return -1;
	if (opts->crl_url != NULL &&
	    (why = ca_crl_url_check(opts->crl_url)) != NULL) {
		ca_err(err, errsize, "--crl-url %.100s%s: %s", opts->crl_url,
		    strlen(opts->crl_url) > 100 ? "..." : "", why);
		return -1;
	}
	if (ca_path(state_dir, "ca.key", keypath, sizeof(keypath)) == -1 ||
	    ca_path(state_dir, "ca.crt", crtpath, sizeof(crtpath)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if (ca_dirs_make(state_dir, err, errsize) == -1 ||
	    ca_lock(state_dir, &lock, err, errsize) == -1)
		return -1;
	if (ca_exists(state_dir)) {
		ca_err(err, errsize, "a CA already exists in %s/ca; replacing "
		    "it would invalidate every certificate clients trust",
		    state_dir);
		goto out;
	}
	if ((key = ca_key_generate(&opts->key, err, errsize)) == NULL ||
	    (cert = ca_cert_make_root(key, name, days, now_or(opts->now),
	    err, errsize)) == NULL)
		goto out;
	/* The key first: a ca.crt without its key would be a CA that
	 * exists but cannot sign. */
	if (ca_key_save(keypath, key, opts->passphrase, (gid_t)-1, err,
	    errsize) == -1 ||
	    ca_cert_save(crtpath, cert, NULL, err, errsize) == -1)
		goto out;
	/* After the CA: a default URL without a CA would stop the next
	 * init. */
	if (opts->crl_url != NULL && ca_crl_url_save(state_dir,
	    opts->crl_url, err, errsize) == -1)
		goto out;
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	ca_unlock(&lock);
	return rc;
}

static int
check_days(const struct ca_issue_opts *opts, int *days_r, char *err,
    size_t errsize)
{
	int days = opts->days != 0 ? opts->days : CA_DEFAULT_LEAF_DAYS;
	const char *why;

	/* Checked before anything is loaded or asked for. */
	if ((why = ca_key_spec_check(&opts->key)) != NULL) {
		ca_err(err, errsize, "%s", why);
		return -1;
	}
	if (days < 1 || days > CA_MAX_FORCED_DAYS) {
		ca_err(err, errsize, "--days must be 1 to %d (more than %d "
		    "only with --force-days)", CA_MAX_FORCED_DAYS,
		    CA_MAX_LEAF_DAYS);
		return -1;
	}
	if (days > CA_MAX_LEAF_DAYS && !opts->force_days) {
		ca_err(err, errsize, "%d days: server certificates valid for "
		    "more than %d days are rejected by Apple clients and "
		    "browsers; add --force-days to issue it anyway", days,
		    CA_MAX_LEAF_DAYS);
		return -1;
	}
	if (opts->crl_url != NULL && opts->no_crl_url) {
		ca_err(err, errsize, "--crl-url and --no-crl-url contradict "
		    "each other");
		return -1;
	}
	if (opts->crl_url != NULL &&
	    (why = ca_crl_url_check(opts->crl_url)) != NULL) {
		ca_err(err, errsize, "--crl-url %.100s%s: %s", opts->crl_url,
		    strlen(opts->crl_url) > 100 ? "..." : "", why);
		return -1;
	}
	*days_r = days;
	return 0;
}

/* A leaf for host signed by the loaded CA, written to tls/ and indexed.
 * The caller holds the lock. */
static int
issue_locked(const char *state_dir, const char *host, X509 *ca,
    EVP_PKEY *ca_key, GENERAL_NAMES *names, const struct ca_issue_opts *opts,
    int days, const char *crl_url, char *serial_r, char *err, size_t errsize)
{
	char keypath[PATH_MAX], crtpath[PATH_MAX];
	struct ca_index_entry e;
	time_t now = now_or(opts->now);
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = -1;

	if (X509_cmp_time(X509_get0_notAfter(ca), &now) <= 0) {
		ca_err(err, errsize, "the CA certificate has expired; a new "
		    "CA is needed (and its root installed in every client)");
		return -1;
	}
	if (X509_cmp_time(X509_get0_notBefore(ca), &now) > 0) {
		ca_err(err, errsize, "the CA certificate is not valid yet "
		    "(is the clock right?)");
		return -1;
	}
	if (ca_tls_path(state_dir, host, "key", keypath, sizeof(keypath)) ==
	    -1 || ca_tls_path(state_dir, host, "crt", crtpath,
	    sizeof(crtpath)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if ((key = ca_key_generate(&opts->key, err, errsize)) == NULL ||
	    (cert = ca_cert_make_leaf(key, host, names, ca, ca_key, days, now,
	    crl_url, err, errsize)) == NULL)
		goto out;
	/* A certificate must not outlive its issuer: clients would reject
	 * it from then on anyway, so end it with the CA. */
	if (ASN1_TIME_compare(X509_get0_notAfter(cert),
	    X509_get0_notAfter(ca)) > 0) {
		if (X509_set1_notAfter(cert, X509_get0_notAfter(ca)) != 1 ||
		    X509_sign(cert, ca_key, ca_sign_md(ca_key)) <= 0) {
			ca_ssl_err(err, errsize, "re-signing");
			goto out;
		}
	}
	memset(&e, 0, sizeof(e));
	e.status = 'V';
	snprintf(e.revoked, sizeof(e.revoked), "-");
	snprintf(e.host, sizeof(e.host), "%s", host);
	if (ca_serial_hex(X509_get0_serialNumber(cert), e.serial,
	    sizeof(e.serial)) == -1 || ca_time_index(X509_get0_notAfter(cert),
	    e.not_after, sizeof(e.not_after)) == -1) {
		ca_err(err, errsize, "certificate serial or time");
		goto out;
	}
	/* The index first: a certificate that exists must be revocable; an
	 * index line whose files were never written harms nobody. */
	if (ca_index_append(state_dir, &e, err, errsize) == -1 ||
	    ca_key_save(keypath, key, NULL, key_gid(opts), err, errsize) ==
	    -1 ||
	    ca_cert_save(crtpath, cert, ca, err, errsize) == -1)
		goto out;
	if (serial_r != NULL)
		snprintf(serial_r, CA_SERIAL_HEX_MAX, "%s", e.serial);
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int
issue(const char *state_dir, const char *host_in,
    const struct ca_issue_opts *opts, bool replace, bool renew,
    char *serial_r, char *err, size_t errsize)
{
	char host[CA_HOST_MAX], crtpath[PATH_MAX], **names_list = NULL;
	char crl_url[CA_CRL_URL_MAX + 1];
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL, *old = NULL;
	const char *why;
	size_t n_names = 0, i;
	int days, lock = -1, rc = -1;

	crl_url[0] = '\0';
	if ((why = ca_hostname_check(host_in, host)) != NULL) {
		ca_err(err, errsize, "%s: %s", host_in, why);
		return -1;
	}
	if (check_days(opts, &days, err, errsize) == -1)
		return -1;
	if (ca_tls_path(state_dir, host, "crt", crtpath, sizeof(crtpath)) ==
	    -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if (ca_require(state_dir, err, errsize) == -1)
		return -1;
	if (ca_dirs_make(state_dir, err, errsize) == -1 ||
	    ca_lock(state_dir, &lock, err, errsize) == -1)
		return -1;
	if (ca_load(state_dir, opts->passphrase, &ca, &ca_key, err,
	    errsize) == -1)
		goto out;
	if (renew) {
		if (!ca_file_exists(crtpath)) {
			ca_err(err, errsize, "%s: no certificate to renew; use "
			    "`tegami ca issue %s`", crtpath, host);
			goto out;
		}
		if ((old = ca_cert_load(crtpath, err, errsize)) == NULL)
			goto out;
		if (X509_verify(old, ca_key) != 1) {
			ERR_clear_error();
			ca_err(err, errsize, "%s was not issued by this CA; "
			    "renew it where it came from", crtpath);
			goto out;
		}
		if (ca_names_list(old, &names_list, &n_names, err,
		    errsize) == -1)
			goto out;
		/* The renewed certificate points where the old one did,
		 * unless told otherwise. */
		if (opts->crl_url == NULL && !opts->no_crl_url &&
		    ca_crldp_get(old, crl_url, sizeof(crl_url)) == -1) {
			ca_err(err, errsize, "%s: unreadable CRL distribution "
			    "point; renew with --crl-url URL or --no-crl-url",
			    crtpath);
			goto out;
		}
		names = ca_names_make(host, (const char *const *)names_list,
		    n_names, err, errsize);
	} else {
		if (!replace && ca_file_exists(crtpath)) {
			ca_err(err, errsize, "%s exists; use `tegami ca renew "
			    "%s` to replace it", crtpath, host);
			goto out;
		}
		if (opts->crl_url == NULL && !opts->no_crl_url &&
		    ca_crl_url_default(state_dir, crl_url, sizeof(crl_url),
		    err, errsize) == -1)
			goto out;
		names = ca_names_make(host, opts->sans, opts->n_sans, err,
		    errsize);
	}
	if (names == NULL)
		goto out;
	rc = issue_locked(state_dir, host, ca, ca_key, names, opts, days,
	    opts->crl_url != NULL ? opts->crl_url : crl_url[0] != '\0' ?
	    crl_url : NULL, serial_r, err, errsize);
out:
	for (i = 0; i < n_names; i++)
		free(names_list[i]);
	free(names_list);
	GENERAL_NAMES_free(names);
	X509_free(old);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	ca_unlock(&lock);
	return rc;
}

int
ca_issue(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, bool replace, char *serial_r,
    char *err, size_t errsize)
{
	return issue(state_dir, host, opts, replace, false, serial_r, err,
	    errsize);
}

int
ca_renew(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, char *serial_r, char *err,
    size_t errsize)
{
	return issue(state_dir, host, opts, true, true, serial_r, err,
	    errsize);
}

int
ca_csr(const char *state_dir, const char *host_in,
    const struct ca_issue_opts *opts, bool *reused_r, char *err,
    size_t errsize)
{
	char host[CA_HOST_MAX], keypath[PATH_MAX], csrpath[PATH_MAX];
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	const char *why;
	int rc = -1;

	*reused_r = false;
	if ((why = ca_hostname_check(host_in, host)) != NULL) {
		ca_err(err, errsize, "%s: %s", host_in, why);
		return -1;
	}
	if ((why = ca_key_spec_check(&opts->key)) != NULL) {
		ca_err(err, errsize, "%s", why);
		return -1;
	}
	if (ca_tls_path(state_dir, host, "key", keypath, sizeof(keypath)) ==
	    -1 || ca_tls_path(state_dir, host, "csr", csrpath,
	    sizeof(csrpath)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if ((names = ca_names_make(host, opts->sans, opts->n_sans, err,
	    errsize)) == NULL || ca_dirs_make(state_dir, err, errsize) == -1)
		goto out;
	if (ca_file_exists(keypath)) {
		if ((key = ca_key_load(keypath, NULL, err, errsize)) == NULL)
			goto out;
		*reused_r = true;
	} else if ((key = ca_key_generate(&opts->key, err, errsize)) == NULL)
		goto out;
	if ((req = ca_req_make(key, host, names, err, errsize)) == NULL)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1) {
		ca_ssl_err(err, errsize, "CSR encoding");
		goto out;
	}
	if (!*reused_r && ca_key_save(keypath, key, NULL, key_gid(opts), err,
	    errsize) == -1)
		goto out;
	if (ca_file_write_bio(csrpath, bio, 0644, err, errsize) == -1)
		goto out;
	rc = 0;
out:
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	GENERAL_NAMES_free(names);
	return rc;
}

int
ca_selfsign(const char *state_dir, const char *host_in,
    const struct ca_issue_opts *opts, char *err, size_t errsize)
{
	char host[CA_HOST_MAX], keypath[PATH_MAX], crtpath[PATH_MAX];
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const char *why;
	int days, rc = -1;

	if ((why = ca_hostname_check(host_in, host)) != NULL) {
		ca_err(err, errsize, "%s: %s", host_in, why);
		return -1;
	}
	if (check_days(opts, &days, err, errsize) == -1)
		return -1;
	if (ca_tls_path(state_dir, host, "key", keypath, sizeof(keypath)) ==
	    -1 || ca_tls_path(state_dir, host, "crt", crtpath,
	    sizeof(crtpath)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if (ca_file_exists(crtpath)) {
		ca_err(err, errsize, "%s exists; remove it first to replace "
		    "it with a self-signed certificate", crtpath);
		return -1;
	}
	if ((names = ca_names_make(host, opts->sans, opts->n_sans, err,
	    errsize)) == NULL || ca_dirs_make(state_dir, err, errsize) == -1 ||
	    (key = ca_key_generate(&opts->key, err, errsize)) == NULL ||
	    (cert = ca_cert_make_leaf(key, host, names, NULL, key, days,
	    now_or(opts->now), NULL, err, errsize)) == NULL)
		goto out;
	if (ca_key_save(keypath, key, NULL, key_gid(opts), err, errsize) ==
	    -1 ||
	    ca_cert_save(crtpath, cert, NULL, err, errsize) == -1)
		goto out;
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	GENERAL_NAMES_free(names);
	return rc;
}

int
ca_revoke(const char *state_dir, const char *serial_in, char *err,
    size_t errsize)
{
	struct ca_index_entry *list = NULL, *e;
	char serial[CA_SERIAL_HEX_MAX];
	ASN1_TIME *t = NULL;
	size_t n;
	int lock = -1, rc = -1;

	if (ca_serial_normalise(serial_in, serial, sizeof(serial)) == -1) {
		ca_err(err, errsize, "%s: not a serial number (hex, as `tegami "
		    "ca list` shows it)", serial_in);
		return -1;
	}
	if (ca_require(state_dir, err, errsize) == -1)
		return -1;
	if (ca_lock(state_dir, &lock, err, errsize) == -1)
		return -1;
	if (ca_index_load(state_dir, &list, &n, err, errsize) == -1)
		goto out;
	if ((e = ca_index_find(list, n, serial)) == NULL) {
		ca_err(err, errsize, "%s: no certificate with this serial in "
		    "the index", serial);
		goto out;
	}
	if (e->status == 'R') {
		ca_err(err, errsize, "%s: already revoked (at %s)", serial,
		    e->revoked);
		goto out;
	}
	if ((t = X509_gmtime_adj(NULL, 0)) == NULL ||
	    ca_time_index(t, e->revoked, sizeof(e->revoked)) == -1) {
		ca_ssl_err(err, errsize, "time");
		goto out;
	}
	e->status = 'R';
	rc = ca_index_save(state_dir, list, n, err, errsize);
out:
	ASN1_TIME_free(t);
	free(list);
	ca_unlock(&lock);
	return rc;
}

int
ca_export(const char *state_dir, const char *path, bool der, char *err,
    size_t errsize)
{
	unsigned char *buf = NULL;
	X509 *ca = NULL;
	BIO *bio = NULL;
	int len, rc = -1;

	if (ca_load(state_dir, NULL, &ca, NULL, err, errsize) == -1)
		return -1;
	if (der) {
		if ((len = i2d_X509(ca, &buf)) <= 0) {
			ca_ssl_err(err, errsize, "DER encoding");
			goto out;
		}
		rc = ca_file_write(path, buf, (size_t)len, 0644, err, errsize);
	} else {
		if ((bio = BIO_new(BIO_s_mem())) == NULL ||
		    PEM_write_bio_X509(bio, ca) != 1) {
			ca_ssl_err(err, errsize, "PEM encoding");
			goto out;
		}
		rc = ca_file_write_bio(path, bio, 0644, err, errsize);
	}
out:
	OPENSSL_free(buf);
	BIO_free(bio);
	X509_free(ca);
	return rc;
}

int
ca_setup_default(const char *state_dir, const char *hostname, char *err,
    size_t errsize)
{
	return ca_setup_default_gid(state_dir, hostname, (gid_t)-1, err,
	    errsize);
}

int
ca_setup_default_gid(const char *state_dir, const char *hostname,
    gid_t key_gid, char *err, size_t errsize)
{
	struct ca_init_opts iopts;
	struct ca_issue_opts opts;
	char name[CA_NAME_MAX + 1], host[CA_HOST_MAX];
	const char *why;

	if ((why = ca_hostname_check(hostname, host)) != NULL) {
		ca_err(err, errsize, "%s: %s", hostname, why);
		return -1;
	}
	/* The host in the name tells roots of several sites apart in a
	 * client's trust store. */
	if (strlen(CA_DEFAULT_NAME) + strlen(host) + 1 <= CA_NAME_MAX)
		snprintf(name, sizeof(name), CA_DEFAULT_NAME " %s", host);
	else
		snprintf(name, sizeof(name), CA_DEFAULT_NAME);
	memset(&iopts, 0, sizeof(iopts));
	iopts.name = name;
	memset(&opts, 0, sizeof(opts));
	opts.key_group_readable = key_gid != (gid_t)-1;
	opts.key_gid = key_gid;
	if (ca_init(state_dir, &iopts, err, errsize) == -1)
		return -1;
	return ca_issue(state_dir, host, &opts, false, NULL, err, errsize);
}
