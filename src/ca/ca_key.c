/*
 * Key generation for the CA and servers: ECDSA P-256 by default, RSA of
 * 2048, 3072 or 4096 bits on request (NIST SP 800-57: below 2048 bits RSA
 * is no longer acceptable; Mozilla's TLS guidelines agree).
 */
#include <stdio.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "ca/ca_private.h"

const char *
ca_key_spec_check(const struct ca_key_spec *key)
{
	if (key->type == CA_KEY_ECDSA)
		return NULL;
	if (key->type != CA_KEY_RSA)
		return "unknown key type";
	if (key->bits < 2048)
		return "RSA keys below 2048 bits can be factored with "
		    "feasible effort and clients reject them; use 3072 or "
		    "4096, or ECDSA (the default)";
	if (key->bits != 2048 && key->bits != 3072 && key->bits != 4096)
		return "RSA key sizes are 2048, 3072 or 4096 bits";
	return NULL;
}

EVP_PKEY *
ca_key_generate(const struct ca_key_spec *key, char *err, size_t errsize)
{
	const char *why;
	EVP_PKEY *pkey;

	if ((why = ca_key_spec_check(key)) != NULL) {
		ca_err(err, errsize, "%s", why);
		return NULL;
	}
	if (key->type == CA_KEY_ECDSA)
		pkey = EVP_EC_gen("P-256");
	else
		pkey = EVP_RSA_gen((unsigned int)key->bits);
	if (pkey == NULL)
		ca_ssl_err(err, errsize, "key generation");
	return pkey;
}
