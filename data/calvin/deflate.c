/* data/calvin/deflate.c — raw DEFLATE (RFC 1951) compression for zip members, stb's
 * decoder as the reference for ours (inflate.c), and zip's CRC-32, without zlib.
 *
 * Deflate is stb_image_write's stbi_zlib_compress (a zlib stream: we drop its 2-byte header
 * and 4-byte Adler-32 trailer). dv_inflate_raw_stb is stb_image's zlib decoder
 * (stbi_zlib_decode_noheader_buffer: a raw deflate stream into a fixed buffer); the npz
 * reader uses the faster dv_inflate_raw of inflate.c, and the tests check the two agree. Both implementations are
 * compiled here, static, with every image codec switched off, so no other file can clash
 * with them and no image decoder is linked in. stb counts sizes in int: members of 2 GiB and
 * more are refused here (CALVIN's largest member is 160 KB).
 *
 * stb's decoder reads zeros past the end of a truncated stream instead of failing in every
 * case, so callers must check the length inflated (dv_inflate_raw does) and the CRC-32.
 *
 * CRC-32: carry-less multiplication folding where the CPU has PCLMULQDQ (x86-64, ~10 GB/s),
 * else slice-by-8 tables (8 lookups per 8 bytes, ~0.6-1 GB/s on one core).
 */
#include "data/calvin/npy_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* stb declares prototypes of functions its switches leave out; GCC reports those at the end
 * of the file, so this one stays off for the whole (small) file */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_SUPPORT_ZLIB
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_JPEG
#define STBI_NO_PNG
#define STBI_NO_BMP
#define STBI_NO_PSD
#define STBI_NO_TGA
#define STBI_NO_GIF
#define STBI_NO_PIC
#define STBI_NO_PNM
#define STBI_NO_FAILURE_STRINGS
#include <stb/stb_image.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

int dv_inflate_raw_stb(const uint8_t *src, size_t src_len, size_t slack, uint8_t *dst, size_t dst_len) {
    if (src_len > INT_MAX - 64 || dst_len > INT_MAX) return -1;
    /* stb's decoder (2.27) refuses to decode a Huffman code when fewer than 16 bits are left
     * in its input, although the last codes of a stream can be shorter: zlib streams always
     * have the 4-byte Adler-32 after them, raw deflate does not. So it is given 8 readable
     * bytes past the stream: the caller's slack (in a zip archive, the bytes after a member:
     * at least the 22 of the end record) or a padded copy. A stream that is really truncated
     * still fails: its output is short (checked here) or wrong (the caller's CRC-32). */
    const uint8_t *in = src;
    uint8_t *copy = NULL;
    if (slack < 8) {
        copy = malloc(src_len + 8);
        if (!copy) return -1;
        memcpy(copy, src, src_len);
        memset(copy + src_len, 0, 8);
        in = copy;
    }
    /* a 0-length output gets one byte of room, so that a stream with more output than
     * announced fails on the length check */
    uint8_t one;
    int n = stbi_zlib_decode_noheader_buffer(dst_len ? (char *)dst : (char *)&one, dst_len ? (int)dst_len : 1,
                                            (const char *)in, (int)src_len + 8);
    free(copy);
    return n >= 0 && (size_t)n == dst_len ? 0 : -1;
}

int dv_deflate_raw(const uint8_t *src, size_t src_len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (src_len > INT_MAX / 2) return -1;
    int zlen = 0;
    /* quality = hash chain length: 8 is what stb's PNG writer uses */
    unsigned char *z = stbi_zlib_compress((unsigned char *)src, (int)src_len, &zlen, 8);
    if (!z || zlen < 6) {
        STBIW_FREE(z);
        return -1;
    }
    uint8_t *raw = malloc((size_t)zlen - 6 ? (size_t)zlen - 6 : 1);
    if (!raw) {
        STBIW_FREE(z);
        return -1;
    }
    memcpy(raw, z + 2, (size_t)zlen - 6); /* 2-byte zlib header, 4-byte Adler-32 trailer */
    STBIW_FREE(z);
    *out = raw;
    *out_len = (size_t)zlen - 6;
    return 0;
}

