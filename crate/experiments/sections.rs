//! The report's sections as runnable units: each runs its experiments at a [`Scale`] and
//! returns a markdown fragment (tables and discussion) and its figures. `klayer reproduce`
//! writes them into `docs/RESULTS.md`.

use std::time::Instant;

use ndarray::s;
use plotly::Plot;

use super::{
    markdown_table, run_seeds, test_accuracies, Run, Scale, Summary, NINE_LAYER, SEVEN_LAYER_ADAM,
    WIDE,
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
fn main_seeds(scale: &Scale) -> Vec<u64> {
    if scale.quick {
        scale.seed_list()
    } else {
        (0..5).collect()
    }
}

fn pct(h: &History) -> String {
    match (h.diverged, h.test_acc()) {
        (Some(d), _) => format!("diverged at step {}", d.step),
        (None, Some(a)) => format!("{:.2}", 100.0 * a),
        _ => "–".into(),
    }
}

/// One sentence comparing our mean with the report's number: agreement within the seed
/// spread (two standard deviations, at least one point), or the difference.
pub fn compare(what: &str, ours: &Summary, report: &str) -> String {
    let Ok(report) = report.parse::<f64>() else {
        return format!("- {what}: {ours}; the report has no number.\n");
    };
    if ours.n == 0 {
        return format!("- {what}: no run finished (the report: {report:.2}).\n");
    }
    let diff = ours.mean - report;
    let band = (2.0 * ours.std).max(1.0);
    if diff.abs() <= band {
        format!(
            "- {what}: {:.2} here against {report:.2} in the report, a difference of {diff:+.2} points, within the seed spread (±{band:.2}).\n",
            ours.mean
        )
    } else {
        format!(
            "- {what}: {:.2} here against {report:.2} in the report: {:.2} points {}, beyond the seed spread (±{band:.2}).\n",
            ours.mean,
            diff.abs(),
            if diff > 0.0 { "higher" } else { "lower" }
        )
    }
}

fn row(label: &str, report: &str, ours: Summary, others: &str) -> Vec<String> {
    vec![label.into(), report.into(), ours.to_string(), others.into()]
}

/// Test accuracies of several settings, for a table with a comparison line per setting and a
/// bar chart with one bar per setting.
#[derive(Default)]
struct Tally {
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
    labels: Vec<String>,
    repeats: Vec<Vec<f64>>,
}

impl Tally {
    /// Adds the runs of one setting: `label` in the table, `what` in the comparison, `bar`
    /// under its bar; `report` is the report's test accuracy.
    fn add(&mut self, label: &str, what: &str, bar: String, report: &str, runs: &[History]) {
        let ours = Summary::test_acc(runs);
        self.rows
            .push(vec![label.into(), report.into(), ours.to_string()]);
        self.notes.push(compare(what, &ours, report));
        self.labels.push(bar);
        self.repeats.push(test_accuracies(runs));
    }

    /// The section: its text (see [`body`]) and a bar chart with a bar per setting, drawn as
    /// `figure`: (file stem, caption, title).
    fn into_section(
        self,
        figure: [&str; 3],
        settings: &str,
        header: &[&str],
        closing: &str,
    ) -> SectionOutput {
        let [name, caption, title] = figure;
        SectionOutput {
            markdown: body(settings, header, &self.rows, &self.notes, closing),
            figures: vec![Figure {
                name: name.into(),
                caption: caption.into(),
                plot: plot::bars(&self.labels, &self.repeats, "test accuracy (%)", title),
            }],
        }
    }
}

/// A section's text in the usual order: the settings (may be empty), a table, one comparison
/// line per number (from [`compare`]) and a closing paragraph (may be empty).
fn body(
    settings: &str,
    header: &[&str],
    rows: &[Vec<String>],
    notes: &[String],
    closing: &str,
) -> String {
    let mut md = String::new();
    if !settings.is_empty() {
        md += settings;
        md += "\n\n";
    }
    md += &markdown_table(header, rows);
    md += "\n";
    md += &notes.concat();
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

fn gradient_check(data: &Cifar10<f32>, _scale: &Scale) -> Result<SectionOutput> {
    let x = data.train.x.slice(s![..10, ..20]).mapv(f64::from);
    let y = &data.train.y[..10];
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
    report: [&'static str; 2],
    /// Ranges of other implementations.
    others: [&'static str; 2],
    /// The report's figure numbers.
    figure_numbers: [u32; 2],
}

fn with_without(data: &Cifar10<f32>, scale: &Scale, spec: WithWithout) -> Result<SectionOutput> {
    let WithWithout {
        base,
        id,
        settings,
        layers,
        report,
        others,
        figure_numbers,
    } = spec;
    let seeds = main_seeds(scale);
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    for (k, bn) in [BnPlacement::None, BnPlacement::Before]
        .into_iter()
        .enumerate()
    {
        let label = if k == 0 { "without BN" } else { "with BN" };
        eprintln!("{layers}, {label}:");
        let runs = run_seeds(&base.clone().bn(bn), &seeds, data)?;
        rows.push(row(label, report[k], Summary::test_acc(&runs), others[k]));
        notes.push(compare(
            &format!("{layers} {label}"),
            &Summary::test_acc(&runs),
            report[k],
        ));
        let mean_s = Summary::seconds(&runs).mean;
        notes.push(format!(
            "- {label}: single runs {}; {mean_s:.1} s per run.\n",
            runs.iter().map(pct).collect::<Vec<_>>().join(", ")
        ));
        figures.push(curves(
            &format!("{id}_{}", if k == 0 { "no_bn" } else { "bn" }),
            format!(
                "{layers} {label}, seed 0: test {} % (report figure {})",
                pct(&runs[0]),
                figure_numbers[k]
            ),
            &runs[0],
        ));
    }
    Ok(SectionOutput {
        markdown: body(
            settings,
            &[
                "",
                "report",
                "ours: test acc. % (mean ± std, min–max)",
                "other implementations",
            ],
            &rows,
            &notes,
            "",
        ),
        figures,
    })
}

fn three_layer(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let spec = WithWithout {
        base: Run::three_layer(scale),
        id: "three_layer",
        settings: "Hidden [50, 50], lambda 0.005, cyclic learning rate 1e-5..1e-1, n_s = 5 epochs, 2 cycles, batch 100, He init.",
        layers: "3-layer",
        report: ["52.80", "53.89"],
        others: ["52–54", "52–54 (assignment: ≈ 53.8)"],
        figure_numbers: [3, 4],
    };
    with_without(data, scale, spec)
}

fn nine_layer(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let spec = WithWithout {
        base: Run::nine_layer(scale),
        id: "nine_layer",
        settings: "Hidden [50, 30, 20, 20, 10, 10, 10, 10], otherwise the 3-layer settings.",
        layers: "9-layer",
        report: ["41.74", "52.20"],
        others: ["40–48", "44–52"],
        figure_numbers: [5, 6],
    };
    with_without(data, scale, spec)
}

/// Validation accuracies (%) of `run` over `seeds` for each lambda.
fn grid(data: &Cifar10<f32>, run: &Run, lambdas: &[f64], seeds: &[u64]) -> Result<Vec<Vec<f64>>> {
    lambdas
        .iter()
        .map(|&l| {
            eprintln!("lambda {l:e}:");
            let runs = run_seeds(&run.clone().lambda(l), seeds, data)?;
            Ok(runs
                .iter()
                .map(|h| h.val_acc().map_or(f64::NAN, |a| 100.0 * a))
                .collect())
        })
        .collect()
}

fn lambda_search(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut base = Run::three_layer(scale);
    // Only final validation accuracies matter here: the curves' training points use 10,000 images.
    base.train.train_eval_limit = Some(10_000);
    let coarse = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
    let fine = [5e-4, 1e-3, 5e-3, 1e-2, 5e-2];
    let report_coarse = ["51.00", "51.44", "52.14", "51.38", "24.30"];
    let report_fine = ["51.34", "53.18", "53.62", "53.44", "52.38"];
    let c = grid(data, &base, &coarse, &seeds)?;
    let f = grid(data, &base, &fine, &seeds)?;
    let table = |lambdas: &[f64], accs: &[Vec<f64>], report: &[&str]| {
        let rows: Vec<Vec<String>> = lambdas
            .iter()
            .zip(accs)
            .zip(report)
            .map(|((l, a), r)| vec![format!("{l:e}"), r.to_string(), Summary::of(a).to_string()])
            .collect();
        markdown_table(
            &[
                "lambda",
                "report: val. acc. %",
                "ours: val. acc. % (mean ± std, min–max)",
            ],
            &rows,
        )
    };
    let all: Vec<(f64, f64)> = coarse
        .iter()
        .zip(&c)
        .chain(fine.iter().zip(&f))
        .map(|(&l, a)| (l, Summary::of(a).mean))
        .collect();
    let best =
        all.iter().copied().fold(
            (f64::NAN, f64::NEG_INFINITY),
            |b, x| if x.1 > b.1 { x } else { b },
        );
    eprintln!("retraining with the best lambda {:e}:", best.0);
    let runs = run_seeds(&Run::three_layer(scale).lambda(best.0), &seeds, data)?;
    let mut xs: Vec<(f64, Vec<f64>)> = coarse
        .iter()
        .copied()
        .zip(c.clone())
        .chain(fine.iter().copied().zip(f.clone()))
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    xs.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1.extend(a.1.clone());
            true
        } else {
            false
        }
    });
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
    let mut md = String::new();
    md += &format!("3-layer net with BN, default settings, {} seeds per lambda; final validation accuracy.\n\n", seeds.len());
    md += "Coarse grid:\n\n";
    md += &table(&coarse, &c, &report_coarse);
    md += "\nFine grid:\n\n";
    md += &table(&fine, &f, &report_fine);
    let spread = c
        .iter()
        .chain(&f)
        .map(|a| Summary::of(a).std)
        .fold(0.0, f64::max);
    md += &format!(
        "\nBest mean validation accuracy {:.2} at lambda = {:e} (the report kept 0.005); retrained with \
         it: test accuracy {}. The largest standard deviation over seeds at one lambda is {spread:.2} \
         points, to judge the differences between neighbouring lambdas by.\n\n",
        best.1,
        best.0,
        Summary::test_acc(&runs)
    );
    Ok(SectionOutput {
        markdown: md,
        figures: vec![figure],
    })
}

fn init_sensitivity(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let sigs = [1e-1, 1e-3, 1e-4];
    let report = [["9.98", "10.05", "10.14"], ["53.83", "53.48", "54.14"]];
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut figures = Vec::new();
    for (k, bn) in [BnPlacement::None, BnPlacement::Before]
        .into_iter()
        .enumerate()
    {
        let label = if k == 0 { "without BN" } else { "with BN" };
        for (i, &sig) in sigs.iter().enumerate() {
            eprintln!("{label}, sig {sig:e}:");
            let runs = run_seeds(&Run::three_layer(scale).bn(bn).sig(sig), &seeds, data)?;
            let marks: Vec<String> = runs
                .iter()
                .map(|h| {
                    if let Some(d) = h.diverged {
                        format!("diverged at step {}", d.step)
                    } else if h.stuck_at_chance(10) {
                        "stuck at chance".into()
                    } else {
                        "trained".into()
                    }
                })
                .collect();
            rows.push(vec![
                label.into(),
                format!("{sig:e}"),
                report[k][i].into(),
                Summary::val_acc(&runs).to_string(),
                marks.join(", "),
            ]);
            notes.push(compare(
                &format!("{label}, sig = {sig:e} (validation)"),
                &Summary::val_acc(&runs),
                report[k][i],
            ));
            if sig == 1e-1 || sig == 1e-4 {
                figures.push(curves(
                    &format!(
                        "init_{}_sig_{}",
                        if k == 0 { "no_bn" } else { "bn" },
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
    let fate = |h: &History| match h.diverged {
        Some(d) => format!("diverged at step {} (learning rate {:.2e})", d.step, d.lr),
        None if h.stuck_at_chance(10) => "stuck at chance".to_string(),
        None => format!(
            "trained to {:.2} % validation accuracy",
            100.0 * h.val_acc().unwrap_or(0.0)
        ),
    };
    let variance_fates: Vec<String> = as_variance.iter().map(fate).collect();
    let closing = format!(
        "The report found every run without BN at chance and put it down to the high learning \
         rates. The table above shows what a correct net without BN does at sig = 1e-1. If sig is \
         read as a variance instead (std = √0.1 ≈ 0.32 in every layer, twelve times He's std for the \
         first layer), the runs here {}: a plausible origin of the report's 9.98 %. With the tiny \
         sigmas the signal vanishes through the layers without BN and the net stays at chance; BN \
         re-normalises every layer's pre-activations whatever their scale, so with BN the init scale \
         hardly matters.",
        variance_fates.join("; ")
    );
    let md = body(
        "3-layer net, every weight drawn with std `sig` instead of He init; final validation accuracy.",
        &[
            "",
            "sig",
            "report: val. acc. %",
            "ours: val. acc. % (mean ± std, min–max)",
            "runs",
        ],
        &rows,
        &notes,
        &closing,
    );
    Ok(SectionOutput {
        markdown: md,
        figures,
    })
}

fn bn_after(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut figures = Vec::new();
    for (name, run, report, fig) in [
        ("3-layer", Run::three_layer(scale), "53.71", 7),
        ("9-layer", Run::nine_layer(scale), "52.27", 8),
    ] {
        for (placement, bn) in [
            ("before ReLU", BnPlacement::Before),
            ("after ReLU", BnPlacement::After),
        ] {
            eprintln!("{name}, BN {placement}:");
            let runs = run_seeds(&run.clone().bn(bn), &seeds, data)?;
            let rep = if bn == BnPlacement::After {
                report
            } else if name == "3-layer" {
                "53.89"
            } else {
                "52.20"
            };
            rows.push(vec![
                name.into(),
                placement.into(),
                rep.into(),
                Summary::test_acc(&runs).to_string(),
            ]);
            notes.push(compare(
                &format!("{name}, BN {placement}"),
                &Summary::test_acc(&runs),
                rep,
            ));
            if bn == BnPlacement::After {
                figures.push(curves(
                    &format!(
                        "bn_after_{}",
                        if name == "3-layer" { "three" } else { "nine" }
                    ),
                    format!(
                        "{name}, BN after ReLU, seed 0: test {} % (report figure {fig})",
                        pct(&runs[0])
                    ),
                    &runs[0],
                ));
            }
        }
    }
    let md = body(
        "",
        &[
            "net",
            "BN",
            "report: test acc. %",
            "ours: test acc. % (mean ± std, min–max)",
        ],
        &rows,
        &notes,
        "",
    );
    Ok(SectionOutput {
        markdown: md,
        figures,
    })
}

fn bn_stats(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let methods = [
        ("EMA (α = 0.9)", BnStats::default(), "52.20"),
        (
            "PreciseBN, every 10 batches during training (the report's)",
            BnStats::PRECISE_REPORT,
            "51.77",
        ),
        (
            "PreciseBN, 200 batches after training (fvcore)",
            BnStats::PRECISE,
            "–",
        ),
        (
            "Adaptive BN (transductive)",
            BnStats::Adaptive { augment: 0.0 },
            "52.19",
        ),
    ];
    let mut tally = Tally::default();
    for (label, stats, report) in methods {
        eprintln!("9-layer, {label}:");
        let runs = run_seeds(&Run::nine_layer(scale).bn_stats(stats), &seeds, data)?;
        let bar = label
            .split(" (")
            .next()
            .unwrap_or(label)
            .split(',')
            .next()
            .unwrap_or(label)
            .to_string()
            + if matches!(
                stats,
                BnStats::Precise {
                    during_training: true,
                    ..
                }
            ) {
                " (report)"
            } else if matches!(stats, BnStats::Precise { .. }) {
                " (fvcore)"
            } else {
                ""
            };
        tally.add(label, label, bar, report, &runs);
    }
    Ok(tally.into_section(
        [
            "bn_stats",
            "9-layer net with BN: test accuracy with each kind of BN statistics (mean ± std over seeds)",
            "BN statistics at test time, 9-layer net",
        ],
        "9-layer net with BN before ReLU. The weights are trained alike in every case (BN uses batch \
         statistics in training); only the statistics used for evaluation differ.",
        &[
            "BN statistics",
            "report: test acc. %",
            "ours: test acc. % (mean ± std, min–max)",
        ],
        "At the end of a cyclic schedule the learning rate is near zero, so the weights barely move in \
           the last epochs and the EMA settles on the population statistics that PreciseBN estimates; \
           large differences between the methods are not to be expected. Adaptive BN is transductive: \
           it uses the statistics of the test set itself, so an image's prediction depends on the \
           other test images.",
    ))
}

fn tta(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let fractions = [
        (0.0, "52.19"),
        (0.1, "49.56"),
        (0.5, "38.52"),
        (1.0, "28.97"),
    ];
    let mut tally = Tally::default();
    for (f, report) in fractions {
        eprintln!("9-layer, Adaptive BN, {:.0} % augmented:", 100.0 * f);
        let runs = run_seeds(
            &Run::nine_layer(scale).bn_stats(BnStats::Adaptive { augment: f }),
            &seeds,
            data,
        )?;
        let label = format!("{:.0} %", 100.0 * f);
        tally.add(
            &label,
            &format!("{label} augmented"),
            label.clone(),
            report,
            &runs,
        );
    }
    Ok(tally.into_section(
        [
            "tta",
            "Adaptive BN with a fraction of the test images flipped and/or translated by up to 3 pixels",
            "Adaptive BN with test-time augmentation, 9-layer net",
        ],
        "9-layer net; before the statistics are recomputed on the test set, the given fraction of test \
         images is transformed (random horizontal flip with probability 0.5 and a random translation \
         of up to 3 pixels each way, zero fill) and the transformed images are then classified.",
        &[
            "test images augmented",
            "report: test acc. %",
            "ours: test acc. % (mean ± std, min–max)",
        ],
        "A fully connected net is not translation invariant, so shifted images are harder for it. How \
           far the accuracy falls depends on the size of the shifts and the fill, which the report does \
           not state (here up to 3 pixels, zero fill).",
    ))
}

fn adam(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let n_s = (5 * scale.train_images() / 100).max(1);
    let run = Run::new(&SEVEN_LAYER_ADAM, scale)
        .optimizer(Optimizer::ADAM)
        .schedule(LrSchedule::Cyclic {
            eta_min: 1e-5,
            eta_max: 1e-3,
            n_s,
            cycles: 8,
            decay: 0.9,
        });
    eprintln!("7-layer, Adam:");
    let runs = run_seeds(&run, &seeds, data)?;
    let secs = Summary::seconds(&runs).mean;
    let figures = vec![curves(
        "adam",
        format!(
            "7-layer [60, 50, 40, 30, 20, 10] with Adam, seed 0: test {} % (report figure 10)",
            pct(&runs[0])
        ),
        &runs[0],
    )];
    let md = body(
        &format!(
        "Hidden [60, 50, 40, 30, 20, 10] with BN, Adam (β₁ 0.9, β₂ 0.999, ε 1e-8), cyclic learning rate \
         1e-5..1e-3 with n_s = {n_s}, 8 cycles, each cycle's peak 0.9 times the previous one (the report's \
         \"slight decay\" is not specified further), lambda 0.005."
        ),
        &[
            "",
            "report: test acc. %",
            "ours: test acc. % (mean ± std, min–max)",
            "seconds per run",
        ],
        &[vec![
            "Adam".into(),
            "52.76".into(),
            Summary::test_acc(&runs).to_string(),
            format!("{secs:.0}"),
        ]],
        &[compare("Adam, 7-layer", &Summary::test_acc(&runs), "52.76")],
        "",
    );
    Ok(SectionOutput {
        markdown: md,
        figures,
    })
}

fn wide(data: &Cifar10<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut figures = Vec::new();
    for (hidden, report, fig) in [(WIDE[0], "57.15", 11), (WIDE[1], "58.20", 12)] {
        eprintln!("7-layer {hidden:?}:");
        let started = Instant::now();
        let runs = run_seeds(&Run::new(&hidden, scale), &seeds, data)?;
        let secs = started.elapsed().as_secs_f64() / runs.len() as f64;
        rows.push(vec![
            format!("{hidden:?}"),
            report.into(),
            Summary::test_acc(&runs).to_string(),
            format!("{secs:.0}"),
        ]);
        notes.push(compare(
            &format!("{hidden:?}"),
            &Summary::test_acc(&runs),
            report,
        ));
        figures.push(curves(&format!("wide_{}", hidden[0]), format!("7-layer {hidden:?}, SGD with cyclic learning rate, seed 0: test {} % (report figure {fig})", pct(&runs[0])), &runs[0]));
    }
    let md = body(
        "7-layer nets with BN, plain SGD and the default cyclic schedule (2 cycles).",
        &[
            "hidden",
            "report: test acc. %",
            "ours: test acc. % (mean ± std, min–max)",
            "seconds per run here",
        ],
        &rows,
        &notes,
        "The report's NumPy runs took more than 30 minutes each; the last column is the wall time of \
         one run here, evaluation included.",
    );
    Ok(SectionOutput {
        markdown: md,
        figures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_says_agreement_within_the_seed_spread_and_differences_beyond_it() {
        let close = Summary::of(&[53.0, 53.6, 54.2]);
        assert!(compare("x", &close, "53.89").contains("within the seed spread"));
        let far = Summary::of(&[50.0, 50.2]);
        let text = compare("x", &far, "53.89");
        assert!(text.contains("3.79 points lower"), "{text}");
        assert!(compare("x", &close, "–").contains("no number"));
    }

    #[test]
    fn section_ids_are_unique() {
        let mut ids: Vec<_> = SECTIONS.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), SECTIONS.len());
    }
}
