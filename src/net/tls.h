/*
 * Server-side TLS settings (RFC 8996, RFC 7525 / BCP 195, Mozilla's
 * "intermediate" profile): TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers
 * for 1.2, no compression, no renegotiation, session tickets on, and the
 * certificate chosen by SNI from the state directory's tls/ folder.
 */
#ifndef TEGAMI_TLS_H
#define TEGAMI_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_server;

/*
 * Loads every HOST.crt (leaf first, then its chain) with its HOST.key
 * from tls_dir. The certificate of default_host is the one served when
 * the client sends no SNI or an unknown name. Returns the settings, or
 * NULL with err set: a certificate without its key (or the reverse), a
 * key that does not match, an unreadable file, or no certificate for
 * default_host. *none_r is set when tls_dir holds no certificate at all
 * (TLS is then simply off), in which case err says so too.
 */
struct tls_server *tls_server_load(const char *tls_dir,
    const char *default_host, int *none_r, char *err, size_t errsize);
void tls_server_free(struct tls_server **tsp);

/* A new server-side SSL for one connection, or NULL (logged). */
SSL *tls_server_ssl(struct tls_server *ts);

/* How many hostnames have a certificate. */
size_t tls_server_count(const struct tls_server *ts);

#endif
