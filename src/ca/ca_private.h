/*
 * Internals shared by the files of the CA module: atomic file writes, the
 * lock, PEM loading, certificate building and the index of issued
 * certificates. Functions return 0 or -1 (or NULL) with err set.
 */
#ifndef TEGAMI_CA_PRIVATE_H
#define TEGAMI_CA_PRIVATE_H

#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

#define CA_SERIAL_BYTES		16	/* 128 bits (CA/B BR: >= 64 random) */
#define CA_SERIAL_HEX_MAX	41	/* 20 octets (RFC 5280 4.1.2.2) + NUL */
#define CA_INDEX_TIME_LEN	15	/* YYYYMMDDHHMMSSZ */
#define CA_HOST_MAX		254

/* ca_store.c */
void ca_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like ca_err, with OpenSSL's first queued error appended; clears it. */
void ca_ssl_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Temp file (O_EXCL, final mode from the start), write, fsync, rename,
 * fsync of the directory. */
int ca_file_write(const char *path, const void *buf, size_t len,
    mode_t mode, char *err, size_t errsize);
/* The same, and the file is given group gid ((gid_t)-1: unchanged)
 * while it is still empty and 0600, before mode opens it to the group. */
int ca_file_write_group(const char *path, const void *buf, size_t len,
    mode_t mode, gid_t gid, char *err, size_t errsize);
int ca_file_write_bio(const char *path, BIO *bio, mode_t mode, char *err,
    size_t errsize);
int ca_file_write_bio_group(const char *path, BIO *bio, mode_t mode,
    gid_t gid, char *err, size_t errsize);
/* Creates ca/ (0700) and tls/ (0755) when missing. */
int ca_dirs_make(const char *state_dir, char *err, size_t errsize);
/* flock(LOCK_EX) on ca/lock; ca_unlock closes it. */
int ca_lock(const char *state_dir, int *fd_r, char *err, size_t errsize);
void ca_unlock(int *fdp);
bool ca_file_exists(const char *path);
/* The first certificate of a PEM file. */
X509 *ca_cert_load(const char *path, char *err, size_t errsize);
/* leaf, then ca when not NULL, as PEM, mode 0644. */
int ca_cert_save(const char *path, X509 *leaf, X509 *ca, char *err,
    size_t errsize);
/* PKCS#8 PEM, AES-256-CBC when passphrase is not NULL; mode 0600, or
 * 0640 with group gid when gid is not (gid_t)-1. */
int ca_key_save(const char *path, EVP_PKEY *key, const char *passphrase,
    gid_t gid, char *err, size_t errsize);
EVP_PKEY *ca_key_load(const char *path, const char *passphrase, char *err,
    size_t errsize);
/* The CA certificate, and its key when key_r is not NULL (checked to match
 * the certificate). */
int ca_load(const char *state_dir, const char *passphrase, X509 **cert_r,
    EVP_PKEY **key_r, char *err, size_t errsize);

/* ca_names.c: subjectAltName entries, host first, duplicates dropped. */
GENERAL_NAMES *ca_names_make(const char *host, const char *const *sans,
    size_t n_sans, char *err, size_t errsize);
/* The names of a certificate's subjectAltName as "DNS:a, IP:1.2.3.4"; out
 * is "" without the extension. */
void ca_names_format(X509 *cert, char *out, size_t size);
/* The SAN entries of cert as strings usable in ca_issue_opts.sans (DNS
 * names and IP:ADDR). The caller frees each string and the array. */
int ca_names_list(X509 *cert, char ***list_r, size_t *n_r, char *err,
    size_t errsize);

/* ca_crldp.c: adds a cRLDistributionPoints extension with one URI. */
int ca_crldp_add(X509 *cert, const char *url, char *err, size_t errsize);
/* The first URI of cert's CRL distribution points into out: 1 found, 0
 * none, -1 when it does not fit or the extension is malformed. */
int ca_crldp_get(X509 *cert, char *out, size_t size);
/* Writes ca/crl-url (the caller checked url). */
int ca_crl_url_save(const char *state_dir, const char *url, char *err,
    size_t errsize);

/* ca_cert.c */
X509 *ca_cert_make_root(EVP_PKEY *key, const char *name, int days,
    time_t now, char *err, size_t errsize);
/* A server certificate for key, signed by issuer_key; issuer NULL makes it
 * self-signed. crl_url (NULL: none) becomes its CRL distribution point. */
X509 *ca_cert_make_leaf(EVP_PKEY *key, const char *host, GENERAL_NAMES *names,
    X509 *issuer, EVP_PKEY *issuer_key, int days, time_t now,
    const char *crl_url, char *err, size_t errsize);
X509_REQ *ca_req_make(EVP_PKEY *key, const char *host, GENERAL_NAMES *names,
    char *err, size_t errsize);
/* Upper-case hex without leading zeros' padding beyond whole bytes. */
int ca_serial_hex(const ASN1_INTEGER *serial, char *out, size_t size);
/* ASN1_TIME as YYYYMMDDHHMMSSZ (CA_INDEX_TIME_LEN + 1 bytes). */
int ca_time_index(const ASN1_TIME *t, char *out, size_t size);
/* The digest for signing with key (SHA-256). */
const EVP_MD *ca_sign_md(EVP_PKEY *key);

/* ca_index.c: one line per issued certificate,
 * STATUS TAB SERIAL TAB NOT-AFTER TAB REVOKED-AT TAB HOST */
struct ca_index_entry {
	char status;			/* 'V' valid, 'R' revoked */
	char serial[CA_SERIAL_HEX_MAX];
	char not_after[CA_INDEX_TIME_LEN + 1];
	char revoked[CA_INDEX_TIME_LEN + 1];	/* "-" when valid */
	char host[CA_HOST_MAX];
};
/* Parses one index line (no newline; modified in place): 0, or -1 when
 * it is not exactly five valid TAB-separated fields. */
int ca_index_parse_line(char *line, struct ca_index_entry *e);
int ca_index_load(const char *state_dir, struct ca_index_entry **list_r,
    size_t *n_r, char *err, size_t errsize);
int ca_index_save(const char *state_dir, const struct ca_index_entry *list,
    size_t n, char *err, size_t errsize);
/* Loads, appends e, saves (the caller holds the lock). */
int ca_index_append(const char *state_dir, const struct ca_index_entry *e,
    char *err, size_t errsize);
/* The entry with this serial (normalised hex) or NULL. */
struct ca_index_entry *ca_index_find(struct ca_index_entry *list, size_t n,
    const char *serial);
/* Normalises a user-given serial: strips colons, upper case, drops
 * leading zero bytes; -1 when it is not hex. */
int ca_serial_normalise(const char *in, char *out, size_t size);

#endif
