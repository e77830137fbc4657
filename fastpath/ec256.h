/* ES256 (ECDSA P-256 with SHA-256) verification with a precomputed table per issuer key.
 *
 * Verification computes X = u1*G + u2*Q. OpenSSL's generic ECDSA verify multiplies the
 * public key Q with a variable-base ladder; P-256 in libcrypto (ecp_nistz256) is much
 * faster for a group GENERATOR that has a precomputed table. So each issuer key gets a
 * second group whose generator is Q, with its table built once (EC_GROUP_precompute_mult,
 * about 150 KB), and both products are fixed-base multiplications:
 *
 *     reject unless 1 <= r, s < n;  e = SHA-256(message) as an integer
 *     w = s^-1 mod n;  u1 = e*w mod n;  u2 = r*w mod n
 *     X = u1*G + u2*Q (in Jacobian coordinates);  reject X at infinity
 *     accept iff X.x / Z^2 == r or r + n (mod p)    (that is, affine x mod n == r)
 *
 * Everything here handles public data only, so variable-time code is fine (the inverse
 * mod n is a plain binary extended Euclid). Any libcrypto failure is "not valid".
 *
 * The deprecated EC_GROUP / EC_POINT / BN entry points are looked up with dlsym on the
 * handle ossl.h opened; if any is missing, qrv_ec_state stays -1 and ES256 keys use the
 * EVP path. Tables are built lazily on a key's first verification, for at most
 * qrv_ec_max_tables keys at once (QRV_EC_MAX_TABLES unless set; later keys use the EVP
 * path until a table is freed). Scratch values are shared:
 * callers hold the GIL (as for the keys' EVP contexts).
 *
 * Included by ossl.h after qrv_ossl is declared.
 */
#ifndef QRV_EC256_H
#define QRV_EC256_H

#include <stdint.h>

#ifndef QRV_EC_MAX_TABLES
#define QRV_EC_MAX_TABLES 256
#endif
#define QRV_NID_P256 415

typedef struct qrv_ec_api {
    void *(*EC_GROUP_new_by_curve_name)(int);
    void *(*EC_GROUP_dup)(const void *);
    void (*EC_GROUP_free)(void *);
    int (*EC_GROUP_set_generator)(void *, const void *, const void *, const void *);
    int (*EC_GROUP_precompute_mult)(void *, void *);
    int (*EC_GROUP_have_precompute_mult)(const void *);
    const void *(*EC_GROUP_get0_order)(const void *);
    int (*EC_GROUP_get_curve)(const void *, void *, void *, void *, void *);
    void *(*EC_POINT_new)(const void *);
    void (*EC_POINT_free)(void *);
    int (*EC_POINT_oct2point)(const void *, void *, const unsigned char *, size_t, void *);
    int (*EC_POINT_mul)(const void *, void *, const void *, const void *, const void *, void *);
    int (*EC_POINT_add)(const void *, void *, const void *, const void *, void *);
    int (*EC_POINT_is_at_infinity)(const void *, const void *);
    int (*EC_POINT_get_Jprojective_coordinates_GFp)(const void *, const void *, void *, void *,
                                                    void *, void *);
    void *(*BN_CTX_new)(void);
    void *(*BN_new)(void);
    void *(*BN_bin2bn)(const unsigned char *, int, void *);
    int (*BN_bn2binpad)(const void *, unsigned char *, int);
    int (*BN_mod_mul)(void *, const void *, const void *, const void *, void *);
    int (*BN_mod_sqr)(void *, const void *, const void *, void *);
    int (*BN_mod_sub)(void *, const void *, const void *, const void *, void *);
    int (*BN_add)(void *, const void *, const void *);
    int (*BN_is_zero)(const void *);
    int (*BN_cmp)(const void *, const void *);
    const void *(*BN_value_one)(void);
    int (*EVP_PKEY_get_octet_string_param)(const void *, const char *, unsigned char *, size_t,
                                           size_t *);
} qrv_ec_api;

static qrv_ec_api qrv_ec;
static int qrv_ec_state = -1; /* 1 usable */
static int qrv_ec_tables = 0; /* keys holding a table now */
static int qrv_ec_max_tables = QRV_EC_MAX_TABLES; /* settable (tests, operators) */

/* Shared state, made once at load: the standard group, a BN_CTX, scratch values. */
enum { QB_N, QB_P, QB_R, QB_E, QB_W, QB_U1, QB_U2, QB_T, QB_X, QB_Z, QB_RN, QB_COUNT };
static void *qrv_ec_g;
static void *qrv_ec_ctx;
static void *qrv_ec_bn[QB_COUNT];
static void *qrv_ec_p1, *qrv_ec_p2;

