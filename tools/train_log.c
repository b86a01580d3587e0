/* tools/train_log.c — progress bar, CSV loss log and SVG loss plot (see train_log.h). */
#define _GNU_SOURCE
#include "tools/train_log.h"
#include "tensor/tensor.h" /* dv_errf */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


double dv_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int dv_write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return dv_errf(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd), unlink(tmp);
            return dv_errf(err, errlen, "%s: write failed: %s", path, strerror(e));
        }
        p += w, left -= (size_t)w;
    }
    if (fsync(fd) || close(fd)) {
        int e = errno;
        unlink(tmp);
        return dv_errf(err, errlen, "%s: fsync/close failed: %s", path, strerror(e));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return dv_errf(err, errlen, "%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
    return 0;
}

/* ---- progress ---------------------------------------------------------------------------- */
void dv_format_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) { snprintf(buf, n, "?"); return; }
    long t = lround(s);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

int dv_progress_format(char *buf, size_t n, int64_t done, int64_t total, double loss, double lr,
                       double samples_per_s, double eta_s, int bar_width) {
    char bar[128], eta[32];
    int w = bar_width < 0 ? 0 : bar_width > 100 ? 100 : bar_width;
    int filled = total > 0 ? (int)((double)done / total * w) : 0;
    if (filled > w) filled = w;
    bar[0] = 0;
    if (w) {
        bar[0] = '[';
        for (int i = 0; i < w; i++) bar[1 + i] = i < filled ? '#' : '.';
        bar[1 + w] = ']', bar[2 + w] = ' ', bar[3 + w] = 0;
    }
    dv_format_duration(eta, sizeof eta, eta_s);
    return snprintf(buf, n, "step %lld/%lld %sloss %.5f  lr %.2e  %.1f samples/s  ETA %s",
                    (long long)done, (long long)total, bar, loss, lr, samples_per_s, eta);
}

void dv_progress_init(dv_progress *p, FILE *f, int64_t start_step, int64_t total_steps,
                      int64_t batch, int every, bool force_plain) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = !force_plain && isatty(fileno(f));
    p->start_step = start_step, p->total_steps = total_steps, p->batch = batch;
    p->every = every > 0 ? every : 1;
    p->t0 = dv_now_seconds();
    p->last_draw = -1e9;
}

void dv_progress_update(dv_progress *p, int64_t step, double loss, double lr) {
    int64_t done = step + 1, since = done - p->start_step;
    double now = dv_now_seconds(), dt = now - p->t0;
    bool last = done >= p->total_steps;
    if (p->tty) {
        if (!last && now - p->last_draw < 0.1) return;
    } else if (!last && done % p->every && since != 1) {
        return;
    }
    double sps = dt > 0 ? since * p->batch / dt : 0.0;
    double eta = since > 0 && dt > 0 ? (p->total_steps - done) * dt / since : -1.0;
    char line[512];
    dv_progress_format(line, sizeof line, done, p->total_steps, loss, lr, sps, eta, p->tty ? 24 : 0);
    if (p->tty) { fprintf(p->f, "\r%s\033[K", line); p->drawn = true; }
    else fprintf(p->f, "%s\n", line);
    fflush(p->f);
    p->last_draw = now;
}

void dv_progress_end(dv_progress *p) {
    if (p->tty && p->drawn) { fputc('\n', p->f); fflush(p->f); }
    p->drawn = false;
}

/* ---- CSV --------------------------------------------------------------------------------- */
static const char CSV_HEADER[] = "step,loss,lr,grad_norm,seconds\n";

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = 0;
    *n = len;
    return buf;
}

