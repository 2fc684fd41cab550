//! Section 2: analytic against numerical gradients.

use super::*;

pub(super) fn gradient_check(data: &Split<f32>, _scale: &Scale) -> Result<SectionOutput> {
    let (x, y) = gradcheck_input(data, 10, 20)?;
    let y = &y[..];
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for hidden in [
        vec![50],
        vec![50, 50],
        vec![50, 50, 50],
        NINE_LAYER.to_vec(),
    ] {
        for bn in [BnPlacement::None, BnPlacement::Before, BnPlacement::After] {
            for lambda in [0.0, 0.1] {
                let mut net = NetConfig::new(&hidden)
                    .input(20)
                    .bn(bn)
                    .seed(0)
                    .build::<f64>()?;
                let cfg = GradCheckConfig {
                    lambda,
                    ..GradCheckConfig::default()
                };
                let check = gradcheck(&mut net, x.view(), y, &cfg)?;
                let median = {
                    let mut all: Vec<f64> = check
                        .tensors
                        .iter()
                        .flat_map(|t| t.rel_errors.clone())
                        .collect();
                    all.sort_by(f64::total_cmp);
                    all[all.len() / 2]
                };
                rows.push(vec![
                    format!("{}", hidden.len() + 1),
                    format!("{bn:?}"),
                    format!("{lambda}"),
                    format!("{median:.1e}"),
                    format!("{:.1e}", check.max_rel_error()),
                    format!("{:.1e}", check.max_abs_error()),
                ]);
                if hidden.len() == 3 && lambda == 0.0 && bn != BnPlacement::After {
                    let with = if bn == BnPlacement::None {
                        "without"
                    } else {
                        "with"
                    };
                    figures.push(Figure {
                        name: format!("gradcheck_4_layer_{}", if bn == BnPlacement::None { "no_bn" } else { "bn" }),
                        caption: format!("Relative errors per parameter tensor, 4-layer net {with} BN (report figure {})", if bn == BnPlacement::None { 1 } else { 2 }),
                        plot: plot::gradcheck_boxes(&check, &format!("4-layer net {with} BN: relative errors")),
                    });
                }
            }
        }
    }
    let mut md = String::from(
        "Analytic against numerical gradients (five-point centred differences, h = 1e-4, f64) on \
           the first 20 features of 10 training images; relative error \
           |g_a − g_n| / max(1e-6, |g_a| + |g_n|) over every entry of every W, b, γ, β.\n\n",
    );
    md += &markdown_table(
        &[
            "layers",
            "BN",
            "lambda",
            "median rel. error",
            "max rel. error",
            "max abs. error",
        ],
        &rows,
    );
    md += "\nThe report only says the errors \"seem correct\" (its figures 1 and 2). Here the typical \
           entry agrees to 1e-10 or better. The largest relative errors belong to entries whose \
           gradient is tiny (|g| ≲ 1e-4): f64 round-off in the cost limits any finite difference to \
           about 1e-12 absolute, which is why the tests judge such entries by their absolute error.\n\n";
    Ok(SectionOutput {
        markdown: md,
        figures,
    })
}
