/*
 * Shared session-ticket keys (tls_tickets.h). A ticket's key name is the
 * period number (8 bytes, big-endian) and 8 bytes derived from the
 * secret, so the decrypting side finds the period without a table; the
 * AES-256 and HMAC-SHA256 keys of a period are HMAC-SHA256(secret,
 * label || period).
 */
#include "net/tls_tickets.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/log.h"

#define TICKET_SECRET_LEN 32
#define TICKET_NAME_LEN 16	/* OpenSSL's key_name */

struct ticket_keys {
	unsigned char name[TICKET_NAME_LEN];
	unsigned char aes[32];
	unsigned char hmac[32];
};

static unsigned char ticket_secret[TICKET_SECRET_LEN];
static bool ticket_secret_set;

void
tls_tickets_init(void)
{
	if (RAND_bytes(ticket_secret, sizeof(ticket_secret)) != 1)
		fatalx("RAND_bytes failed");
	ticket_secret_set = true;
}

static int
ticket_derive(const char *label, uint64_t period, unsigned char out[32])
{
	unsigned char msg[64];
	size_t n = strlen(label);
	unsigned int out_len = 32;
	int i;

	memcpy(msg, label, n);
	for (i = 0; i < 8; i++)
		msg[n + (size_t)i] = (unsigned char)(period >> (56 - 8 * i));
	return HMAC(EVP_sha256(), ticket_secret, sizeof(ticket_secret), msg,
	    n + 8, out, &out_len) == NULL ? -1 : 0;
}

static int
ticket_keys_for(uint64_t period, struct ticket_keys *k)
{
	unsigned char tag[32];
	int i;

	if (!ticket_secret_set)
		tls_tickets_init();
	if (ticket_derive("tegami ticket name", period, tag) < 0 ||
	    ticket_derive("tegami ticket aes", period, k->aes) < 0 ||
	    ticket_derive("tegami ticket hmac", period, k->hmac) < 0)
		return -1;
	for (i = 0; i < 8; i++)
		k->name[i] = (unsigned char)(period >> (56 - 8 * i));
	memcpy(k->name + 8, tag, 8);
	return 0;
}

static uint64_t
ticket_period_now(void)
{
	return (uint64_t)time(NULL) / TLS_TICKET_EPOCH_SECONDS;
}

static int
ticket_set_mac(EVP_MAC_CTX *hctx, struct ticket_keys *k)
{
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	return EVP_MAC_init(hctx, k->hmac, sizeof(k->hmac), params) == 1 ?
	    0 : -1;
}

/*
 * OpenSSL's callback: enc 1 makes a new ticket with this period's keys;
 * enc 0 opens one: 1 when it is this period's, 2 (use it, then issue a
 * new one) when it is the previous period's, 0 (full handshake) else.
 */
static int
ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_keys k;
	uint64_t now = ticket_period_now(), period = 0;
	int i, rc = -1;

	(void)ssl;
	if (enc) {
		if (ticket_keys_for(now, &k) < 0 ||
		    RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1)
			goto done;
		memcpy(key_name, k.name, TICKET_NAME_LEN);
		if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes,
		    iv) != 1 || ticket_set_mac(hctx, &k) < 0)
			goto done;
		rc = 1;
		goto done;
	}
	for (i = 0; i < 8; i++)
		period = (period << 8) | key_name[i];
	rc = 0;
	if ((period != now && period + 1 != now) ||
	    ticket_keys_for(period, &k) < 0 ||
	    CRYPTO_memcmp(k.name, key_name, TICKET_NAME_LEN) != 0)
		goto done;
	if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes,
	    iv) != 1 || ticket_set_mac(hctx, &k) < 0) {
		rc = -1;
		goto done;
	}
	rc = period == now ? 1 : 2;
 done:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int
tls_tickets_use(SSL_CTX *ctx)
{
	return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1 ?
	    0 : -1;
}
