//! The report's sections as runnable units: each runs its experiments at a [`Scale`] and
//! returns a markdown fragment (tables and discussion) and its figures. `klayer reproduce`
//! writes them into `docs/RESULTS.md`.

use plotly::Plot;

use super::report::{self, Reported};
use super::{
    gradcheck_input, markdown_table, run_seeds, test_accuracies, Comparison, LambdaGrid, LambdaSearch, Run, Scale,
    Seeds, Summary, NINE_LAYER, SEVEN_LAYER_ADAM, WIDE,
};
use crate::bn_stats::BnStats;
use crate::data::Cifar10;
use crate::gradcheck::{gradcheck, GradCheckConfig};
use crate::net::{BnPlacement, NetConfig};
use crate::plot;
use crate::train::{History, LrSchedule, Optimizer};
use crate::Result;

/// A figure of a section: file stem, caption, plot.
pub struct Figure {
    /// File name without extension, e.g. `three_layer_bn`.
    pub name: String,
    /// One-line caption.
    pub caption: String,
    /// The figure.
    pub plot: Plot,
}

/// What a section produced.
pub struct SectionOutput {
    /// Markdown: heading, tables, discussion.
    pub markdown: String,
    /// Figures, referenced from the markdown as `figures/NAME.png`.
    pub figures: Vec<Figure>,
}

