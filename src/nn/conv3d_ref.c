/* conv3d_ref.c — the naive double-precision conv3d the fast one and the
 * gradient checks are measured against: one loop nest, no tricks. */
#include "nn/spatial_internal.h"


/* Calls BODY(xi, wi) for every valid (input index, weight index) pair that
 * contributes to output element yi. */
#define DJ_CONV_REF_LOOP(g, BODY)                                                                       \
    for (int64_t n = 0; n < (g)->N; n++)                                                                \
        for (int64_t oc = 0; oc < (g)->Cout; oc++)                                                      \
            for (int64_t to = 0; to < (g)->To; to++)                                                    \
                for (int64_t ho = 0; ho < (g)->Ho; ho++)                                                \
                    for (int64_t wo = 0; wo < (g)->Wo; wo++) {                                          \
                        int64_t yi = (((n * (g)->Cout + oc) * (g)->To + to) * (g)->Ho + ho) * (g)->Wo + wo; \
                        int64_t grp = oc / (g)->Cout_g;                                                 \
                        for (int64_t c = 0; c < (g)->Cin_g; c++)                                        \
                            for (int64_t kt = 0; kt < (g)->kT; kt++)                                    \
                                for (int64_t kh = 0; kh < (g)->kH; kh++)                                \
                                    for (int64_t kw = 0; kw < (g)->kW; kw++) {                          \
                                        int64_t it = to * (g)->st - (g)->pt + kt * (g)->dt;             \
                                        int64_t ih = ho * (g)->sh - (g)->ph + kh * (g)->dh;             \
                                        int64_t iw = wo * (g)->sw - (g)->pw + kw * (g)->dw;             \
                                        if (it < 0 || it >= (g)->T || ih < 0 || ih >= (g)->H || iw < 0 || \
                                            iw >= (g)->W)                                               \
                                            continue;                                                   \
                                        int64_t ic = grp * (g)->Cin_g + c;                              \
                                        int64_t xi = (((n * (g)->Cin + ic) * (g)->T + it) * (g)->H + ih) * (g)->W + iw; \
                                        int64_t wi = (((oc * (g)->Cin_g + c) * (g)->kT + kt) * (g)->kH + kh) * (g)->kW + kw; \
                                        BODY;                                                           \
                                    }                                                                   \
                    }

static dj_status dj_conv_ref_setup(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                   dj_conv_geom *g, const char *who) {
    if (!inp || !weight || inp->ndim != 5 || weight->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, who, "input and weight must be 5-D tensors");
    return dj_conv_geom_init(p, inp->shape, weight->shape, g, who);
}

dj_status dj_conv3d_ref_forward(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *bias, dj_tensor *out) {
    static const char who[] = "dj_conv3d_ref_forward";
    dj_conv_geom g;
    DJ_TRY(dj_conv_ref_setup(p, inp, weight, &g, who));
    DJ_TRY(dj_conv_check(&g, DJ_DTYPE_F64, inp, weight, bias, out, who));
    const double *x = inp->data, *w = weight->data, *b = bias ? bias->data : NULL;
    double *y = out->data;
    for (int64_t i = 0; i < dj_tensor_numel(out); i++)
        y[i] = b ? b[(i / g.P) % g.Cout] : 0.0;
    DJ_CONV_REF_LOOP(&g, y[yi] += x[xi] * w[wi]);
    return DJ_OK;
}

dj_status dj_conv3d_ref_backward(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_conv3d_ref_backward";
    dj_conv_geom g;
    DJ_TRY(dj_conv_ref_setup(p, inp, weight, &g, who));
    DJ_TRY(dj_conv_check(&g, DJ_DTYPE_F64, inp, weight, dbias, dout, who));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F64, inp, who, "input gradient"));
    if (dweight)
        DJ_TRY(dj_expect_like(dweight, DJ_DTYPE_F64, weight, who, "weight gradient"));
    const double *x = inp->data, *w = weight->data, *dy = dout->data;
    double *dx = dinp ? dinp->data : NULL, *dw = dweight ? dweight->data : NULL;
    double *db = dbias ? dbias->data : NULL;
    if (db)
        for (int64_t i = 0; i < dj_tensor_numel(dout); i++)
            db[(i / g.P) % g.Cout] += dy[i];
    DJ_CONV_REF_LOOP(&g, {
        if (dx)
            dx[xi] += dy[yi] * w[wi];
        if (dw)
            dw[wi] += dy[yi] * x[xi];
    });
    return DJ_OK;
}
