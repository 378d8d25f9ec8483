/* The first block of the MNIST encoder under numerics="fused" (nine/core/fused.py): a 3x3 convolution of a
 * one-channel image followed by a 2x2 max-pool with stride 2, computed in one pass without the full-size
 * convolution output, and its backward pass for the weights and the bias.
 *
 * Layouts: x is n x H x W (one channel); out and winner are n x h x w x C (channels-last), with
 * h = (H - 2) / 2 and w = (W - 2) / 2; weight is C x 9 (row-major 3x3 taps), bias C.
 *
 * Each convolution output is bias + w_0 p_0 + ... + w_8 p_8, summed in that order, one rounding per operation
 * (the module is built with -ffp-contract=off and without -ffast-math), so the results do not depend on the
 * instruction set the compiler vectorises for. The pool takes the first maximum of its window in row-major
 * order, and a NaN wins, as PyTorch's max-pool does; `winner` holds the place (2 dy + dx) that won.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int conv_pool_forward(const float *restrict x, const float *restrict weight, const float *restrict bias,
                      float *restrict out, uint8_t *restrict winner, int64_t n, int64_t H, int64_t W, int64_t C)
{
    const int64_t h = (H - 2) / 2, w = (W - 2) / 2;
    float *taps = malloc(sizeof(float) * 9 * C); /* taps[k * C + c]: the loops below run over c */
    if (taps == NULL)
        return 1;
    for (int64_t c = 0; c < C; c++)
        for (int k = 0; k < 9; k++)
            taps[k * C + c] = weight[c * 9 + k];
    for (int64_t image = 0; image < n; image++) {
        const float *pixels = x + image * H * W;
        for (int64_t i = 0; i < h; i++) {
            for (int64_t j = 0; j < w; j++) {
                float patch[4][9]; /* the 3x3 patch under each place (dy, dx) of the window */
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++)
                                patch[2 * dy + dx][3 * ky + kx] = pixels[(2 * i + dy + ky) * W + 2 * j + dx + kx];
                float *o = out + ((image * h + i) * w + j) * C;
                uint8_t *won = winner + ((image * h + i) * w + j) * C;
                for (int64_t c = 0; c < C; c++) {
                    float best = 0.0f;
                    uint8_t place = 0;
                    for (int s = 0; s < 4; s++) {
                        float v = bias[c];
                        for (int k = 0; k < 9; k++)
                            v = v + taps[k * C + c] * patch[s][k];
                        if (s == 0 || v > best || v != v) {
                            best = v;
                            place = (uint8_t)s;
                        }
                    }
                    o[c] = best;
                    won[c] = place;
                }
            }
        }
    }
    free(taps);
    return 0;
}

enum { BLOCK = 16 }; /* channels summed at once in the backward pass: C must be a multiple of it */

/* grad (n x h x w x C) -> grad_weight (C x 9) and grad_bias (C), each window's gradient sent to the place that
 * won it. Sums run image by image in float, over the windows in row-major order, and each image's sums are
 * added to a double total. Returns 2 when C is not a multiple of BLOCK. */
int conv_pool_backward(const float *restrict x, const float *restrict grad, const uint8_t *restrict winner,
                       double *restrict grad_weight, double *restrict grad_bias, int64_t n, int64_t H, int64_t W,
                       int64_t C)
{
    const int64_t h = (H - 2) / 2, w = (W - 2) / 2;
    if (C % BLOCK)
        return 2;
    memset(grad_weight, 0, sizeof(double) * 9 * C);
    memset(grad_bias, 0, sizeof(double) * C);
    for (int64_t image = 0; image < n; image++) {
        const float *pixels = x + image * H * W;
        for (int64_t c0 = 0; c0 < C; c0 += BLOCK) {
            float sums[10][BLOCK] = {{0}}; /* the 9 taps' sums, then the bias's */
            for (int64_t i = 0; i < h; i++) {
                for (int64_t j = 0; j < w; j++) {
                    float patch[4][9];
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++)
                                    patch[2 * dy + dx][3 * ky + kx] = pixels[(2 * i + dy + ky) * W + 2 * j + dx + kx];
                    const float *g = grad + ((image * h + i) * w + j) * C + c0;
                    const uint8_t *won = winner + ((image * h + i) * w + j) * C + c0;
                    float places[BLOCK]; /* as floats: the loop below then holds one type, and vectorises whole */
                    for (int l = 0; l < BLOCK; l++)
                        places[l] = won[l];
                    for (int l = 0; l < BLOCK; l++) {
                        const float gl = g[l], place = places[l]; /* the window's gradient goes to the place that won */
                        float t[9];
                        for (int k = 0; k < 9; k++)
                            t[k] = sums[k][l];
                        for (int s = 0; s < 4; s++) {
                            /* adding 0 where a place did not win leaves a sum unchanged: the winners' sums alone */
                            const float r = place == (float)s ? gl : 0.0f;
                            for (int k = 0; k < 9; k++)
                                t[k] = t[k] + r * patch[s][k];
                        }
                        for (int k = 0; k < 9; k++)
                            sums[k][l] = t[k];
                    }
                    for (int l = 0; l < BLOCK; l++)
                        sums[9][l] = sums[9][l] + g[l];
                }
            }
            for (int l = 0; l < BLOCK; l++) {
                for (int k = 0; k < 9; k++)
                    grad_weight[(c0 + l) * 9 + k] += sums[k][l];
                grad_bias[c0 + l] += sums[9][l];
            }
        }
    }
    return 0;
}