/// A section of the report.
pub struct Section {
    /// Identifier used on the command line: `three-layer`, `lambda`, …
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Whether its numbers depend on the [`Scale`] (the gradient check's do not).
    pub sized: bool,
    /// Runs its experiments: tables and discussion, without heading and figure links.
    pub body: fn(&Cifar10<f32>, &Scale) -> Result<SectionOutput>,
}

impl Section {
    /// Runs the section: its heading, the data size it ran at, its tables and discussion, and
    /// links to its figures (`figures/NAME.png`).
    pub fn run(&self, data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
        let body = (self.body)(data, scale)?;
        let mut markdown = format!("## {}\n\n", self.title);
        if self.sized {
            let size = if scale.quick {
                "**quick mode** (5,000 / 1,000 / 2,000 images; numbers are not comparable with the report)"
            } else {
                "full size (45,000 training / 5,000 validation / 10,000 test images)"
            };
            markdown += &format!("Run at {size}.\n\n");
        }
        markdown += body.markdown.trim_end();
        markdown += "\n\n";
        for f in &body.figures {
            markdown += &format!(
                "![{}](figures/{}.png)\n\n*{}*\n\n",
                f.caption, f.name, f.caption
            );
        }
        Ok(SectionOutput {
            markdown,
            figures: body.figures,
        })
    }
}

/// All sections, in the report's order.
pub const SECTIONS: &[Section] = &[
    Section {
        id: "gradcheck",
        title: "2 · Gradient check",
        sized: false,
        body: gradient_check,
    },
    Section {
        id: "three-layer",
        title: "2.1 · 3-layer network without and with BN",
        sized: true,
        body: three_layer,
    },
    Section {
        id: "nine-layer",
        title: "2.2 · 9-layer network without and with BN",
        sized: true,
        body: nine_layer,
    },
    Section {
        id: "lambda",
        title: "2.3 · Lambda search",
        sized: true,
        body: lambda_search,
    },
    Section {
        id: "init",
        title: "2.4 · Sensitivity to initialisation",
        sized: true,
        body: init_sensitivity,
    },
    Section {
        id: "bn-after",
        title: "3.1 · BN after the activation",
        sized: true,
        body: bn_after,
    },
    Section {
        id: "bn-stats",
        title: "3.1 · EMA vs PreciseBN vs Adaptive BN",
        sized: true,
        body: bn_stats,
    },
    Section {
        id: "tta",
        title: "3.1 · Adaptive BN with test-time augmentation",
        sized: true,
        body: tta,
    },
    Section {
        id: "adam",
        title: "3.2 · Adam on a 7-layer net",
        sized: true,
        body: adam,
    },
    Section {
        id: "wide",
        title: "3.2 · Wider 7-layer nets",
        sized: true,
        body: wide,
    },
];

/// Seeds for the default 3- and 9-layer runs: 5 at full size.
fn main_seeds(scale: &Scale) -> Seeds {
    if scale.quick {
        scale.seed_list()
    } else {
        Seeds::new(0..5).expect("0..5 are seeds")
    }
}

fn pct(h: &History) -> String {
    match (h.diverged, h.test_acc()) {
        (Some(d), _) => format!("diverged at step {}", d.step),
        (None, Some(a)) => format!("{:.2}", 100.0 * a),
        _ => "–".into(),
    }
}

/// A section's text: the settings (may be empty), the comparison with the report, extra lines
/// and a closing paragraph (may be empty).
fn body(settings: &str, table: &Comparison, extra: &str, closing: &str) -> String {
    let mut md = String::new();
    if !settings.is_empty() {
        md += settings;
        md += "\n\n";
    }
    md += &table.markdown();
    md += extra;
    if !closing.is_empty() {
        md += "\n";
        md += closing;
        md += "\n\n";
    }
    md
}

fn curves(name: &str, caption: String, h: &History) -> Figure {
    Figure {
        name: name.into(),
        plot: plot::learning_curves(h, &caption),
        caption,
    }
}

/// A bar chart with one bar per setting: `figure` is (file stem, caption, title).
fn bars(figure: [&str; 3], labels: &[String], repeats: &[Vec<f64>]) -> Figure {
    let [name, caption, title] = figure;
    Figure {
        name: name.into(),
        caption: caption.into(),
        plot: plot::bars(labels, repeats, "test accuracy (%)", title),
    }
}

fn gradient_check(data: &Cifar10<f32>, _scale: &Scale) -> Result<SectionOutput> {
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

/// A net run without and with BN, and what to compare it with.
struct WithWithout {
    base: Run,
    /// File-name stem of the figures.
    id: &'static str,
    /// The settings, in one sentence.
    settings: &'static str,
    /// `3-layer`, `9-layer`.
    layers: &'static str,
    /// The report's test accuracies without and with BN.
    report: [Reported; 2],
    /// Ranges of other implementations of the assignment, without and with BN.
    others: [&'static str; 2],
}

fn with_without(data: &Cifar10<f32>, scale: &Scale, spec: WithWithout) -> Result<SectionOutput> {
    let WithWithout {
        base,
        id,
        settings,
        layers,
        report,
        others,
    } = spec;
    let seeds = main_seeds(scale);
    let mut table = Comparison::new(scale);
    let mut figures = Vec::new();
    let mut singles = String::new();
    for (k, bn) in [BnPlacement::None, BnPlacement::Before]
        .into_iter()
        .enumerate()
    {
        let label = if k == 0 { "without BN" } else { "with BN" };
        eprintln!("{layers}, {label}:");
        let runs = run_seeds(&base.clone().bn(bn), &seeds, data)?;
        table = table.row(format!("{layers} {label}"), &runs, report[k]);
        singles += &format!(
            "- {label}: single runs {}.\n",
            runs.iter().map(pct).collect::<Vec<_>>().join(", ")
        );
        figures.push(curves(
            &format!("{id}_{}", if k == 0 { "no_bn" } else { "bn" }),
            format!(
                "{layers} {label}, seed 0: test {} % (report {})",
                pct(&runs[0]),
                report[k].source
            ),
            &runs[0],
        ));
    }
    singles += &format!(
        "\nOther implementations of the assignment get {} without BN and {} with it.\n",
        others[0], others[1]
    );
    Ok(SectionOutput {
        markdown: body(settings, &table, &singles, ""),
        figures,
    })
}

fn three_layer(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let spec = WithWithout {
        base: Run::three_layer(scale),
        id: "three_layer",
        settings: "Hidden [50, 50], lambda 0.005, cyclic learning rate 1e-5..1e-1, n_s = 5 epochs, 2 cycles, batch 100, He init.",
        layers: "3-layer",
        report: [report::THREE_LAYER_NO_BN, report::THREE_LAYER_BN],
        others: ["52–54 %", "52–54 % (the assignment expects ≈ 53.8 %)"],
    };
    with_without(data, scale, spec)
}

fn nine_layer(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let spec = WithWithout {
        base: Run::nine_layer(scale),
        id: "nine_layer",
        settings: "Hidden [50, 30, 20, 20, 10, 10, 10, 10], otherwise the 3-layer settings.",
        layers: "9-layer",
        report: [report::NINE_LAYER_NO_BN, report::NINE_LAYER_BN],
        others: ["40–48 %", "44–52 %"],
    };
    with_without(data, scale, spec)
}

fn lambda_search(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let search = LambdaSearch::new(scale);
    let mut grid = LambdaGrid::default();
    for &l in search.coarse.iter().chain(&search.fine) {
        if !grid.has(l) {
            eprintln!("lambda {l:e}:");
            grid.add(l, run_seeds(&search.base.clone().lambda(l), &search.seeds, data)?);
        }
    }
    let xs = grid.validation();
    let figure = Figure {
        name: "lambda_search".into(),
        caption: "Validation accuracy against lambda, coarse and fine grid together (mean ± std over seeds, dots: single runs)".into(),
        plot: plot::against_log_param(
            &xs.iter().map(|x| x.0).collect::<Vec<_>>(),
            &[("3-layer, BN".to_string(), xs.iter().map(|x| x.1.clone()).collect())],
            "lambda",
            "validation accuracy (%)",
            "Lambda search, 3-layer net with BN",
        ),
    };
    let spread = xs.iter().map(|x| Summary::of(&x.1).std).fold(0.0, f64::max);
    let mut md = format!(
        "3-layer net with BN, default settings, {} seeds per lambda; final validation accuracy. \
         Notebook 04 runs the same search.\n\nCoarse grid:\n\n",
        search.seeds.len()
    );
    md += &grid
        .comparison(&search.coarse, &report::LAMBDA_COARSE, scale)
        .markdown();
    md += "\nFine grid:\n\n";
    md += &grid
        .comparison(&search.fine, &report::LAMBDA_FINE, scale)
        .markdown();
    md += "\nOutcome: the best lambda by validation accuracy, and the test accuracy of its runs:\n\n";
    md += &grid.outcome(scale)?.markdown();
    md += &format!(
        "\nThe largest standard deviation over seeds at one lambda is {spread:.2} points, to judge \
         the differences between neighbouring lambdas by.\n\n"
    );
    Ok(SectionOutput {
        markdown: md,
        figures: vec![figure],
    })
}

fn init_sensitivity(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut table = Comparison::new(scale);
    let mut marks = String::new();
    let mut figures = Vec::new();
    for (bn, label, reported) in [
        (BnPlacement::None, "without BN", report::INIT_NO_BN),
        (BnPlacement::Before, "with BN", report::INIT_BN),
    ] {
        for (&sig, reported) in report::INIT_SIGS.iter().zip(reported) {
            eprintln!("{label}, sig {sig:e}:");
            let runs = run_seeds(&Run::three_layer(scale).bn(bn).sig(sig), &seeds, data)?;
            table = table.row(format!("{label}, sig = {sig:e}"), &runs, reported);
            marks += &format!(
                "- {label}, sig = {sig:e}: {}.\n",
                runs.iter().map(fate).collect::<Vec<_>>().join("; ")
            );
            if sig == 1e-1 || sig == 1e-4 {
                figures.push(curves(
                    &format!(
                        "init_{}_sig_{}",
                        if bn == BnPlacement::None { "no_bn" } else { "bn" },
                        if sig == 1e-1 { "1e-1" } else { "1e-4" }
                    ),
                    format!("3-layer {label}, sig = {sig:e}, seed 0"),
                    &runs[0],
                ));
            }
        }
    }
    // A likely cause of the report's 10 % without BN at sig = 1e-1: sig read as a variance,
    // i.e. std = √0.1 ≈ 0.32 in every layer.
    eprintln!("without BN, std = sqrt(1e-1):");
    let as_variance = run_seeds(
        &Run::three_layer(scale)
            .bn(BnPlacement::None)
            .sig(0.1f64.sqrt()),
        &seeds,
        data,
    )?;
    let variance_fates: Vec<String> = as_variance.iter().map(fate).collect();
    let closing = format!(
        "The report found every run without BN at chance and put it down to the high learning \
         rates. The table above shows what a correct net without BN does at sig = 1e-1. If sig is \
         read as a variance instead (std = √0.1 ≈ 0.32 in every layer, twelve times He's std for the \
         first layer), the runs here {}. With the tiny sigmas the signal vanishes through the layers \
         without BN and the net stays at chance; BN re-normalises every layer's pre-activations \
         whatever their scale, so with BN the init scale hardly matters.",
        variance_fates.join("; ")
    );
    Ok(SectionOutput {
        markdown: body(
            "3-layer net, every weight drawn with std `sig` instead of He init; final validation accuracy.",
            &table,
            &format!("\nSingle runs:\n\n{marks}"),
            &closing,
        ),
        figures,
    })
}

/// How a run ended: diverged, stuck at chance, or its validation accuracy.
fn fate(h: &History) -> String {
    match h.diverged {
        Some(d) => format!("diverged at step {} (learning rate {:.2e})", d.step, d.lr),
        None if h.stuck_at_chance(10) => "stuck at chance".to_string(),
        None => format!(
            "trained to {:.2} % validation accuracy",
            100.0 * h.val_acc().unwrap_or(0.0)
        ),
    }
}

fn bn_after(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut table = Comparison::new(scale);
    let mut figures = Vec::new();
    for (name, run, before, after) in [
        (
            "3-layer",
            Run::three_layer(scale),
            report::THREE_LAYER_BN,
            report::BN_AFTER_THREE,
        ),
        (
            "9-layer",
            Run::nine_layer(scale),
            report::NINE_LAYER_BN,
            report::BN_AFTER_NINE,
        ),
    ] {
        for (placement, bn, reported) in [
            ("before ReLU", BnPlacement::Before, before),
            ("after ReLU", BnPlacement::After, after),
        ] {
            eprintln!("{name}, BN {placement}:");
            let runs = run_seeds(&run.clone().bn(bn), &seeds, data)?;
            table = table.row(format!("{name}, BN {placement}"), &runs, reported);
            if bn == BnPlacement::After {
                figures.push(curves(
                    &format!(
                        "bn_after_{}",
                        if name == "3-layer" { "three" } else { "nine" }
                    ),
                    format!(
                        "{name}, BN after ReLU, seed 0: test {} % (report {})",
                        pct(&runs[0]),
                        reported.source
                    ),
                    &runs[0],
                ));
            }
        }
    }
    Ok(SectionOutput {
        markdown: body("", &table, "", ""),
        figures,
    })
}

fn bn_stats(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let methods = [
        ("EMA (α = 0.9)", "EMA", BnStats::default(), Some(report::NINE_LAYER_BN)),
        (
            "PreciseBN, every 10 batches during training (the report's)",
            "PreciseBN (report)",
            BnStats::PRECISE_REPORT,
            Some(report::PRECISE_BN),
        ),
        (
            "PreciseBN, 200 batches after training (fvcore)",
            "PreciseBN (fvcore)",
            BnStats::PRECISE,
            None,
        ),
        (
            "Adaptive BN (transductive)",
            "Adaptive BN",
            BnStats::Adaptive { augment: 0.0 },
            Some(report::ADAPTIVE_BN),
        ),
    ];
    let mut table = Comparison::new(scale);
    let (mut labels, mut repeats) = (Vec::new(), Vec::new());
    for (label, bar, stats, reported) in methods {
        eprintln!("9-layer, {label}:");
        let runs = run_seeds(&Run::nine_layer(scale).bn_stats(stats), &seeds, data)?;
        table = table.row(label, &runs, reported);
        labels.push(bar.to_string());
        repeats.push(test_accuracies(&runs));
    }
    Ok(SectionOutput {
        markdown: body(
            "9-layer net with BN before ReLU. The weights are trained alike in every case (BN uses batch \
             statistics in training); only the statistics used for evaluation differ.",
            &table,
            "",
            "At the end of a cyclic schedule the learning rate is near zero, so the weights barely move in \
             the last epochs and the EMA settles on the population statistics that PreciseBN estimates; \
             large differences between the methods are not to be expected. Adaptive BN is transductive: \
             it uses the statistics of the test set itself, so an image's prediction depends on the \
             other test images.",
        ),
        figures: vec![bars(
            [
                "bn_stats",
                "9-layer net with BN: test accuracy with each kind of BN statistics (mean ± std over seeds)",
                "BN statistics at test time, 9-layer net",
            ],
            &labels,
            &repeats,
        )],
    })
}

fn tta(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut table = Comparison::new(scale);
    let (mut labels, mut repeats) = (Vec::new(), Vec::new());
    for (f, reported) in report::TTA {
        eprintln!("9-layer, Adaptive BN, {:.0} % augmented:", 100.0 * f);
        let runs = run_seeds(
            &Run::nine_layer(scale).bn_stats(BnStats::Adaptive { augment: f }),
            &seeds,
            data,
        )?;
        let label = format!("{:.0} %", 100.0 * f);
        table = table.row(format!("{label} augmented"), &runs, reported);
        labels.push(label);
        repeats.push(test_accuracies(&runs));
    }
    Ok(SectionOutput {
        markdown: body(
            "9-layer net; before the statistics are recomputed on the test set, the given fraction of test \
             images is transformed (random horizontal flip with probability 0.5 and a random translation \
             of up to 3 pixels each way, zero fill) and the transformed images are then classified.",
            &table,
            "",
            "A fully connected net is not translation invariant, so shifted images are harder for it. How \
             far the accuracy falls depends on the size of the shifts and the fill, which the report does \
             not state (here up to 3 pixels, zero fill).",
        ),
        figures: vec![bars(
            [
                "tta",
                "Adaptive BN with a fraction of the test images flipped and/or translated by up to 3 pixels",
                "Adaptive BN with test-time augmentation, 9-layer net",
            ],
            &labels,
            &repeats,
        )],
    })
}

/// The report's Adam run: the 7-layer net, cyclic rate 1e-5..1e-3 with n_s = 5 epochs,
/// 8 cycles, each peak 0.9 times the previous one (the report's "slight decay" is not
/// specified further). Notebook 07 trains the same.
pub fn adam_run(scale: &Scale) -> Run {
    let n_s = (5 * scale.train_images() / 100).max(1);
    Run::new(SEVEN_LAYER_ADAM, scale)
        .optimizer(Optimizer::ADAM)
        .schedule(LrSchedule::Cyclic {
            eta_min: 1e-5,
            eta_max: 1e-3,
            n_s,
            cycles: 8,
            decay: 0.9,
        })
}

fn adam(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let run = adam_run(scale);
    eprintln!("7-layer, Adam:");
    let runs = run_seeds(&run, &seeds, data)?;
    let figures = vec![curves(
        "adam",
        format!(
            "7-layer [60, 50, 40, 30, 20, 10] with Adam, seed 0: test {} % (report {})",
            pct(&runs[0]),
            report::ADAM.source
        ),
        &runs[0],
    )];
    let settings = format!(
        "Hidden [60, 50, 40, 30, 20, 10] with BN, Adam (β₁ 0.9, β₂ 0.999, ε 1e-8), {:?}, lambda 0.005; \
         each cycle's peak is 0.9 times the previous one (the report's \"slight decay\" is not \
         specified further).",
        run.train.schedule
    );
    let table = Comparison::new(scale).row("Adam, 7-layer", &runs, report::ADAM);
    Ok(SectionOutput {
        markdown: body(&settings, &table, "", ""),
        figures,
    })
}

fn wide(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut table = Comparison::new(scale);
    let mut figures = Vec::new();
    for (hidden, reported) in WIDE.into_iter().zip(report::WIDE) {
        eprintln!("7-layer {hidden:?}:");
        let runs = run_seeds(&Run::new(hidden, scale), &seeds, data)?;
        table = table.row(format!("{hidden:?}"), &runs, reported);
        figures.push(curves(
            &format!("wide_{}", hidden[0]),
            format!(
                "7-layer {hidden:?}, SGD with cyclic learning rate, seed 0: test {} % (report {})",
                pct(&runs[0]),
                reported.source
            ),
            &runs[0],
        ));
    }
    Ok(SectionOutput {
        markdown: body(
            "7-layer nets with BN, plain SGD and the default cyclic schedule (2 cycles).",
            &table,
            "",
            "The report's NumPy runs took more than 30 minutes each; the last column is the wall time of \
             one run here, evaluation included.",
        ),
        figures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_ids_are_unique() {
        let mut ids: Vec<_> = SECTIONS.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), SECTIONS.len());
    }
}