static uint32_t g_crc[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        g_crc[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++) g_crc[t][i] = (g_crc[t - 1][i] >> 8) ^ g_crc[0][g_crc[t - 1][i] & 255];
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = g_crc[7][lo & 255] ^ g_crc[6][(lo >> 8) & 255] ^ g_crc[5][(lo >> 16) & 255] ^ g_crc[4][lo >> 24] ^
            g_crc[3][hi & 255] ^ g_crc[2][(hi >> 8) & 255] ^ g_crc[1][(hi >> 16) & 255] ^ g_crc[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = g_crc[0][(c ^ *p++) & 255] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* CRC-32 by carry-less multiplication (Gopal et al., Intel, "Fast CRC Computation for
 * Generic Polynomials Using PCLMULQDQ Instruction", 2009), in the bit-reflected domain of
 * zip's polynomial. Four 128-bit lanes are folded forward 512 bits per step, then folded
 * into one lane, then reduced 128 -> 64 -> 32 bits (the last step by Barrett reduction).
 * Constants (x^k mod P, reflected, from the paper's appendix for P = 0x104C11DB7):
 *   fold 512: x^(4*128+32), x^(4*128-32); fold 128: x^(128+32), x^(128-32); x^64 mod P;
 *   P' (reflected P) and mu = floor(x^64 / P) (reflected).
 * c: the running register (already inverted); n: a multiple of 16, at least 64. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold(uint32_t c, const uint8_t *p, size_t n) {
    const __m128i fold512 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i fold128 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i x64 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i barrett = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);

    __m128i lane[4];
    for (int i = 0; i < 4; i++) lane[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
    lane[0] = _mm_xor_si128(lane[0], _mm_cvtsi32_si128((int)c));
    p += 64, n -= 64;
    for (; n >= 64; p += 64, n -= 64)
        for (int i = 0; i < 4; i++) {
            __m128i lo = _mm_clmulepi64_si128(lane[i], fold512, 0x00);
            __m128i hi = _mm_clmulepi64_si128(lane[i], fold512, 0x11);
            lane[i] = _mm_xor_si128(_mm_xor_si128(lo, hi), _mm_loadu_si128((const __m128i *)(p + 16 * i)));
        }
    /* fold the lanes, then the remaining 16-byte blocks, into one 128-bit value */
    __m128i x = lane[0];
    for (int i = 1; i < 4; i++)
        x = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, fold128, 0x00), _mm_clmulepi64_si128(x, fold128, 0x11)),
                          lane[i]);
    for (; n >= 16; p += 16, n -= 16)
        x = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, fold128, 0x00), _mm_clmulepi64_si128(x, fold128, 0x11)),
                          _mm_loadu_si128((const __m128i *)p));
    /* 128 -> 64 bits */
    x = _mm_xor_si128(_mm_srli_si128(x, 8), _mm_clmulepi64_si128(x, fold128, 0x10));
    x = _mm_xor_si128(_mm_srli_si128(x, 4), _mm_clmulepi64_si128(_mm_and_si128(x, low32), x64, 0x00));
    /* 64 -> 32 bits: Barrett reduction */
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x, low32), barrett, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), barrett, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x, t), 1);
}

static int g_has_pclmul = -1;
#endif

static void crc_setup(void) {
    crc_init();
#if defined(__x86_64__)
    __builtin_cpu_init();
    g_has_pclmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

uint32_t dv_crc32(uint32_t crc, const void *p_, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_setup);
    const uint8_t *p = p_;
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (n >= 64 && g_has_pclmul) {
        size_t m = n & ~(size_t)15;
        c = crc_fold(c, p, m);
        p += m, n -= m;
    }
#endif
    return ~crc_table(c, p, n);
}

uint32_t dv_crc32_portable(uint32_t crc, const void *p, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_setup);
    return ~crc_table(~crc, p, n);
}
