/* data/calvin/inflate.c — a raw DEFLATE decoder (RFC 1951) for npz members, written for speed
 * on untrusted input: one pass straight into the caller's buffer of the announced size.
 *
 * stb_image's zlib decoder (deflate.c, kept as dv_inflate_raw_stb, the reference the tests
 * compare against) reads its input a byte at a time and decodes at ~40 MB/s; CALVIN frames
 * written by np.savez_compressed are ~330 KB, so it cost ~8 ms a frame. This decoder keeps a
 * 64-bit bit buffer refilled 8 bytes at a time, decodes Huffman codes of up to FAST_BITS
 * bits with one table lookup (longer ones canonically, as in zlib's puff), and copies matches
 * 8 bytes at a time when they do not overlap.
 *
 * Safety: every length, distance, code and table is checked; the output never goes past
 * dst + dst_len and a match never reaches before dst; reading past the input feeds zero
 * bits that are counted, and a stream that used any of them is an error (truncated).
 *
 * Not here: zlib/gzip headers and checksums (zip has its own CRC-32), streaming (the whole
 * member is in memory), preset dictionaries.
 */
#include "data/calvin/npy_internal.h"

#include <pthread.h>
#include <string.h>

#define FAST_BITS 10
#define MAX_BITS 15

typedef struct {
    /* table[bits] = len << 9 | symbol for codes of len <= FAST_BITS (0: longer or invalid) */
    uint16_t fast[1 << FAST_BITS];
    uint16_t count[MAX_BITS + 1]; /* codes of each length */
    uint16_t sorted[320];         /* symbols in canonical order */
    int max_len;
} huff;

typedef struct {
    const uint8_t *in, *end;
    uint64_t bits;
    int nbits;
    size_t overrun; /* zero bytes fed past the end */
} bitin;

static inline void refill(bitin *b) {
    if (b->end - b->in >= 8) {
        uint64_t v;
        memcpy(&v, b->in, 8);
        b->bits |= v << b->nbits;
        b->in += (63 - b->nbits) >> 3;
        b->nbits |= 56;
    } else {
        while (b->nbits <= 56) {
            if (b->in < b->end) b->bits |= (uint64_t)*b->in++ << b->nbits;
            else b->overrun++;
            b->nbits += 8;
        }
    }
}

static inline uint32_t take(bitin *b, int n) { /* n <= 32, after a refill */
    uint32_t v = (uint32_t)(b->bits & ((1ull << n) - 1));
    b->bits >>= n;
    b->nbits -= n;
    return v;
}

static uint32_t reverse(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; i++) r = r << 1 | ((code >> i) & 1);
    return r;
}

/* canonical Huffman code from code lengths; -1 when over-subscribed. An incomplete code is
 * allowed (zlib allows one for a lone distance code): its unused bit patterns are invalid */
static int build(huff *h, const uint8_t *lens, int n) {
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (int i = 0; i < n; i++) h->count[lens[i]]++;
    h->count[0] = 0;
    int left = 1;
    h->max_len = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        left = 2 * left - h->count[len];
        if (left < 0) return -1;
        if (h->count[len]) h->max_len = len;
    }
    uint16_t offs[MAX_BITS + 2]; /* where each length's symbols start in sorted[] */
    uint32_t next[MAX_BITS + 1];  /* the next code of each length (RFC 1951, 3.2.2) */
    uint32_t code = 0;
    offs[1] = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
        next[len] = code;
        code = (code + h->count[len]) << 1;
    }
    for (int s = 0; s < n; s++) {
        int len = lens[s];
        if (!len) continue;
        h->sorted[offs[len]++] = (uint16_t)s;
        uint32_t c = next[len]++;
        if (len <= FAST_BITS) {
            uint32_t r = reverse(c, len);
            for (uint32_t k = r; k < (1u << FAST_BITS); k += 1u << len) h->fast[k] = (uint16_t)(len << 9 | s);
        }
    }
    return 0;
}

