//! Sections 2.1 and 2.2: the 3- and 9-layer nets without and with BN.

use super::*;

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

fn with_without(data: &Split<f32>, scale: &Scale, spec: WithWithout) -> Result<SectionOutput> {
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

pub(super) fn three_layer(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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

pub(super) fn nine_layer(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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
