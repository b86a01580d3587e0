/* tools/train_log.h — what a training run shows and leaves behind: a progress bar, a CSV log
 * of the losses and an SVG plot of the loss curve.
 *
 *   progress  "step 120/2000 [###.......]  loss 0.0841  lr 6.0e-05  212.3 samples/s  ETA 1m03s"
 *             one line rewritten in place with \r when the stream is a terminal (at most
 *             ~10 updates a second), plain lines every `every` steps otherwise (logs, pipes).
 *   CSV       header "step,loss,lr,grad_norm,seconds", one row per optimiser step, appended
 *             with one write(2) per row (O_APPEND), so a crash leaves whole rows only. On
 *             --resume from step s the file is first rewritten (atomically) with the rows of
 *             steps < s only, so it matches the resumed run exactly.
 *   SVG       the loss per step (faint) and its running mean (bold), axes with ticks; log-y
 *             optional. Written atomically. No dependency: a small writer of our own.
 *
 * dv_write_file_atomic: write path.tmp.<pid>, fsync, rename over path, fsync the directory —
 * readers see the old file or the new one, never half of one.
 *
 * Not here: TensorBoard / wandb formats, plotting several runs together.
 */
#ifndef DV_TOOLS_TRAIN_LOG_H
#define DV_TOOLS_TRAIN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int dv_write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

/* ---- progress ---------------------------------------------------------------------------- */
typedef struct {
    FILE *f;
    bool tty;
    int64_t start_step, total_steps, batch;
    int every;               /* plain-line interval when not a terminal */
    double t0, last_draw;    /* seconds (monotonic) */
    bool drawn;              /* a \r line is on screen */
} dv_progress;

/* f: where to draw (stderr or stdout); tty detected with isatty unless force_plain */
void dv_progress_init(dv_progress *p, FILE *f, int64_t start_step, int64_t total_steps,
                      int64_t batch, int every, bool force_plain);
/* after step `step` (0-based) finished: steps done = step + 1 */
void dv_progress_update(dv_progress *p, int64_t step, double loss, double lr);
/* finish the \r line (newline) */
void dv_progress_end(dv_progress *p);
/* the line itself (no \r, no newline); eta_s < 0 prints "?" */
int dv_progress_format(char *buf, size_t n, int64_t done, int64_t total, double loss, double lr,
                       double samples_per_s, double eta_s, int bar_width);
/* "1h02m", "3m05s", "42s" */
void dv_format_duration(char *buf, size_t n, double seconds);
double dv_now_seconds(void);

/* ---- CSV of losses ----------------------------------------------------------------------- */
typedef struct {
    char path[1024];
    int fd;
} dv_loss_csv;

/* Fresh run (resume_step < 0): the file is (re)written with the header only. Resume at step
 * s: the rows with step < s are kept (a missing or unreadable file starts from the header),
 * rewritten atomically. Then opened for appending. */
int dv_loss_csv_open(dv_loss_csv *c, const char *path, int64_t resume_step, char *err, size_t errlen);
int dv_loss_csv_append(dv_loss_csv *c, int64_t step, double loss, double lr, double grad_norm,
                       double seconds, char *err, size_t errlen);
void dv_loss_csv_close(dv_loss_csv *c);

/* the rows of a loss CSV (malloc'd arrays, *n rows; free both). Rows that do not parse are
 * an error naming the line. */
int dv_loss_csv_read(const char *path, int64_t **steps, double **loss, int64_t *n, char *err,
                     size_t errlen);

/* ---- SVG plot ---------------------------------------------------------------------------- */
/* the SVG text of a loss curve (malloc'd, NUL-terminated); n may be 0 (empty axes) */
char *dv_loss_svg(const int64_t *steps, const double *loss, int64_t n, bool log_y, const char *title);
int dv_loss_svg_write(const char *path, const int64_t *steps, const double *loss, int64_t n,
                      bool log_y, const char *title, char *err, size_t errlen);

#endif
