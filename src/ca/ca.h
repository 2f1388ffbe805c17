/*
 * tegami's private certificate authority: a root key and self-signed root
 * certificate under STATE_DIR/ca, server keys and chains under
 * STATE_DIR/tls, an index of issued certificates and a CRL (RFC 5280).
 * Every function returns 0 or -1 with a one-line reason in err.
 */
#ifndef TEGAMI_CA_H
#define TEGAMI_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CA_DEFAULT_CA_DAYS	3650	/* the root: 10 years */
#define CA_MAX_CA_DAYS		36500
/* Apple's limit for TLS server certificates (its 398-day rule, minus a
 * day for time zones); longer needs force_days. */
#define CA_DEFAULT_LEAF_DAYS	397
#define CA_MAX_LEAF_DAYS	397
#define CA_MAX_FORCED_DAYS	36500
#define CA_CRL_DAYS		30
#define CA_SAN_MAX		100
#define CA_NAME_MAX		64	/* RFC 5280 ub-common-name */
#define CA_PASSPHRASE_MIN	8
#define CA_PASSPHRASE_MAX	1023
/* Longest CRL URL accepted (the URL itself, without the NUL). */
#define CA_CRL_URL_MAX		1024
/* Seconds notBefore lies in the past, for clients whose clock is slow. */
#define CA_BACKDATE_SECONDS	3600

enum ca_key_type {
	CA_KEY_ECDSA = 0,	/* P-256 */
	CA_KEY_RSA,
};

struct ca_key_spec {
	enum ca_key_type type;
	int bits;		/* RSA only: 2048, 3072 or 4096 */
};

struct ca_init_opts {
	struct ca_key_spec key;
	int days;		/* 0: CA_DEFAULT_CA_DAYS */
	const char *name;	/* subject CN; NULL: "tegami Root CA" */
	const char *passphrase;	/* NULL: the key is stored unencrypted */
	time_t now;		/* 0: time(NULL); tests make expired CAs */
	/* NULL: none; else stored in ca/crl-url as the CRL distribution
	 * point of the certificates ca_issue makes from now on. */
	const char *crl_url;
};

struct ca_issue_opts {
	struct ca_key_spec key;
	int days;		/* 0: CA_DEFAULT_LEAF_DAYS */
	bool force_days;	/* allow days > CA_MAX_LEAF_DAYS */
	const char *const *sans; /* extra names: DNS names, IP:ADDR or ADDR */
	size_t n_sans;
	const char *passphrase;	/* for an encrypted CA key */
	time_t now;		/* 0: time(NULL) */
	/* Server keys are 0600; with key_group_readable 0640 and group
	 * key_gid, so that the unprivileged front can reload them. The
	 * CA key is always 0600. */
	bool key_group_readable;
	gid_t key_gid;
	/* The certificate's CRL distribution point (RFC 5280 4.2.1.13):
	 * crl_url when not NULL; none with no_crl_url; otherwise ca_issue
	 * takes the CA's default (ca/crl-url) and ca_renew the URL of the
	 * certificate it renews. ca_csr and ca_selfsign ignore both. */
	const char *crl_url;
	bool no_crl_url;
};

/* Paths under state_dir (PATH_MAX buffers); -1 when too long. */
int ca_path(const char *state_dir, const char *name, char *out, size_t size);
int ca_tls_path(const char *state_dir, const char *host, const char *ext,
    char *out, size_t size);

/* NULL when key is acceptable, else why not (RSA below 2048 or not one of
 * 2048/3072/4096). */
const char *ca_key_spec_check(const struct ca_key_spec *key);
/* A new key; NULL on failure with err set. The caller frees it. */
EVP_PKEY *ca_key_generate(const struct ca_key_spec *key, char *err,
    size_t errsize);

/* Validates and normalises (lower case) a host name that becomes a file
 * name under tls/; NULL when ok, else why not. out holds 254 bytes. */
const char *ca_hostname_check(const char *name, char *out);