int dv_loss_csv_open(dv_loss_csv *c, const char *path, int64_t resume_step, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    snprintf(c->path, sizeof c->path, "%s", path);
    /* the rows to keep */
    size_t cap = 4096, len = 0;
    char *keep = malloc(cap);
    memcpy(keep, CSV_HEADER, sizeof CSV_HEADER - 1);
    len = sizeof CSV_HEADER - 1;
    if (resume_step >= 0) {
        size_t n = 0;
        char *old = read_all(path, &n);
        if (old) {
            char *line = old, *next;
            bool header = true;
            for (; *line; line = next) {
                next = strchr(line, '\n');
                if (!next) break;          /* a row without its newline: cut by a crash */
                *next++ = 0;
                if (header) { header = false; continue; }
                char *end;
                long long step = strtoll(line, &end, 10);
                if (end == line || *end != ',') continue;
                if (step >= resume_step) continue;
                size_t l = strlen(line);
                while (len + l + 2 > cap) keep = realloc(keep, cap *= 2);
                memcpy(keep + len, line, l);
                len += l;
                keep[len++] = '\n';
            }
            free(old);
        }
    }
    int rc = dv_write_file_atomic(path, keep, len, err, errlen);
    free(keep);
    if (rc) return -1;
    c->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (c->fd < 0) return dv_errf(err, errlen, "%s: cannot open for appending: %s", path, strerror(errno));
    return 0;
}

int dv_loss_csv_append(dv_loss_csv *c, int64_t step, double loss, double lr, double grad_norm,
                       double seconds, char *err, size_t errlen) {
    char row[256];
    int n = snprintf(row, sizeof row, "%lld,%.9g,%.9g,%.9g,%.3f\n", (long long)step, loss, lr,
                     grad_norm, seconds);
    ssize_t w;
    do w = write(c->fd, row, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n) return dv_errf(err, errlen, "%s: append failed: %s", c->path, w < 0 ? strerror(errno) : "short write");
    return 0;
}

void dv_loss_csv_close(dv_loss_csv *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

int dv_loss_csv_read(const char *path, int64_t **steps, double **loss, int64_t *n, char *err,
                     size_t errlen) {
    *steps = NULL, *loss = NULL, *n = 0;
    size_t len = 0;
    char *buf = read_all(path, &len);
    if (!buf) return dv_errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    int64_t cap = 1024, cnt = 0;
    int64_t *s = malloc(sizeof(int64_t) * cap);
    double *l = malloc(sizeof(double) * cap);
    int lineno = 0;
    char *line = buf, *next;
    for (; *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        else next = line + strlen(line);
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, "step,loss", 9)) {
                dv_errf(err, errlen, "%s:1: expected the header 'step,loss,...', got '%.40s'", path, line);
                free(buf), free(s), free(l);
                return -1;
            }
            continue;
        }
        if (!*line) continue;
        char *end, *end2 = NULL;
        long long st = strtoll(line, &end, 10);
        double v = end != line && *end == ',' ? strtod(end + 1, &end2) : 0;
        if (end == line || *end != ',' || end2 == end + 1) {
            dv_errf(err, errlen, "%s:%d: expected 'step,loss,...', got '%.40s'", path, lineno, line);
            free(buf), free(s), free(l);
            return -1;
        }
        if (cnt == cap) {
            cap *= 2;
            s = realloc(s, sizeof(int64_t) * cap);
            l = realloc(l, sizeof(double) * cap);
        }
        s[cnt] = st, l[cnt] = v, cnt++;
    }
    free(buf);
    *steps = s, *loss = l, *n = cnt;
    return 0;
}

/* ---- SVG --------------------------------------------------------------------------------- */
typedef struct { char *p; size_t len, cap; } sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) { b->len += n; return; }
        b->cap = b->cap * 2 + n + 1;
        b->p = realloc(b->p, b->cap);
    }
}

/* a "nice" tick step (1, 2, 5 x 10^k) giving about `want` ticks over span */
static double nice_step(double span, int want) {
    if (!(span > 0)) return 1.0;
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void xml_escape(sbuf *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') sb_printf(b, "&lt;");
        else if (*s == '>') sb_printf(b, "&gt;");
        else if (*s == '&') sb_printf(b, "&amp;");
        else sb_printf(b, "%c", *s);
    }
}

