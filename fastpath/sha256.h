/* SHA-256 (FIPS 180-4) for the short inputs of revocation hashes.
 * Constants derived from the primes as the standard defines them; checked against
 * hashlib by the tests. Plain C99, no dependencies. */
#ifndef QRV_SHA256_H
#define QRV_SHA256_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const uint32_t qrv_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
    0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
    0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define QRV_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void qrv_sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = QRV_ROR(w[i - 15], 7) ^ QRV_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = QRV_ROR(w[i - 2], 17) ^ QRV_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (QRV_ROR(e, 6) ^ QRV_ROR(e, 11) ^ QRV_ROR(e, 25)) + ((e & f) ^ (~e & g)) +
             qrv_sha256_k[i] + w[i];
        t2 = (QRV_ROR(a, 2) ^ QRV_ROR(a, 13) ^ QRV_ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* SHA-256 with the x86 SHA extensions (SHA-NI), chosen at run time when the CPU has
 * them. Four rounds per step: sha256rnds2 does two rounds on the ABEF/CDGH halves of the
 * state, sha256msg1/msg2 extend the message schedule. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QRV_NO_SHA_NI)
#include <cpuid.h>
#include <immintrin.h>
#define QRV_HAVE_SHA_NI 1

__attribute__((target("sha,sse4.1,ssse3")))
static void qrv_sha256_block_ni(uint32_t h[8], const uint8_t *p) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);    /* D C B A */
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);    /* H G F E */
    __m128i st0, abef, cdgh, msg, w[4];
    int i;
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                        /* C D A B */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                        /* E F G H */
    st0 = _mm_alignr_epi8(tmp, st1, 8);                        /* A B E F */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                     /* C D G H */
    abef = st0;
    cdgh = st1;
    for (i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
    for (i = 0; i < 16; i++) {
        msg = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)&qrv_sha256_k[4 * i]));
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
        if (i < 12) {
            __m128i t = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
            t = _mm_add_epi32(t, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
            w[i & 3] = _mm_sha256msg2_epu32(t, w[(i + 3) & 3]);
        }
    }
    st0 = _mm_add_epi32(st0, abef);
    st1 = _mm_add_epi32(st1, cdgh);
    tmp = _mm_shuffle_epi32(st0, 0x1B);                        /* F E B A */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                        /* D C H G */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                     /* D C B A */
    st1 = _mm_alignr_epi8(st1, tmp, 8);                        /* H G F E */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static int qrv_cpu_has_sha_ni(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0;     /* SSE4.1, SSSE3 */
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;                                       /* SHA */
}
#else
#define QRV_HAVE_SHA_NI 0
static void qrv_sha256_block_ni(uint32_t h[8], const uint8_t *p) { qrv_sha256_block(h, p); }
static int qrv_cpu_has_sha_ni(void) { return 0; }
#endif

/* 1 when the SHA-NI code is in use; set by qrv_sha256_select(). */
static int qrv_sha256_use_ni = 0;

/* out receives the first `outlen` (<= 32) bytes of SHA-256(a || b). */
static void qrv_sha256_2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                         uint8_t *out, size_t outlen) {
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    uint8_t buf[64];
    size_t fill = 0, i, total = alen + blen;
    uint64_t bits = (uint64_t)total * 8;
    void (*qrv_block)(uint32_t *, const uint8_t *) =
        qrv_sha256_use_ni ? qrv_sha256_block_ni : qrv_sha256_block;
    const uint8_t *src[2] = {a, b};
    size_t len[2] = {alen, blen};
    int part;
    for (part = 0; part < 2; part++) {
        const uint8_t *p = src[part];
        size_t n = len[part];
        while (n > 0) {
            size_t take = 64 - fill < n ? 64 - fill : n;
            memcpy(buf + fill, p, take);
            fill += take; p += take; n -= take;
            if (fill == 64) { qrv_block(h, buf); fill = 0; }
        }
    }
    buf[fill++] = 0x80;
    if (fill > 56) {
        memset(buf + fill, 0, 64 - fill);
        qrv_block(h, buf);
        fill = 0;
    }
    memset(buf + fill, 0, 56 - fill);
    for (i = 0; i < 8; i++) buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    qrv_block(h, buf);
    for (i = 0; i < outlen && i < 32; i++) out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* Use SHA-NI when the CPU has it and it agrees with the portable code on two messages;
 * `allow` = 0 forces the portable code. Returns whether SHA-NI is in use. */
static int qrv_sha256_select(int allow) {
    static const uint8_t msg[80] = "the quick brown fox jumps over the lazy dog, twice over: two blocks";
    uint8_t x[32], y[32];
    qrv_sha256_use_ni = 0;
    if (!allow || !qrv_cpu_has_sha_ni()) return 0;
    qrv_sha256_2(msg, 3, msg + 3, 77, x, 32);
    qrv_sha256_use_ni = 1;
    qrv_sha256_2(msg, 3, msg + 3, 77, y, 32);
    if (memcmp(x, y, 32) != 0) qrv_sha256_use_ni = 0;
    return qrv_sha256_use_ni;
}

#endif
