//! Section 3.2: Adam on a 7-layer net, and wider 7-layer nets.

use super::*;

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

pub(super) fn adam(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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
         specified further). For comparison, the same net with plain SGD and the default schedule \
         (2 cycles up to 1e-1).",
        run.train.schedule
    );
    // The same net with plain SGD and the default schedule, for comparison (notebook 07 too).
    eprintln!("7-layer, SGD:");
    let sgd = run_seeds(&Run::new(SEVEN_LAYER_ADAM, scale), &seeds, data)?;
    let table = Comparison::new(scale)
        .row("Adam, 7-layer, 8 cycles", &runs, report::ADAM)
        .row("SGD, 7-layer, 2 cycles (the default schedule)", &sgd, None);
    Ok(SectionOutput {
        markdown: body(&settings, &table, "", ""),
        figures,
    })
}

pub(super) fn wide(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
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