char *dv_loss_svg(const int64_t *steps, const double *loss, int64_t n, bool log_y, const char *title) {
    const double W = 720, H = 420, L = 70, R = 20, T = 40, Bm = 50;   /* size and margins */
    const double pw = W - L - R, ph = H - T - Bm;
    sbuf b = {malloc(4096), 0, 4096};
    /* ranges over the finite (and, for log-y, positive) points */
    double xmin = 0, xmax = 1, ymin = INFINITY, ymax = -INFINITY;
    int64_t good = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = loss[i];
        if (!isfinite(v) || (log_y && v <= 0)) continue;
        double y = log_y ? log10(v) : v;
        if (!good) xmin = xmax = (double)steps[i];
        xmin = fmin(xmin, (double)steps[i]), xmax = fmax(xmax, (double)steps[i]);
        ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        good++;
    }
    if (!good) ymin = 0, ymax = 1;
    if (xmax <= xmin) xmax = xmin + 1;
    if (ymax <= ymin) { ymax += 0.5; ymin -= 0.5; }
    if (!log_y && ymin > 0 && ymin < 0.5 * ymax) ymin = 0;   /* losses: start the axis at 0 */
    double pad = 0.04 * (ymax - ymin);
    ymax += pad;
    if (log_y || ymin != 0) ymin -= pad;
#define PX(x) (L + ((x) - xmin) / (xmax - xmin) * pw)
#define PY(y) (T + ph - ((y) - ymin) / (ymax - ymin) * ph)
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
              W, H, W, H);
    sb_printf(&b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    sb_printf(&b, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    xml_escape(&b, title ? title : "training loss");
    sb_printf(&b, "</text>\n");
    /* grid and ticks */
    double xs = nice_step(xmax - xmin, 8);
    for (double x = ceil(xmin / xs) * xs; x <= xmax + 1e-9 * xs; x += xs) {
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                  PX(x), T, PX(x), T + ph);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(x), T + ph + 16, x);
    }
    if (log_y) {
        for (double e = floor(ymin); e <= ceil(ymax); e += 1) {
            for (int m = 1; m <= 9; m++) {
                double y = e + log10((double)m);
                if (y < ymin || y > ymax) continue;
                sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                          L, PY(y), L + pw, PY(y), m == 1 ? "#ccc" : "#f0f0f0");
                if (m == 1 || (ceil(ymax) - floor(ymin) <= 2 && (m == 2 || m == 5)))
                    sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                              L - 6, PY(y) + 4, pow(10.0, y));
            }
        }
    } else {
        double ys = nice_step(ymax - ymin, 6);
        for (double y = ceil(ymin / ys) * ys; y <= ymax + 1e-9 * ys; y += ys) {
            sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                      L, PY(y), L + pw, PY(y));
            sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6,
                      PY(y) + 4, fabs(y) < 1e-12 * ys ? 0.0 : y);
        }
    }
    sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
              L, T, pw, ph);
    sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n", L + pw / 2, H - 12);
    sb_printf(&b, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">"
                  "loss%s</text>\n", T + ph / 2, T + ph / 2, log_y ? " (log scale)" : "");
    /* the raw curve and its running mean (EMA 0.9 over the plotted points, bias-corrected) */
    for (int pass = 0; pass < 2; pass++) {
        sb_printf(&b, pass == 0 ? "<polyline fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\""
                                : "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" points=\"");
        double ema = 0, wsum = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = loss[i];
            if (!isfinite(v) || (log_y && v <= 0)) continue;
            double y = v;
            if (pass == 1) {
                ema = 0.9 * ema + 0.1 * v, wsum = 0.9 * wsum + 0.1;
                y = ema / wsum;
            }
            if (log_y) y = log10(y);
            sb_printf(&b, "%.1f,%.1f ", PX((double)steps[i]), PY(y));
        }
        sb_printf(&b, "\"/>\n");
    }
    sb_printf(&b, "</svg>\n");
#undef PX
#undef PY
    return b.p;
}

int dv_loss_svg_write(const char *path, const int64_t *steps, const double *loss, int64_t n,
                      bool log_y, const char *title, char *err, size_t errlen) {
    char *svg = dv_loss_svg(steps, loss, n, log_y, title);
    int rc = dv_write_file_atomic(path, svg, strlen(svg), err, errlen);
    free(svg);
    return rc;
}