/* P-256 order n and field prime p, little-endian 64-bit limbs (FIPS 186-4, D.1.2.3). */
static const uint64_t QRV_P256_N[4] = {0xF3B9CAC2FC632551ULL, 0xBCE6FAADA7179E84ULL,
                                       0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFF00000000ULL};
static const uint64_t QRV_P256_P[4] = {0xFFFFFFFFFFFFFFFFULL, 0x00000000FFFFFFFFULL,
                                       0x0000000000000000ULL, 0xFFFFFFFF00000001ULL};

static void qrv_u256_load(uint64_t out[4], const unsigned char *be) {
    int i, j;
    for (i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (j = 0; j < 8; j++) v = (v << 8) | be[(3 - i) * 8 + j];
        out[i] = v;
    }
}

static void qrv_u256_store(unsigned char *be, const uint64_t v[4]) {
    int i, j;
    for (i = 0; i < 4; i++)
        for (j = 0; j < 8; j++) be[(3 - i) * 8 + j] = (unsigned char)(v[i] >> (56 - 8 * j));
}

static int qrv_u256_is_zero(const uint64_t a[4]) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

static int qrv_u256_is_one(const uint64_t a[4]) {
    return a[0] == 1 && (a[1] | a[2] | a[3]) == 0;
}

/* -1, 0, 1 as a <, ==, > b */
static int qrv_u256_cmp(const uint64_t a[4], const uint64_t b[4]) {
    int i;
    for (i = 3; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
}

/* a -= b, returns the borrow */
static uint64_t qrv_u256_sub(uint64_t a[4], const uint64_t b[4]) {
    uint64_t borrow = 0;
    int i;
    for (i = 0; i < 4; i++) {
        uint64_t x = a[i], y = b[i];
        uint64_t d = x - y - borrow;
        borrow = (x < y) || (x == y && borrow) ? 1 : 0;
        a[i] = d;
    }
    return borrow;
}

/* a += b, returns the carry */
static uint64_t qrv_u256_add(uint64_t a[4], const uint64_t b[4]) {
    uint64_t carry = 0;
    int i;
    for (i = 0; i < 4; i++) {
        uint64_t s = a[i] + b[i];
        uint64_t c1 = s < a[i];
        uint64_t t = s + carry;
        uint64_t c2 = t < s;
        a[i] = t;
        carry = c1 | c2;
    }
    return carry;
}

/* x = x - y mod m (x, y < m) */
static void qrv_u256_sub_mod(uint64_t x[4], const uint64_t y[4], const uint64_t m[4]) {
    if (qrv_u256_sub(x, y)) qrv_u256_add(x, m);
}

/* -m^-1 mod 2^64 for odd m (Newton's iteration doubles the correct bits each step). */
static uint64_t qrv_neg_inv64(uint64_t m0) {
    uint64_t y = m0; /* correct to 3 bits for odd m0 */
    int i;
    for (i = 0; i < 5; i++) y *= 2 - m0 * y;
    return (uint64_t)0 - y;
}

/* x = x / 2^k mod m for 1 <= k <= 63, m odd, x < m; minv = -m^-1 mod 2^64. Adds the
 * multiple t*m (t < 2^k) that clears x's low k bits, then shifts. */
static void qrv_u256_div2k_mod(uint64_t x[4], int k, const uint64_t m[4], uint64_t minv) {
    typedef unsigned __int128 u128;
    uint64_t t = (x[0] * minv) & ((((uint64_t)1) << k) - 1);
    uint64_t w[5];
    u128 acc = 0;
    int i;
    for (i = 0; i < 4; i++) {
        acc += (u128)t * m[i] + x[i];
        w[i] = (uint64_t)acc;
        acc >>= 64;
    }
    w[4] = (uint64_t)acc;
    for (i = 0; i < 4; i++) x[i] = (w[i] >> k) | (w[i + 1] << (64 - k));
    /* w / 2^k < (m + m*2^k) / 2^k < 2m: 257 bits at most (bit 256 is w[4] >> k), so one
     * subtraction of m reduces it (mod 2^256, since the result is below m) */
    if ((w[4] >> k) != 0 || qrv_u256_cmp(x, m) >= 0) qrv_u256_sub(x, m);
}

/* Shift u right past its trailing zero bits and divide x by the same power of 2 mod m. */
static void qrv_u256_strip(uint64_t u[4], uint64_t x[4], const uint64_t m[4], uint64_t minv) {
    while ((u[0] & 1) == 0) {
        int k = u[0] == 0 ? 63 : __builtin_ctzll(u[0]);
        if (k > 63) k = 63;
        u[0] = (u[0] >> k) | (u[1] << (64 - k));
        u[1] = (u[1] >> k) | (u[2] << (64 - k));
        u[2] = (u[2] >> k) | (u[3] << (64 - k));
        u[3] >>= k;
        qrv_u256_div2k_mod(x, k, m, minv);
    }
}

/* out = a^-1 mod m for an odd m and 0 < a < m with gcd(a, m) = 1 (binary extended Euclid
 * with multi-bit shifts; variable time, public inputs only). 1 ok, 0 no inverse. */
static int qrv_u256_inv_mod(uint64_t out[4], const uint64_t a[4], const uint64_t m[4]) {
    uint64_t u[4], v[4], x1[4] = {1, 0, 0, 0}, x2[4] = {0, 0, 0, 0};
    uint64_t minv = qrv_neg_inv64(m[0]);
    int steps = 0, c;
    if ((m[0] & 1) == 0 || qrv_u256_is_zero(a) || qrv_u256_cmp(a, m) >= 0) return 0;
    memcpy(u, a, sizeof(u));
    memcpy(v, m, sizeof(v));
    /* invariants: x1*a == u, x2*a == v (mod m); u, v odd after stripping */
    qrv_u256_strip(u, x1, m, minv);
    for (;;) {
        if (++steps > 1024) return 0;
        c = qrv_u256_cmp(u, v);
        if (c == 0) break;
        if (c > 0) {
            qrv_u256_sub(u, v);
            qrv_u256_sub_mod(x1, x2, m);
            qrv_u256_strip(u, x1, m, minv);
        } else {
            qrv_u256_sub(v, u);
            qrv_u256_sub_mod(x2, x1, m);
            qrv_u256_strip(v, x2, m, minv);
        }
    }
    if (!qrv_u256_is_one(u)) return 0; /* u == v == gcd(a, m) */
    memcpy(out, x1, sizeof(x1));
    return 1;
}

#define QRV_EC_SYM(name)                                                    \
    do {                                                                    \
        *(void **)(&qrv_ec.name) = dlsym(h, #name);                         \
        if (qrv_ec.name == NULL) goto fail;                                 \
    } while (0)

/* Look the entry points up and make the shared state; 1 when the fast path is usable. */
static int qrv_ec_load(void *h) {
    unsigned char be[32];
    uint64_t limbs[4];
    int i;
    qrv_ec_state = -1;
    QRV_EC_SYM(EC_GROUP_new_by_curve_name);
    QRV_EC_SYM(EC_GROUP_dup);
    QRV_EC_SYM(EC_GROUP_free);
    QRV_EC_SYM(EC_GROUP_set_generator);
    QRV_EC_SYM(EC_GROUP_precompute_mult);
    QRV_EC_SYM(EC_GROUP_have_precompute_mult);
    QRV_EC_SYM(EC_GROUP_get0_order);
    QRV_EC_SYM(EC_GROUP_get_curve);
    QRV_EC_SYM(EC_POINT_new);
    QRV_EC_SYM(EC_POINT_free);
    QRV_EC_SYM(EC_POINT_oct2point);
    QRV_EC_SYM(EC_POINT_mul);
    QRV_EC_SYM(EC_POINT_add);
    QRV_EC_SYM(EC_POINT_is_at_infinity);
    QRV_EC_SYM(EC_POINT_get_Jprojective_coordinates_GFp);
    QRV_EC_SYM(BN_CTX_new);
    QRV_EC_SYM(BN_new);
    QRV_EC_SYM(BN_bin2bn);
    QRV_EC_SYM(BN_bn2binpad);
    QRV_EC_SYM(BN_mod_mul);
    QRV_EC_SYM(BN_mod_sqr);
    QRV_EC_SYM(BN_mod_sub);
    QRV_EC_SYM(BN_add);
    QRV_EC_SYM(BN_is_zero);
    QRV_EC_SYM(BN_cmp);
    QRV_EC_SYM(BN_value_one);
    QRV_EC_SYM(EVP_PKEY_get_octet_string_param);
    /* Shared state lives for the process (never freed, like the library handle). */
    qrv_ec_g = qrv_ec.EC_GROUP_new_by_curve_name(QRV_NID_P256);
    qrv_ec_ctx = qrv_ec.BN_CTX_new();
    if (qrv_ec_g == NULL || qrv_ec_ctx == NULL) goto fail;
    for (i = 0; i < QB_COUNT; i++) {
        qrv_ec_bn[i] = qrv_ec.BN_new();
        if (qrv_ec_bn[i] == NULL) goto fail;
    }
    qrv_ec_p1 = qrv_ec.EC_POINT_new(qrv_ec_g);
    qrv_ec_p2 = qrv_ec.EC_POINT_new(qrv_ec_g);
    if (qrv_ec_p1 == NULL || qrv_ec_p2 == NULL) goto fail;
    /* The group must be the P-256 these constants describe. */
    qrv_u256_store(be, QRV_P256_N);
    if (qrv_ec.BN_bin2bn(be, 32, qrv_ec_bn[QB_N]) == NULL) goto fail;
    if (qrv_ec.BN_cmp(qrv_ec.EC_GROUP_get0_order(qrv_ec_g), qrv_ec_bn[QB_N]) != 0) goto fail;
    if (qrv_ec.EC_GROUP_get_curve(qrv_ec_g, qrv_ec_bn[QB_P], NULL, NULL, qrv_ec_ctx) != 1 ||
        qrv_ec.BN_bn2binpad(qrv_ec_bn[QB_P], be, 32) != 32)
        goto fail;
    qrv_u256_load(limbs, be);
    if (qrv_u256_cmp(limbs, QRV_P256_P) != 0) goto fail;
    qrv_ec_state = 1;
    return 1;
fail:
    /* Partly made state stays allocated (a few hundred bytes, once per process). */
    qrv_ossl.ERR_clear_error();
    return 0;
}

typedef struct qrv_ec_key {
    void *gq;            /* P-256 with generator Q and its table; NULL until built */
    int state;           /* 0 not built yet, 1 table ready, -1 this key uses EVP */
    size_t publen;
    unsigned char pub[65]; /* Q, X9.62 encoded, from the parsed key */
} qrv_ec_key;

/* Remember Q's encoding (no table yet). */
static void qrv_ec_key_init(qrv_ec_key *e, void *pkey) {
    memset(e, 0, sizeof(*e));
    e->state = -1;
    if (qrv_ec_state <= 0) return;
    if (qrv_ec.EVP_PKEY_get_octet_string_param(pkey, "pub", e->pub, sizeof(e->pub),
                                               &e->publen) != 1 ||
        e->publen == 0) {
        qrv_ossl.ERR_clear_error();
        return;
    }
    e->state = 0;
}

static void qrv_ec_key_free(qrv_ec_key *e) {
    if (e->gq != NULL) {
        qrv_ec.EC_GROUP_free(e->gq);
        e->gq = NULL;
        qrv_ec_tables--;
    }
    e->state = -1;
}

/* Build Q's table. 1 ready; 0 use EVP (cap reached: try again later; failure: never). */
static int qrv_ec_key_build(qrv_ec_key *e) {
    void *q = NULL, *gq = NULL;
    if (e->state != 0) return e->state > 0;
    if (qrv_ec_tables >= qrv_ec_max_tables) return 0;
    e->state = -1;
    q = qrv_ec.EC_POINT_new(qrv_ec_g);
    gq = qrv_ec.EC_GROUP_dup(qrv_ec_g);
    if (q == NULL || gq == NULL) goto fail;
    if (qrv_ec.EC_POINT_oct2point(qrv_ec_g, q, e->pub, e->publen, qrv_ec_ctx) != 1) goto fail;
    if (qrv_ec.EC_POINT_is_at_infinity(qrv_ec_g, q)) goto fail;
    if (qrv_ec.EC_GROUP_set_generator(gq, q, qrv_ec_bn[QB_N], qrv_ec.BN_value_one()) != 1)
        goto fail;
    if (qrv_ec.EC_GROUP_precompute_mult(gq, qrv_ec_ctx) != 1) goto fail;
    if (qrv_ec.EC_GROUP_have_precompute_mult(gq) != 1) goto fail;
    qrv_ec.EC_POINT_free(q);
    e->gq = gq;
    e->state = 1;
    qrv_ec_tables++;
    return 1;
fail:
    qrv_ossl.ERR_clear_error();
    if (q != NULL) qrv_ec.EC_POINT_free(q);
    if (gq != NULL) qrv_ec.EC_GROUP_free(gq);
    return 0;
}

/* 1 valid, 0 not valid. `digest` is SHA-256 of the message, `sig` is r || s (64 bytes).
 * The key's table must be ready (qrv_ec_key_build returned 1). */
static int qrv_ec_verify_digest(const qrv_ec_key *e, const unsigned char *digest,
                                const unsigned char *sig) {
    uint64_t r[4], s[4], w[4], rn[4];
    unsigned char wb[32], rnb[32];
    void **bn = qrv_ec_bn, *ctx = qrv_ec_ctx, *g = qrv_ec_g, *x;
    int u1_zero, r_plus_n;
    if (e->state != 1 || e->gq == NULL) return 0;
    qrv_u256_load(r, sig);
    qrv_u256_load(s, sig + 32);
    if (qrv_u256_is_zero(r) || qrv_u256_cmp(r, QRV_P256_N) >= 0) return 0;
    if (qrv_u256_is_zero(s) || qrv_u256_cmp(s, QRV_P256_N) >= 0) return 0;
    if (!qrv_u256_inv_mod(w, s, QRV_P256_N)) return 0;
    qrv_u256_store(wb, w);
    /* r + n < p only for tiny r; then affine x may be r + n as well */
    memcpy(rn, r, sizeof(rn));
    r_plus_n = qrv_u256_add(rn, QRV_P256_N) == 0 && qrv_u256_cmp(rn, QRV_P256_P) < 0;
    qrv_u256_store(rnb, rn);
    if (qrv_ec.BN_bin2bn(sig, 32, bn[QB_R]) == NULL ||
        qrv_ec.BN_bin2bn(digest, 32, bn[QB_E]) == NULL ||
        qrv_ec.BN_bin2bn(wb, 32, bn[QB_W]) == NULL ||
        qrv_ec.BN_bin2bn(sig + 32, 32, bn[QB_T]) == NULL)
        goto fail;
    /* w really is s^-1: s * w == 1 (mod n) */
    if (qrv_ec.BN_mod_mul(bn[QB_U1], bn[QB_T], bn[QB_W], bn[QB_N], ctx) != 1 ||
        qrv_ec.BN_cmp(bn[QB_U1], qrv_ec.BN_value_one()) != 0)
        goto fail;
    if (qrv_ec.BN_mod_mul(bn[QB_U1], bn[QB_E], bn[QB_W], bn[QB_N], ctx) != 1 ||
        qrv_ec.BN_mod_mul(bn[QB_U2], bn[QB_R], bn[QB_W], bn[QB_N], ctx) != 1)
        goto fail;
    if (qrv_ec.BN_is_zero(bn[QB_U2])) goto fail; /* impossible for 0 < r, w < n */
    u1_zero = qrv_ec.BN_is_zero(bn[QB_U1]);
    if (qrv_ec.EC_POINT_mul(e->gq, qrv_ec_p2, bn[QB_U2], NULL, NULL, ctx) != 1) goto fail;
    x = qrv_ec_p2;
    if (!u1_zero) {
        if (qrv_ec.EC_POINT_mul(g, qrv_ec_p1, bn[QB_U1], NULL, NULL, ctx) != 1 ||
            qrv_ec.EC_POINT_add(g, qrv_ec_p1, qrv_ec_p1, qrv_ec_p2, ctx) != 1)
            goto fail;
        x = qrv_ec_p1;
    }
    if (qrv_ec.EC_POINT_is_at_infinity(g, x)) return 0;
    /* affine x = X / Z^2: compare X with r * Z^2 (and (r + n) * Z^2) mod p */
    if (qrv_ec.EC_POINT_get_Jprojective_coordinates_GFp(g, x, bn[QB_X], NULL, bn[QB_Z], ctx) !=
            1 ||
        qrv_ec.BN_mod_sqr(bn[QB_Z], bn[QB_Z], bn[QB_P], ctx) != 1 ||
        qrv_ec.BN_is_zero(bn[QB_Z]))
        goto fail;
    if (qrv_ec.BN_mod_mul(bn[QB_T], bn[QB_R], bn[QB_Z], bn[QB_P], ctx) != 1 ||
        qrv_ec.BN_mod_sub(bn[QB_T], bn[QB_T], bn[QB_X], bn[QB_P], ctx) != 1)
        goto fail;
    if (qrv_ec.BN_is_zero(bn[QB_T])) return 1;
    if (r_plus_n) {
        if (qrv_ec.BN_bin2bn(rnb, 32, bn[QB_RN]) == NULL ||
            qrv_ec.BN_mod_mul(bn[QB_T], bn[QB_RN], bn[QB_Z], bn[QB_P], ctx) != 1 ||
            qrv_ec.BN_mod_sub(bn[QB_T], bn[QB_T], bn[QB_X], bn[QB_P], ctx) != 1)
            goto fail;
        if (qrv_ec.BN_is_zero(bn[QB_T])) return 1;
    }
    return 0;
fail:
    qrv_ossl.ERR_clear_error();
    return 0;
}

#endif
