/*
 * Files of the CA: atomic writes (O_EXCL temp file with its final mode,
 * fsync, rename, directory fsync), the ca/lock file, and PEM loading and
 * saving of certificates and keys (PKCS#8, optionally AES-256 encrypted).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_private.h"
#include "core/util.h"

void
ca_err(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

void
ca_ssl_err(char *err, size_t errsize, const char *fmt, ...)
{
	char ssl[256];
	unsigned long e;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	if ((e = ERR_peek_last_error()) != 0) {
		ERR_error_string_n(e, ssl, sizeof(ssl));
		len = strlen(err);
		if (len < errsize)
			snprintf(err + len, errsize - len, " (%s)", ssl);
	}
	ERR_clear_error();
}

int
ca_path(const char *state_dir, const char *name, char *out, size_t size)
{
	return path_join(out, size, "%s/ca/%s", state_dir, name);
}

int
ca_tls_path(const char *state_dir, const char *host, const char *ext,
    char *out, size_t size)
{
	return path_join(out, size, "%s/tls/%s.%s", state_dir, host, ext);
}

bool
ca_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int
ca_file_write(const char *path, const void *buf, size_t len, mode_t mode,
    char *err, size_t errsize)
{
	return ca_file_write_group(path, buf, len, mode, (gid_t)-1, err,
	    errsize);
}

int
ca_file_write_group(const char *path, const void *buf, size_t len,
    mode_t mode, gid_t gid, char *err, size_t errsize)
{
	char tmp[PATH_MAX], dir[PATH_MAX], id[17];
	int fd;

	queue_id_new(id);
	if (path_join(tmp, sizeof(tmp), "%s.tmp.%s", path, id) == -1 ||
	    path_dirname(path, dir, sizeof(dir)) == -1) {
		ca_err(err, errsize, "%s: path too long", path);
		return -1;
	}
	/* The mode is given to open() so that a key is never readable by
	 * others, not even between open() and a later fchmod(); fchmod
	 * then undoes what the umask took away from a certificate. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    gid != (gid_t)-1 ? 0600 : mode);
	if (fd == -1) {
		ca_err(err, errsize, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	/* The group changes while the file is empty and 0600, so that only
	 * the intended group ever gets to read it. */
	if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) == -1) {
		ca_err(err, errsize, "%s: cannot give it group %lu: %s", tmp,
		    (unsigned long)gid, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (fchmod(fd, mode) == -1 || write_all(fd, buf, len) == -1 ||
	    fsync(fd) == -1) {
		ca_err(err, errsize, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1) {
		ca_err(err, errsize, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (fsync_dir(dir) == -1) {
		ca_err(err, errsize, "%s: fsync: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
ca_file_write_bio(const char *path, BIO *bio, mode_t mode, char *err,
    size_t errsize)
{
	return ca_file_write_bio_group(path, bio, mode, (gid_t)-1, err,
	    errsize);
}

int
ca_file_write_bio_group(const char *path, BIO *bio, mode_t mode, gid_t gid,
    char *err, size_t errsize)
{
	char *data;
	long len;

	len = BIO_get_mem_data(bio, &data);
	if (len < 0) {
		ca_err(err, errsize, "%s: no data", path);
		return -1;
	}
	return ca_file_write_group(path, data, (size_t)len, mode, gid, err,
	    errsize);
}

static int
mkdir_mode(const char *path, mode_t mode, char *err, size_t errsize)
{
	char parent[PATH_MAX];

	if (mkdir(path, mode) == 0) {
		if (chmod(path, mode) == -1 ||
		    path_dirname(path, parent, sizeof(parent)) == -1 ||
		    fsync_dir(parent) == -1) {
			ca_err(err, errsize, "%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != EEXIST) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
ca_dirs_make(const char *state_dir, char *err, size_t errsize)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), "%s/ca", state_dir) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	/* Only the CA's owner has any business in ca/. */
	if (mkdir_mode(path, 0700, err, errsize) == -1)
		return -1;
	if (path_join(path, sizeof(path), "%s/tls", state_dir) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	return mkdir_mode(path, 0755, err, errsize);
}

int
ca_lock(const char *state_dir, int *fd_r, char *err, size_t errsize)
{
	char path[PATH_MAX];
	int fd;

	if (ca_path(state_dir, "lock", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			ca_err(err, errsize, "%s: flock: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
	}
	*fd_r = fd;
	return 0;
}

void
ca_unlock(int *fdp)
{
	if (*fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
}

X509 *
ca_cert_load(const char *path, char *err, size_t errsize)
{
	X509 *cert;
	BIO *bio;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (cert == NULL)
		ca_ssl_err(err, errsize, "%s: no PEM certificate", path);
	return cert;
}

int
ca_cert_save(const char *path, X509 *leaf, X509 *ca, char *err,
    size_t errsize)
{
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ca_ssl_err(err, errsize, "BIO_new");
		return -1;
	}
	if (PEM_write_bio_X509(bio, leaf) != 1 ||
	    (ca != NULL && PEM_write_bio_X509(bio, ca) != 1))
		ca_ssl_err(err, errsize, "%s: PEM encoding", path);
	else
		rc = ca_file_write_bio(path, bio, 0644, err, errsize);
	BIO_free(bio);
	return rc;
}

int
ca_key_save(const char *path, EVP_PKEY *key, const char *passphrase,
    gid_t gid, char *err, size_t errsize)
{
	BIO *bio;
	int rc = -1, ok;

	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ca_ssl_err(err, errsize, "BIO_new");
		return -1;
	}
	if (passphrase != NULL)
		ok = PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(),
		    (const unsigned char *)passphrase, (int)strlen(passphrase),
		    NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
		    NULL);
	if (ok != 1)
		ca_ssl_err(err, errsize, "%s: PEM encoding", path);
	else
		rc = ca_file_write_bio_group(path, bio,
		    gid != (gid_t)-1 ? 0640 : 0600, gid, err, errsize);
	/* The memory BIO held the unencrypted key when there was no
	 * passphrase; BIO_free does not clear it. */
	{
		char *data;
		long len = BIO_get_mem_data(bio, &data);

		if (len > 0)
			OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(bio);
	return rc;
}

struct pass_ctx {
	const char *passphrase;
	bool asked;
};

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_ctx *ctx = u;
	size_t len;

	ctx->asked = true;
	if (ctx->passphrase == NULL)
		return -1;
	len = strlen(ctx->passphrase);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, ctx->passphrase, len);
	return (int)len;
}

EVP_PKEY *
ca_key_load(const char *path, const char *passphrase, char *err,
    size_t errsize)
{
	struct pass_ctx ctx = { passphrase, false };
	EVP_PKEY *key;
	BIO *bio;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ca_err(err, errsize, "%s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &ctx);
	BIO_free(bio);
	if (key != NULL) {
		ERR_clear_error();
		return key;
	}
	ERR_clear_error();
	if (ctx.asked && passphrase == NULL)
		ca_err(err, errsize, "%s is encrypted: give the passphrase "
		    "with --passphrase-stdin", path);
	else if (ctx.asked)
		ca_err(err, errsize, "%s: wrong passphrase", path);
	else
		ca_err(err, errsize, "%s: no PEM private key", path);
	return NULL;
}

int
ca_load(const char *state_dir, const char *passphrase, X509 **cert_r,
    EVP_PKEY **key_r, char *err, size_t errsize)
{
	char path[PATH_MAX];
	EVP_PKEY *key;
	X509 *cert;

	if (ca_path(state_dir, "ca.crt", path, sizeof(path)) == -1) {
		ca_err(err, errsize, "%s: path too long", state_dir);
		return -1;
	}
	if (!ca_file_exists(path)) {
		ca_err(err, errsize, "no CA in %s/ca: run `tegami ca init` "
		    "first", state_dir);
		return -1;
	}
	if ((cert = ca_cert_load(path, err, errsize)) == NULL)
		return -1;
	if (key_r != NULL) {
		if (ca_path(state_dir, "ca.key", path, sizeof(path)) == -1 ||
		    (key = ca_key_load(path, passphrase, err, errsize)) ==
		    NULL) {
			X509_free(cert);
			return -1;
		}
		if (X509_check_private_key(cert, key) != 1) {
			ca_err(err, errsize, "%s does not belong to ca.crt",
			    path);
			ERR_clear_error();
			EVP_PKEY_free(key);
			X509_free(cert);
			return -1;
		}
		*key_r = key;
	}
	*cert_r = cert;
	return 0;
}
