//! Beyond the report: the 3- and 9-layer nets without and with BN on Fashion-MNIST.
//!
//! One definition, used by `klayer reproduce fashion` and notebook 08: [`fashion_runs`] are
//! the four runs (the notebook trains them in a visible loop), [`fashion_table`] condenses
//! their results.

use super::*;

/// The settings of the Fashion-MNIST runs, in one sentence.
pub const FASHION_SETTINGS: &str =
    "The 3-layer net [50, 50] and the 9-layer net [50, 30, 20, 20, 10, 10, 10, 10] \
     with the report's default settings (lambda 0.005, cyclic learning rate 1e-5..1e-1 with \
     n_s = 5 epochs, 2 cycles, batch 100, He init, BN before ReLU with EMA statistics), \
     without and with BN, on Fashion-MNIST: 55,000 training images (the first 55,000 of the \
     60,000), 5,000 validation images (the last 5,000), the 10,000 test images, each of 784 \
     grey pixels normalised per feature with the training mean and std.";

/// The four runs on data set `scale.source` (Fashion-MNIST for the section): the 3- and
/// 9-layer nets of sections 2.1 and 2.2, each without and with BN, labelled
/// `3-layer without BN`, … The network's input size is taken from the data when it is
/// trained ([`Run::train`]).
///
/// ```
/// use klayer::{data::DataSource, experiments::{sections::fashion_runs, Scale}};
/// let runs = fashion_runs(&Scale::quick().on(DataSource::FashionMnist));
/// let labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
/// assert_eq!(labels, ["3-layer without BN", "3-layer with BN", "9-layer without BN", "9-layer with BN"]);
/// ```
pub fn fashion_runs(scale: &Scale) -> Vec<(String, Run)> {
    let mut runs = Vec::new();
    for (layers, net) in [
        ("3-layer", Run::three_layer(scale)),
        ("9-layer", Run::nine_layer(scale)),
    ] {
        for (bn, label) in [
            (BnPlacement::None, "without BN"),
            (BnPlacement::Before, "with BN"),
        ] {
            runs.push((format!("{layers} {label}"), net.clone().bn(bn)));
        }
    }
    runs
}

/// The table of the Fashion-MNIST runs: per net, the test accuracy (%) without and with BN
/// (mean ± sample std, min–max over the seeds) and the difference of the means. `results`
/// holds the runs of [`fashion_runs`] in its order, each with its histories (one per seed).
///
/// ```
/// # use klayer::experiments::sections::fashion_table;
/// let t = fashion_table(&[]); // no runs: the header alone
/// assert!(t.starts_with("| net | without BN: test acc. % (mean ± std, min–max) | with BN |"));
/// assert_eq!(t.lines().count(), 2);
/// ```
pub fn fashion_table(results: &[(String, Vec<History>)]) -> String {
    let header = [
        "net",
        "without BN: test acc. % (mean ± std, min–max)",
        "with BN",
        "BN − no BN",
    ];
    let rows: Vec<Vec<String>> = results
        .chunks(2)
        .map(|pair| {
            let label = pair[0].0.trim_end_matches(" without BN").to_string();
            let without = Summary::test_acc(&pair[0].1);
            let with = pair.get(1).map(|p| Summary::test_acc(&p.1));
            let diff = match with {
                Some(w) if w.n > 0 && without.n > 0 => format!("{:+.2}", w.mean - without.mean),
                _ => "–".into(),
            };
            vec![
                label,
                without.to_string(),
                with.map_or("–".into(), |w| w.to_string()),
                diff,
            ]
        })
        .collect();
    markdown_table(&header, &rows)
}

pub(super) fn fashion(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let mut results = Vec::new();
    let mut singles = String::new();
    let mut figures = Vec::new();
    for (label, run) in fashion_runs(scale) {
        eprintln!("{label}:");
        let runs = run_seeds(&run, &seeds, data)?;
        singles += &format!(
            "- {label}: single runs {}.\n",
            runs.iter().map(pct).collect::<Vec<_>>().join(", ")
        );
        if label.starts_with("9-layer") {
            let id = if label.ends_with("without BN") {
                "fashion_nine_layer_no_bn"
            } else {
                "fashion_nine_layer_bn"
            };
            figures.push(curves(
                id,
                format!("Fashion-MNIST, {label}, seed 0: test {} %", pct(&runs[0])),
                &runs[0],
            ));
        }
        results.push((label, runs));
    }
    let markdown = format!(
        "{FASHION_SETTINGS} Seeds {}.\n\n{}\n{singles}",
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        fashion_table(&results)
    );
    Ok(SectionOutput { markdown, figures })
}
