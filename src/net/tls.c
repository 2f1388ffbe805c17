/*
 * Server TLS contexts, one per certificate in tls/, chosen by SNI; see
 * tls.h for the profile.
 */
#include "net/tls.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>

#include "core/log.h"
#include "core/util.h"
#include "net/tls_tickets.h"

#define TLS_HOSTS_MAX 256

/* Mozilla "intermediate" (v5.7): ECDHE key exchange, AEAD ciphers only. */
#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

struct tls_host {
	char name[256];
	SSL_CTX *ctx;
};

struct tls_server {
	struct tls_host hosts[TLS_HOSTS_MAX];
	size_t n_hosts;
	SSL_CTX *default_ctx;
};

static void
tls_error(char *err, size_t errsize, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errsize, "%s: %s%s%s", path, what, buf[0] ? ": " : "",
	    buf);
}

static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *ts = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t i;

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < ts->n_hosts; i++)
		if (strcasecmp(ts->hosts[i].name, name) == 0) {
			if (ts->hosts[i].ctx != SSL_get_SSL_CTX(ssl))
				SSL_set_SSL_CTX(ssl, ts->hosts[i].ctx);
			break;
		}
	/* An unknown name gets the default certificate, as most servers do:
	 * the client's own hostname check decides. */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
tls_ctx_new(struct tls_server *ts, const char *crt, const char *key,
    char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid_ctx[] = "tegami";

	if (ctx == NULL) {
		tls_error(err, errsize, "SSL_CTX_new failed", crt);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* OpenSSL 3 refuses client-initiated renegotiation unless
	 * SSL_OP_ALLOW_CLIENT_RENEGOTIATION is set; refuse all of it. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	/* Every cipher on the list is strong; choosing in our order keeps
	 * AES-GCM first for clients with AES hardware, and scanners (which
	 * rate "no server order" as a finding) quiet. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		tls_error(err, errsize, "cipher settings refused", crt);
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (tls_tickets_use(ctx) < 0) {
		tls_error(err, errsize, "session ticket keys refused", crt);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) {
		tls_error(err, errsize, "cannot load the certificate", crt);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errsize, "cannot load the key, or it does not "
		    "match the certificate", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errsize, "the key does not match the "
		    "certificate", key);
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, ts);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool
tls_name_has_suffix(const char *name, const char *suffix, size_t *stem_r)
{
	size_t n = strlen(name), m = strlen(suffix);

	if (n <= m || strcmp(name + n - m, suffix) != 0)
		return false;
	*stem_r = n - m;
	return true;
}

struct tls_server *
tls_server_load(const char *tls_dir, const char *default_host, int *none_r,
    char *err, size_t errsize)
{
	struct tls_server *ts = xcalloc(1, sizeof(*ts));
	char crt[PATH_MAX], key[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t stem, i;
	DIR *d;

	*none_r = 0;
	d = opendir(tls_dir);
	if (d == NULL && errno != ENOENT) {
		snprintf(err, errsize, "%s: %s", tls_dir, strerror(errno));
		goto fail;
	}
	while (d != NULL && (de = readdir(d)) != NULL) {
		struct tls_host *h;

		if (de->d_name[0] == '.')
			continue;
		if (tls_name_has_suffix(de->d_name, ".key", &stem)) {
			/* A key without its certificate is a mistake too. */
			if (path_join(crt, sizeof(crt), "%s/%.*s.crt", tls_dir,
			    (int)stem, de->d_name) == 0 && stat(crt, &st) < 0 &&
			    path_join(key, sizeof(key), "%s/%.*s.csr", tls_dir,
			    (int)stem, de->d_name) == 0 && stat(key, &st) < 0) {
				snprintf(err, errsize, "%s/%s: a key without its "
				    "certificate %s", tls_dir, de->d_name, crt);
				goto fail;
			}
			continue;
		}
		if (!tls_name_has_suffix(de->d_name, ".crt", &stem))
			continue;
		if (ts->n_hosts == TLS_HOSTS_MAX || stem >= sizeof(h->name)) {
			snprintf(err, errsize, "%s: too many certificates or "
			    "name too long", tls_dir);
			goto fail;
		}
		h = &ts->hosts[ts->n_hosts];
		memcpy(h->name, de->d_name, stem);
		h->name[stem] = '\0';
		if (path_join(crt, sizeof(crt), "%s/%s.crt", tls_dir,
		    h->name) < 0 || path_join(key, sizeof(key), "%s/%s.key",
		    tls_dir, h->name) < 0) {
			snprintf(err, errsize, "%s: path too long", tls_dir);
			goto fail;
		}
		if (stat(key, &st) < 0) {
			snprintf(err, errsize, "%s: certificate without its key "
			    "%s", crt, key);
			goto fail;
		}
		h->ctx = tls_ctx_new(ts, crt, key, err, errsize);
		if (h->ctx == NULL)
			goto fail;
		ts->n_hosts++;
	}
	if (d != NULL)
		closedir(d);
	d = NULL;
	if (ts->n_hosts == 0) {
		*none_r = 1;
		snprintf(err, errsize, "%s: no certificate; TLS is off",
		    tls_dir);
		goto fail;
	}
	for (i = 0; i < ts->n_hosts; i++)
		if (strcasecmp(ts->hosts[i].name, default_host) == 0)
			ts->default_ctx = ts->hosts[i].ctx;
	if (ts->default_ctx == NULL) {
		snprintf(err, errsize, "%s: no certificate for the hostname "
		    "%s (%s/%s.crt)", tls_dir, default_host, tls_dir,
		    default_host);
		goto fail;
	}
	return ts;
fail:
	if (d != NULL)
		closedir(d);
	tls_server_free(&ts);
	return NULL;
}

void
tls_server_free(struct tls_server **tsp)
{
	struct tls_server *ts = *tsp;
	size_t i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n_hosts; i++)
		SSL_CTX_free(ts->hosts[i].ctx);
	free(ts);
	*tsp = NULL;
}

SSL *
tls_server_ssl(struct tls_server *ts)
{
	SSL *ssl = SSL_new(ts->default_ctx);

	if (ssl == NULL) {
		log_warnx("SSL_new failed");
		ERR_clear_error();
	}
	return ssl;
}

size_t
tls_server_count(const struct tls_server *ts)
{
	return ts != NULL ? ts->n_hosts : 0;
}
