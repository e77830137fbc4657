/* Signature verification through the system libcrypto (OpenSSL 3), found with dlopen.
 *
 * Building needs no OpenSSL headers: the few entry points used are declared here with
 * opaque pointers and looked up by name at load time. If the library or any symbol is
 * missing, qrv_ossl_load() returns 0 and callers keep using cryptography.
 *
 * A key is parsed once (d2i_PUBKEY over SubjectPublicKeyInfo DER). ES256 and PS256 keep a
 * verify-initialised EVP_PKEY_CTX per key and verify the SHA-256 digest of the message;
 * EdDSA (no pre-hash) uses a one-shot EVP_DigestVerify. Callers hold the GIL, so a key's
 * context is never used by two threads at once.
 *
 * ES256 keys made with `fast` use a per-key precomputed table instead (ec256.h) once it is
 * built (lazily, on the key's first verification); the EVP context stays as the fallback.
 */
#ifndef QRV_OSSL_H
#define QRV_OSSL_H

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#define QRV_KIND_ES256 1
#define QRV_KIND_PS256 2
#define QRV_KIND_EDDSA 3

#define QRV_EVP_PKEY_RSA 6
#define QRV_EVP_PKEY_EC 408
#define QRV_EVP_PKEY_ED25519 1087
#define QRV_RSA_PKCS1_PSS_PADDING 6

typedef struct qrv_ossl_api {
    void *(*d2i_PUBKEY)(void **, const unsigned char **, long);
    void (*EVP_PKEY_free)(void *);
    int (*EVP_PKEY_get_base_id)(const void *);
    int (*EVP_PKEY_get_bits)(const void *);
    void *(*EVP_PKEY_CTX_new)(void *, void *);
    void (*EVP_PKEY_CTX_free)(void *);
    int (*EVP_PKEY_verify_init)(void *);
    int (*EVP_PKEY_verify)(void *, const unsigned char *, size_t, const unsigned char *, size_t);
    int (*EVP_PKEY_CTX_set_signature_md)(void *, const void *);
    int (*EVP_PKEY_CTX_set_rsa_padding)(void *, int);
    int (*EVP_PKEY_CTX_set_rsa_pss_saltlen)(void *, int);
    int (*EVP_PKEY_CTX_set_rsa_mgf1_md)(void *, const void *);
    const void *(*EVP_sha256)(void);
    void *(*EVP_MD_CTX_new)(void);
    void (*EVP_MD_CTX_free)(void *);
    int (*EVP_DigestVerifyInit)(void *, void **, const void *, void *, void *);
    int (*EVP_DigestVerify)(void *, const unsigned char *, size_t, const unsigned char *, size_t);
    unsigned char *(*SHA256)(const unsigned char *, size_t, unsigned char *);
    void (*ERR_clear_error)(void);
    const char *(*OpenSSL_version)(int);
} qrv_ossl_api;

static qrv_ossl_api qrv_ossl;
static int qrv_ossl_state = 0; /* 0 not tried, 1 loaded, -1 unavailable */

#include "ec256.h"

#define QRV_SYM(name)                                                       \
    do {                                                                    \
        *(void **)(&qrv_ossl.name) = dlsym(h, #name);                       \
        if (qrv_ossl.name == NULL) goto fail;                               \
    } while (0)

/* 1 when libcrypto 3 and every symbol were found (once per process). */
static int qrv_ossl_load(void) {
    void *h;
    if (qrv_ossl_state) return qrv_ossl_state > 0;
    qrv_ossl_state = -1;
    h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) return 0;
    QRV_SYM(d2i_PUBKEY);
    QRV_SYM(EVP_PKEY_free);
    QRV_SYM(EVP_PKEY_get_base_id);
    QRV_SYM(EVP_PKEY_get_bits);
    QRV_SYM(EVP_PKEY_CTX_new);
    QRV_SYM(EVP_PKEY_CTX_free);
    QRV_SYM(EVP_PKEY_verify_init);
    QRV_SYM(EVP_PKEY_verify);
    QRV_SYM(EVP_PKEY_CTX_set_signature_md);
    QRV_SYM(EVP_PKEY_CTX_set_rsa_padding);
    QRV_SYM(EVP_PKEY_CTX_set_rsa_pss_saltlen);
    QRV_SYM(EVP_PKEY_CTX_set_rsa_mgf1_md);
    QRV_SYM(EVP_sha256);
    QRV_SYM(EVP_MD_CTX_new);
    QRV_SYM(EVP_MD_CTX_free);
    QRV_SYM(EVP_DigestVerifyInit);
    QRV_SYM(EVP_DigestVerify);
    QRV_SYM(SHA256);
    QRV_SYM(ERR_clear_error);
    QRV_SYM(OpenSSL_version);
    qrv_ec_load(h); /* optional: without it, ES256 stays on the EVP path */
    qrv_ossl_state = 1;
    return 1;
fail:
    memset(&qrv_ossl, 0, sizeof(qrv_ossl));
    dlclose(h);
    return 0;
}