/* NULL when url may be a CRL distribution point (http:// or https://, a
 * host, printable ASCII characters that URIs allow, at most
 * CA_CRL_URL_MAX), else why not. */
const char *ca_crl_url_check(const char *url);
/* The CA's default CRL URL (ca init --crl-url) into out (at least
 * CA_CRL_URL_MAX + 1 bytes): 1 when there is one, 0 when not, -1 on
 * error with err set. */
int ca_crl_url_default(const char *state_dir, char *out, size_t size,
    char *err, size_t errsize);

/* Creates ca/ca.key (0600) and ca/ca.crt, and ca/crl-url when
 * opts->crl_url is set. Refuses when a CA exists. */
int ca_init(const char *state_dir, const struct ca_init_opts *opts,
    char *err, size_t errsize);
/* True when ca/ca.crt or ca/ca.key exists. */
bool ca_exists(const char *state_dir);
/* 0 when the CA exists; else -1 with "no CA in DIR/ca: run ..." in err. */
int ca_require(const char *state_dir, char *err, size_t errsize);
/* True when ca/ca.key is encrypted (needs a passphrase). */
bool ca_key_encrypted(const char *state_dir);

/* Issues tls/HOST.key and tls/HOST.crt (leaf then root) signed by the CA
 * and records it in ca/index. Refuses when tls/HOST.crt exists unless
 * replace (which is what renew does). The serial, as upper-case hex, goes
 * into serial_r when not NULL (at least 41 bytes). */
int ca_issue(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, bool replace, char *serial_r,
    char *err, size_t errsize);
/* A new key and certificate for HOST with the names of the current
 * tls/HOST.crt, which must have been issued by this CA. opts->sans is
 * ignored. */
int ca_renew(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, char *serial_r, char *err,
    size_t errsize);
/* tls/HOST.csr for a public CA, with the key in tls/HOST.key: the existing
 * key when there is one (so the installed certificate keeps working until
 * the new chain replaces it), else a new one. *reused_r says which. */
int ca_csr(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, bool *reused_r, char *err,
    size_t errsize);
/* A self-signed server certificate in tls/HOST.crt and its key; refuses
 * when tls/HOST.crt exists. */
int ca_selfsign(const char *state_dir, const char *host,
    const struct ca_issue_opts *opts, char *err, size_t errsize);

/* Marks the certificate with this serial (hex, any case, colons allowed)
 * revoked in ca/index. */
int ca_revoke(const char *state_dir, const char *serial, char *err,
    size_t errsize);
/* Writes ca/crl.pem and the same CRL as DER in ca/crl.der (what an HTTP
 * distribution point serves, RFC 5280 4.2.1.13): a v2 CRL with a CRL
 * number and the revoked serials, valid CA_CRL_DAYS. */
int ca_crl(const char *state_dir, const char *passphrase, time_t now,
    char *err, size_t errsize);

/* Writes the root certificate to path, PEM or DER, mode 0644. */
int ca_export(const char *state_dir, const char *path, bool der, char *err,
    size_t errsize);

/* Prints the CA certificate (host NULL) or tls/HOST.crt: subject, issuer,
 * SANs, serial, validity, key, SHA-256 fingerprint and status. */
int ca_show(const char *state_dir, const char *host, FILE *out, char *err,
    size_t errsize);
/* Prints every certificate in ca/index (with details when tls/HOST.crt is
 * that certificate) and every other certificate in tls/. */
int ca_list(const char *state_dir, FILE *out, char *err, size_t errsize);

/* Creates the CA (ECDSA, defaults) and issues hostname's certificate: what
 * `tegami init` does. Refuses when a CA exists. */
int ca_setup_default(const char *state_dir, const char *hostname, char *err,
    size_t errsize);
/* The same with the server key 0640 and group key_gid ((gid_t)-1: 0600),
 * as `tegami ca issue` does for the group of the config's user. */
int ca_setup_default_gid(const char *state_dir, const char *hostname,
    gid_t key_gid, char *err, size_t errsize);

#endif
