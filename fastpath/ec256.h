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
 * mod n is a variable-time safegcd, checked by s*w == 1). Any libcrypto failure is "not
 * valid".
 *
 * The deprecated EC_GROUP / EC_POINT / BN entry points are looked up with dlsym on the
 * handle ossl.h opened; if any is missing, qrv_ec_state stays -1 and ES256 keys use the
 * EVP path. Tables are built lazily on a key's first verification, for at most
 * qrv_ec_max_tables keys at once (QRV_EC_MAX_TABLES unless set; later keys use the EVP
 * path until a table is freed). Scratch values are shared: callers hold the GIL (as for
 * the keys' EVP contexts), except around qrv_ec_table_for, which uses only its own
 * BN_CTX and read-only shared values, so a table can be built on another thread without
 * the GIL (_ossl.pyx does: state 2 while it is built, the key verifies through EVP then).
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
    void (*BN_CTX_free)(void *);
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

/* The inverse mod n: Bernstein-Yang "safegcd" divsteps, in batches of 62 on the low bits
 * with the 2x2 transition matrix then applied to the full values (5 limbs of 62 bits,
 * the top one signed), variable time (public inputs only). */
#define QRV_M62 ((uint64_t)0x3FFFFFFFFFFFFFFFULL)
typedef struct { int64_t u, v, q, r; } qrv_trans;

static void qrv_to62(int64_t out[5], const uint64_t a[4]) {
    out[0] = (int64_t)(a[0] & QRV_M62);
    out[1] = (int64_t)(((a[0] >> 62) | (a[1] << 2)) & QRV_M62);
    out[2] = (int64_t)(((a[1] >> 60) | (a[2] << 4)) & QRV_M62);
    out[3] = (int64_t)(((a[2] >> 58) | (a[3] << 6)) & QRV_M62);
    out[4] = (int64_t)(a[3] >> 56);
}

/* a in [0, 2^256) given as 62-bit limbs (limbs 0..3 in [0, 2^62), limb 4 in [0, 2^8)) */
static void qrv_from62(uint64_t out[4], const int64_t a[5]) {
    uint64_t l0 = (uint64_t)a[0], l1 = (uint64_t)a[1], l2 = (uint64_t)a[2], l3 = (uint64_t)a[3],
             l4 = (uint64_t)a[4];
    out[0] = l0 | (l1 << 62);
    out[1] = (l1 >> 2) | (l2 << 60);
    out[2] = (l2 >> 4) | (l3 << 58);
    out[3] = (l3 >> 6) | (l4 << 56);
}

/* 62 divsteps on the low bits of f and g; returns the new delta. On return
 * 2^62 * (f', g') = [[u, v], [q, r]] * (f, g). */
static int64_t qrv_divsteps62(int64_t delta, uint64_t f, uint64_t g, qrv_trans *t) {
    int64_t u = 1, v = 0, q = 0, r = 1, tu, tv;
    int i = 0, z;
    uint64_t tf;
    while (i < 62) {
        if ((g & 1) == 0) {
            /* skip all trailing zeros at once (but not past step 62) */
            z = __builtin_ctzll(g | ((uint64_t)1 << (62 - i)));
            g >>= z;
            u <<= z;
            v <<= z;
            delta += z;
            i += z;
            continue;
        }
        if (delta > 0) {
            delta = 1 - delta;
            tf = f;
            f = g;
            g = (g - tf) >> 1;
            tu = u;
            tv = v;
            u = 2 * q;
            v = 2 * r;
            q = q - tu;
            r = r - tv;
        } else {
            delta = 1 + delta;
            g = (g + f) >> 1;
            q = q + u;
            r = r + v;
            u = 2 * u;
            v = 2 * v;
        }
        i++;
    }
    t->u = u;
    t->v = v;
    t->q = q;
    t->r = r;
    return delta;
}

/* (f, g) = T * (f, g) / 2^62, exactly */
static void qrv_update_fg(int64_t f[5], int64_t g[5], const qrv_trans *t) {
    typedef __int128 i128;
    i128 cf = (i128)t->u * f[0] + (i128)t->v * g[0];
    i128 cg = (i128)t->q * f[0] + (i128)t->r * g[0];
    int i;
    cf >>= 62;
    cg >>= 62;
    for (i = 1; i < 5; i++) {
        cf += (i128)t->u * f[i] + (i128)t->v * g[i];
        cg += (i128)t->q * f[i] + (i128)t->r * g[i];
        f[i - 1] = (int64_t)((uint64_t)cf & QRV_M62);
        g[i - 1] = (int64_t)((uint64_t)cg & QRV_M62);
        cf >>= 62;
        cg >>= 62;
    }
    f[4] = (int64_t)cf;
    g[4] = (int64_t)cg;
}

/* (d, e) = T * (d, e) / 2^62 mod m, keeping d, e in (-2m, m); minv = m^-1 mod 2^62 */
static void qrv_update_de(int64_t d[5], int64_t e[5], const qrv_trans *t, const int64_t m[5],
                          uint64_t minv) {
    typedef __int128 i128;
    int64_t sd = d[4] >> 63, se = e[4] >> 63;
    int64_t md = (t->u & sd) + (t->v & se);
    int64_t me = (t->q & sd) + (t->r & se);
    i128 cd = (i128)t->u * d[0] + (i128)t->v * e[0];
    i128 ce = (i128)t->q * d[0] + (i128)t->r * e[0];
    int i;
    md -= (int64_t)((minv * (uint64_t)cd + (uint64_t)md) & QRV_M62);
    me -= (int64_t)((minv * (uint64_t)ce + (uint64_t)me) & QRV_M62);
    cd += (i128)m[0] * md;
    ce += (i128)m[0] * me;
    cd >>= 62;
    ce >>= 62;
    for (i = 1; i < 5; i++) {
        cd += (i128)t->u * d[i] + (i128)t->v * e[i] + (i128)m[i] * md;
        ce += (i128)t->q * d[i] + (i128)t->r * e[i] + (i128)m[i] * me;
        d[i - 1] = (int64_t)((uint64_t)cd & QRV_M62);
        e[i - 1] = (int64_t)((uint64_t)ce & QRV_M62);
        cd >>= 62;
        ce >>= 62;
    }
    d[4] = (int64_t)cd;
    e[4] = (int64_t)ce;
}

/* x = sa*a + sb*b (sa, sb in {-1, 0, 1}), limbs 0..3 in [0, 2^62), limb 4 signed */
static void qrv_lin62(int64_t x[5], const int64_t a[5], int64_t sa, const int64_t b[5],
                      int64_t sb) {
    typedef __int128 i128;
    i128 c = 0;
    int i;
    for (i = 0; i < 4; i++) {
        c += (i128)sa * a[i] + (i128)sb * b[i];
        x[i] = (int64_t)((uint64_t)c & QRV_M62);
        c >>= 62;
    }
    c += (i128)sa * a[4] + (i128)sb * b[4];
    x[4] = (int64_t)c;
}

static int qrv_is_zero62(const int64_t a[5]) { return (a[0] | a[1] | a[2] | a[3] | a[4]) == 0; }

/* out = a^-1 mod m for an odd m and 0 < a < m (variable time, public inputs only).
 * 1 ok, 0 when a has no inverse. */
static int qrv_u256_inv_mod(uint64_t out[4], const uint64_t a[4], const uint64_t m[4]) {
    int64_t f[5], g[5], d[5] = {0, 0, 0, 0, 0}, e[5] = {1, 0, 0, 0, 0}, m62[5], x[5];
    int64_t delta = 1;
    uint64_t minv, y;
    qrv_trans t;
    int batch, i, neg;
    uint64_t res[4];
    if ((m[0] & 1) == 0 || qrv_u256_is_zero(a) || qrv_u256_cmp(a, m) >= 0) return 0;
    y = m[0];
    for (i = 0; i < 5; i++) y *= 2 - m[0] * y;
    minv = y & QRV_M62;
    qrv_to62(m62, m);
    qrv_to62(f, m);
    qrv_to62(g, a);
    /* invariants: d*a == f, e*a == g (mod m); 741 divsteps suffice for 256 bits */
    for (batch = 0; batch < 12 && !qrv_is_zero62(g); batch++) {
        delta = qrv_divsteps62(delta, (uint64_t)f[0], (uint64_t)g[0], &t);
        qrv_update_de(d, e, &t, m62, minv);
        qrv_update_fg(f, g, &t);
    }
    if (!qrv_is_zero62(g)) return 0;
    /* f = +-gcd(a, m): must be +-1 */
    neg = f[4] < 0;
    if (neg) {
        if (!(f[0] == (int64_t)QRV_M62 && f[1] == (int64_t)QRV_M62 && f[2] == (int64_t)QRV_M62 &&
              f[3] == (int64_t)QRV_M62 && f[4] == -1))
            return 0; /* f != -1 */
    } else if (!(f[0] == 1 && (f[1] | f[2] | f[3] | f[4]) == 0)) {
        return 0;
    }
    /* x = (neg ? -d : d) is in (-2m, 2m): add m while negative, subtract while >= m */
    qrv_lin62(x, d, neg ? -1 : 1, m62, 0);
    for (i = 0; i < 3 && x[4] < 0; i++) qrv_lin62(x, x, 1, m62, 1);
    for (i = 0; i < 3; i++) {
        int64_t y[5];
        qrv_lin62(y, x, 1, m62, -1);
        if (y[4] < 0) break;
        memcpy(x, y, sizeof(y));
    }
    if (x[4] < 0 || x[4] >= 256) return 0;
    qrv_from62(res, x);
    while (qrv_u256_cmp(res, m) >= 0) qrv_u256_sub(res, m);
    memcpy(out, res, sizeof(res));
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
    QRV_EC_SYM(BN_CTX_free);
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
    int state;           /* 0 not built yet, 1 table ready, 2 being built elsewhere (EVP
                            meanwhile), -1 this key uses EVP */
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

/* A P-256 group whose generator is Q (X9.62 `pub`), with its table: NULL on failure.
 * Uses a BN_CTX of its own and only reads shared state (the standard group, n), so it
 * may run without the GIL. */
static void *qrv_ec_table_for(const unsigned char *pub, size_t publen) {
    void *ctx = NULL, *q = NULL, *gq = NULL;
    int ok = 0;
    ctx = qrv_ec.BN_CTX_new();
    q = qrv_ec.EC_POINT_new(qrv_ec_g);
    gq = qrv_ec.EC_GROUP_dup(qrv_ec_g);
    if (ctx == NULL || q == NULL || gq == NULL) goto done;
    if (qrv_ec.EC_POINT_oct2point(qrv_ec_g, q, pub, publen, ctx) != 1) goto done;
    if (qrv_ec.EC_POINT_is_at_infinity(qrv_ec_g, q)) goto done;
    if (qrv_ec.EC_GROUP_set_generator(gq, q, qrv_ec_bn[QB_N], qrv_ec.BN_value_one()) != 1)
        goto done;
    if (qrv_ec.EC_GROUP_precompute_mult(gq, ctx) != 1) goto done;
    ok = qrv_ec.EC_GROUP_have_precompute_mult(gq) == 1;
done:
    qrv_ossl.ERR_clear_error(); /* (the error queue is per thread) */
    if (q != NULL) qrv_ec.EC_POINT_free(q);
    if (ctx != NULL) qrv_ec.BN_CTX_free(ctx);
    if (!ok && gq != NULL) {
        qrv_ec.EC_GROUP_free(gq);
        gq = NULL;
    }
    return gq;
}

/* Give a key the table `gq` from qrv_ec_table_for (GIL held). NULL: the key uses EVP from
 * now on. With the cap reached, the table is dropped and the key tries again later.
 * 1 when the key now has a table. */
static int qrv_ec_key_install(qrv_ec_key *e, void *gq) {
    if (gq == NULL) {
        e->state = -1;
        return 0;
    }
    if (qrv_ec_tables >= qrv_ec_max_tables || e->gq != NULL) {
        qrv_ec.EC_GROUP_free(gq);
        if (e->gq == NULL) e->state = 0;
        return e->gq != NULL;
    }
    e->gq = gq;
    e->state = 1;
    qrv_ec_tables++;
    return 1;
}

/* Build Q's table here and now. 1 ready; 0 use EVP (cap reached, or being built
 * elsewhere: try again later; failure: never). */
static int qrv_ec_key_build(qrv_ec_key *e) {
    if (e->state != 0) return e->state == 1;
    if (qrv_ec_tables >= qrv_ec_max_tables) return 0;
    return qrv_ec_key_install(e, qrv_ec_table_for(e->pub, e->publen));
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