static const char *qrv_ossl_version(void) {
    return qrv_ossl_state > 0 ? qrv_ossl.OpenSSL_version(0) : "";
}

typedef struct qrv_key {
    void *pkey;
    void *pctx; /* ES256 / PS256: verify-initialised context */
    int kind;
    qrv_ec_key ec; /* ES256: the table path (state -1 when not used) */
} qrv_key;

static void qrv_key_free(qrv_key *k) {
    qrv_ec_key_free(&k->ec);
    if (k->pctx) qrv_ossl.EVP_PKEY_CTX_free(k->pctx);
    if (k->pkey) qrv_ossl.EVP_PKEY_free(k->pkey);
    k->pctx = NULL;
    k->pkey = NULL;
}

/* Parse SubjectPublicKeyInfo DER for `kind`. 1 ok, 0 refused (key freed). With `fast`,
 * an ES256 key may use the table path (ec256.h). */
static int qrv_key_init(qrv_key *k, const unsigned char *spki, long n, int kind, int fast) {
    const unsigned char *p = spki;
    int id;
    memset(k, 0, sizeof(*k));
    k->ec.state = -1;
    if (qrv_ossl_state <= 0) return 0;
    k->kind = kind;
    k->pkey = qrv_ossl.d2i_PUBKEY(NULL, &p, n);
    if (k->pkey == NULL || p != spki + n) goto fail;
    id = qrv_ossl.EVP_PKEY_get_base_id(k->pkey);
    if (kind == QRV_KIND_EDDSA) {
        if (id != QRV_EVP_PKEY_ED25519) goto fail;
        return 1;
    }
    if (kind == QRV_KIND_ES256) {
        if (id != QRV_EVP_PKEY_EC || qrv_ossl.EVP_PKEY_get_bits(k->pkey) != 256) goto fail;
    } else if (kind == QRV_KIND_PS256) {
        if (id != QRV_EVP_PKEY_RSA || qrv_ossl.EVP_PKEY_get_bits(k->pkey) < 2048) goto fail;
    } else {
        goto fail;
    }
    k->pctx = qrv_ossl.EVP_PKEY_CTX_new(k->pkey, NULL);
    if (k->pctx == NULL || qrv_ossl.EVP_PKEY_verify_init(k->pctx) != 1) goto fail;
    if (qrv_ossl.EVP_PKEY_CTX_set_signature_md(k->pctx, qrv_ossl.EVP_sha256()) != 1) goto fail;
    if (kind == QRV_KIND_PS256) {
        if (qrv_ossl.EVP_PKEY_CTX_set_rsa_padding(k->pctx, QRV_RSA_PKCS1_PSS_PADDING) != 1 ||
            qrv_ossl.EVP_PKEY_CTX_set_rsa_mgf1_md(k->pctx, qrv_ossl.EVP_sha256()) != 1 ||
            qrv_ossl.EVP_PKEY_CTX_set_rsa_pss_saltlen(k->pctx, 32) != 1)
            goto fail;
    }
    if (kind == QRV_KIND_ES256 && fast) qrv_ec_key_init(&k->ec, k->pkey);
    return 1;
fail:
    qrv_ossl.ERR_clear_error();
    qrv_key_free(k);
    return 0;
}