/* next symbol, or -1 for a bit pattern that is no code; needs >= 15 bits in the buffer */
static inline int decode(bitin *b, const huff *h) {
    uint16_t e = h->fast[b->bits & ((1u << FAST_BITS) - 1)];
    if (e) {
        int len = e >> 9;
        b->bits >>= len;
        b->nbits -= len;
        return e & 511;
    }
    /* canonical decoding, one bit at a time (codes longer than FAST_BITS, or invalid) */
    int code = 0, first = 0, index = 0;
    uint64_t bits = b->bits;
    for (int len = 1; len <= h->max_len; len++) {
        code |= (int)(bits & 1);
        bits >>= 1;
        int count = h->count[len];
        if (code - count < first) {
            b->bits >>= len;
            b->nbits -= len;
            return h->sorted[index + (code - first)];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                       33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static huff g_fixed_lit, g_fixed_dist;
static void fixed_init(void) {
    uint8_t l[288];
    for (int i = 0; i < 288; i++) l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    build(&g_fixed_lit, l, 288);
    for (int i = 0; i < 30; i++) l[i] = 5;
    build(&g_fixed_dist, l, 30);
}

/* the code length tables of a dynamic block */
static int dynamic_tables(bitin *b, huff *lit, huff *dist) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    refill(b);
    int nlit = (int)take(b, 5) + 257, ndist = (int)take(b, 5) + 1, ncode = (int)take(b, 4) + 4;
    if (nlit > 286 || ndist > 30) return -1;
    uint8_t lens[320] = {0};
    for (int i = 0; i < ncode; i++) {
        refill(b);
        lens[order[i]] = (uint8_t)take(b, 3);
    }
    huff cl;
    if (build(&cl, lens, 19) != 0) return -1;
    memset(lens, 0, sizeof lens);
    for (int i = 0; i < nlit + ndist;) {
        refill(b);
        int sym = decode(b, &cl);
        if (sym < 0) return -1;
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        int rep, val = 0;
        if (sym == 16) {
            if (i == 0) return -1;
            val = lens[i - 1];
            rep = 3 + (int)take(b, 2);
        } else if (sym == 17) rep = 3 + (int)take(b, 3);
        else rep = 11 + (int)take(b, 7);
        if (i + rep > nlit + ndist) return -1;
        while (rep--) lens[i++] = (uint8_t)val;
    }
    if (lens[256] == 0) return -1; /* no end-of-block code */
    if (build(lit, lens, nlit) != 0 || build(dist, lens + nlit, ndist) != 0) return -1;
    return 0;
}

static int codes(bitin *b, const huff *lit, const huff *dist, uint8_t *dst, uint8_t **outp, uint8_t *dend) {
    uint8_t *out = *outp;
    for (;;) {
        if (b->nbits < 48) refill(b);
        int sym = decode(b, lit);
        if (sym < 256) {
            if (sym < 0 || out == dend) return -1;
            *out++ = (uint8_t)sym;
            continue;
        }
        if (sym == 256) break;
        sym -= 257;
        if (sym >= 29) return -1;
        size_t len = len_base[sym] + take(b, len_extra[sym]);
        int ds = decode(b, dist);
        if (ds < 0 || ds >= 30) return -1;
        if (b->nbits < 13) refill(b);
        size_t d = dist_base[ds] + take(b, dist_extra[ds]);
        if (d > (size_t)(out - dst) || len > (size_t)(dend - out)) return -1;
        const uint8_t *from = out - d;
        if (d >= 8 && (size_t)(dend - out) >= len + 8) {
            /* whole 8-byte chunks: source and destination never overlap inside one */
            for (size_t k = 0; k < len; k += 8) {
                uint64_t v;
                memcpy(&v, from + k, 8);
                memcpy(out + k, &v, 8);
            }
            out += len;
        } else if (d == 1) {
            memset(out, *from, len);
            out += len;
        } else {
            while (len--) *out++ = *from++;
        }
    }
    *outp = out;
    return 0;
}

int dv_inflate_raw(const uint8_t *src, size_t src_len, size_t slack, uint8_t *dst, size_t dst_len) {
    (void)slack;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fixed_init);
    bitin b = {.in = src, .end = src + src_len};
    uint8_t *out = dst, *dend = dst + dst_len;
    huff *lit = NULL, *dist = NULL;
    huff dyn[2];
    int final;
    do {
        refill(&b);
        final = (int)take(&b, 1);
        int type = (int)take(&b, 2);
        if (type == 0) {
            /* stored: back to a byte boundary, then LEN, NLEN and the bytes */
            take(&b, b.nbits & 7);
            size_t pos = (size_t)(b.in - src) + b.overrun - (size_t)(b.nbits / 8);
            if (pos + 4 > src_len) return -1;
            size_t len = src[pos] | (size_t)src[pos + 1] << 8, nlen = src[pos + 2] | (size_t)src[pos + 3] << 8;
            if (len != (~nlen & 0xffff) || len > src_len - pos - 4 || len > (size_t)(dend - out)) return -1;
            memcpy(out, src + pos + 4, len);
            out += len;
            b = (bitin){.in = src + pos + 4 + len, .end = src + src_len};
            continue;
        }
        if (type == 1) lit = &g_fixed_lit, dist = &g_fixed_dist;
        else if (type == 2) {
            if (dynamic_tables(&b, &dyn[0], &dyn[1]) != 0) return -1;
            lit = &dyn[0], dist = &dyn[1];
        } else return -1;
        if (codes(&b, lit, dist, dst, &out, dend) != 0) return -1;
    } while (!final);
    /* every bit used must have come from the input */
    uint64_t consumed = ((uint64_t)(b.in - src) + b.overrun) * 8 - (uint64_t)b.nbits;
    if (consumed > (uint64_t)src_len * 8) return -1;
    return out == dend ? 0 : -1;
}
