//! Section 3.1: BN after the ReLU, the kinds of BN statistics, test-time augmentation.

use super::*;

pub(super) fn bn_after(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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

pub(super) fn bn_stats(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
    let seeds = scale.seed_list();
    let methods = [
        (
            "EMA (α = 0.9)",
            "EMA",
            BnStats::default(),
            Some(report::NINE_LAYER_BN),
        ),
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

pub(super) fn tta(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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