/* One DER INTEGER from a big-endian unsigned value of `n` bytes; returns bytes written. */
static size_t qrv_der_int(unsigned char *out, const unsigned char *v, size_t n) {
    size_t start = 0, len, o = 0;
    while (start + 1 < n && v[start] == 0) start++;
    len = n - start;
    out[o++] = 0x02;
    if (v[start] & 0x80) {
        out[o++] = (unsigned char)(len + 1);
        out[o++] = 0;
    } else {
        out[o++] = (unsigned char)len;
    }
    memcpy(out + o, v + start, len);
    return o + len;
}

/* ES256 over a SHA-256 digest and a raw r || s: the table path when the key has (or can
 * now build) its table, else EVP. 1 valid, 0 not valid. */
static int qrv_es256_digest(qrv_key *k, const unsigned char *digest, const unsigned char *sig) {
    unsigned char der[80];
    size_t o;
    if (k->pkey == NULL || k->kind != QRV_KIND_ES256) return 0;
    if (k->ec.state == 1 || (k->ec.state == 0 && qrv_ec_key_build(&k->ec)))
        return qrv_ec_verify_digest(&k->ec, digest, sig);
    o = 2;
    o += qrv_der_int(der + o, sig, 32);
    o += qrv_der_int(der + o, sig + 32, 32);
    der[0] = 0x30;
    der[1] = (unsigned char)(o - 2);
    if (qrv_ossl.EVP_PKEY_verify(k->pctx, der, o, digest, 32) != 1) {
        qrv_ossl.ERR_clear_error();
        return 0;
    }
    return 1;
}

/* The table path's state for a key: 1 table ready, 0 not built yet, 2 being built on
 * another thread, -1 EVP only. */
static int qrv_key_ec_state(const qrv_key *k) { return k->ec.state; }

/* A key's table built elsewhere (_ossl.pyx): mark it (state 0 -> 2; 1 when marked), make
 * the table without the GIL, install it with the GIL held. */
static int qrv_key_ec_mark(qrv_key *k) {
    if (k->ec.state != 0 || qrv_ec_tables >= qrv_ec_max_tables) return 0;
    k->ec.state = 2;
    return 1;
}
static void *qrv_key_ec_make(const qrv_key *k) {
    return qrv_ec_table_for(k->ec.pub, k->ec.publen);
}
static int qrv_key_ec_install(qrv_key *k, void *gq) {
    if (k->ec.state != 2) { /* freed or changed meanwhile: not ours to set */
        if (gq != NULL) qrv_ec.EC_GROUP_free(gq);
        return k->ec.state == 1;
    }
    return qrv_ec_key_install(&k->ec, gq);
}
/* A key marked but not built (its builder thread is gone, after fork): back to 0. */
static void qrv_key_ec_unmark(qrv_key *k) {
    if (k->ec.state == 2) k->ec.state = 0;
}

/* 1 valid, 0 not valid (any malformed input included). */
static int qrv_verify(qrv_key *k, const unsigned char *sig, size_t siglen,
                      const unsigned char *msg, size_t msglen) {
    unsigned char digest[32];
    int rc;
    void *mctx;
    if (k->pkey == NULL) return 0;
    if (k->kind == QRV_KIND_ES256) {
        if (siglen != 64) return 0;
        qrv_ossl.SHA256(msg, msglen, digest);
        return qrv_es256_digest(k, digest, sig);
    } else if (k->kind == QRV_KIND_PS256) {
        qrv_ossl.SHA256(msg, msglen, digest);
        rc = qrv_ossl.EVP_PKEY_verify(k->pctx, sig, siglen, digest, 32);
    } else {
        mctx = qrv_ossl.EVP_MD_CTX_new();
        if (mctx == NULL) {
            rc = 0;
        } else {
            rc = qrv_ossl.EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, k->pkey);
            if (rc == 1) rc = qrv_ossl.EVP_DigestVerify(mctx, sig, siglen, msg, msglen);
            qrv_ossl.EVP_MD_CTX_free(mctx);
        }
    }
    if (rc != 1) {
        qrv_ossl.ERR_clear_error();
        return 0;
    }
    return 1;
}

#endif
