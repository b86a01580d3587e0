/* data/calvin/deflate.c — raw DEFLATE (RFC 1951) in and out for zip members, and zip's
 * CRC-32, without zlib.
 *
 * Inflate is stb_image's zlib decoder (stbi_zlib_decode_noheader_buffer: a raw deflate
 * stream into a fixed buffer), deflate is stb_image_write's stbi_zlib_compress (a zlib
 * stream: we drop its 2-byte header and 4-byte Adler-32 trailer). Both implementations are
 * compiled here, static, with every image codec switched off, so no other file can clash
 * with them and no image decoder is linked in. stb counts sizes in int: members of 2 GiB and
 * more are refused here (CALVIN's largest member is 160 KB).
 *
 * stb's decoder reads zeros past the end of a truncated stream instead of failing in every
 * case, so callers must check the length inflated (dv_inflate_raw does) and the CRC-32.
 *
 * CRC-32 is slice-by-8 (8 table lookups per 8 bytes, about 1–2 GB/s on one core).
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

int dv_inflate_raw(const uint8_t *src, size_t src_len, size_t slack, uint8_t *dst, size_t dst_len) {
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

uint32_t dv_crc32(uint32_t crc, const void *p_, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    const uint8_t *p = p_;
    uint32_t c = ~crc;
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
    return ~c;
}
