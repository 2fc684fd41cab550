//! Section 2.3: the lambda search ([`LambdaSearch`], shared with notebook 04).

use super::*;

pub(super) fn lambda_search(data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
    let search = LambdaSearch::new(scale);
    let mut grid = LambdaGrid::default();
    let mut records = Vec::new();
    for &l in search.coarse.iter().chain(&search.fine) {
        if !grid.has(l) {
            eprintln!("lambda {l:e}:");
            let run = search.base.clone().lambda(l);
            let runs = run_seeds(&run, &search.seeds, data)?;
            records.extend(sweep::records(&run, &search.seeds, &runs, data)?);
            grid.add(l, runs);
        }
    }
    let summary = sweep::summarize(&records);
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
    md += &lambda_comparison(&summary, &search.coarse, &report::LAMBDA_COARSE, scale).markdown();
    md += "\nFine grid:\n\n";
    md += &lambda_comparison(&summary, &search.fine, &report::LAMBDA_FINE, scale).markdown();
    md +=
        "\nOutcome: the best lambda by validation accuracy, and the test accuracy of its runs:\n\n";
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
