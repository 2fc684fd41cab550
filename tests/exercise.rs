//! The exercise checkers: correct solutions pass; each common mistake, fed on purpose, fails with
//! its hint; functions that panic, return a wrong shape or NaN get a message and no panic
//! escapes.

mod solutions;

use std::time::Instant;

use klayer::exercise::*;
use ndarray::{Array1, Array2, Axis};
use solutions as s;

/// The report inside a failed check, with the test failing if the check passed.
fn failed(r: Checked) -> Report {
    match r {
        Ok(report) => panic!("the check passed but should not have:\n{report}"),
        Err(e) => e.report().clone(),
    }
}

/// Asserts that the check failed and that `hint` is among its hints, and that the text names it.
fn expect_hint(r: Checked, hint: Hint) -> Report {
    let report = failed(r);
    assert!(
        report.hints().contains(&hint),
        "expected hint {hint:?}, got {:?}:\n{report}",
        report.hints()
    );
    assert!(report.to_string().contains(hint.text()));
    assert_eq!(report.points(), 0);
    report
}

// ---------------------------------------------------------------------------------------------
// Correct solutions pass, with their default points

#[test]
fn correct_solutions_pass_every_checker_with_default_points() {
    let mut total = 0;
    for (name, r) in [
        ("linear forward", check_linear_forward(s::linear_forward)),
        ("linear backward", check_linear_backward(s::linear_backward)),
        ("relu backward", check_relu_backward(s::relu_backward)),
        ("cost", check_cost(s::cost)),
        ("bn forward", check_bn_forward(s::bn_forward)),
        ("bn backward", check_bn_backward(s::bn_backward)),
        ("cyclic lr", check_cyclic_lr(s::cyclic_lr)),
        ("ema", check_ema(s::ema)),
        (
            "network",
            check_network(
                &Student::new()
                    .linear(s::linear_forward, s::linear_backward)
                    .batch_norm(s::bn_forward, s::bn_backward),
            ),
        ),
    ] {
        let report = r.unwrap_or_else(|e| panic!("{name} failed:\n{e}"));
        assert!(report.passed() && report.hints().is_empty(), "{name}");
        total += report.points();
    }
    assert_eq!(total, 1 + 3 + 1 + 3 + 3 + 4 + 2 + 2 + 4);
}

#[test]
fn points_can_be_set_per_check() {
    assert_eq!(check_ema(s::ema).points(5).unwrap().points(), 5);
    let err = check_ema(
        |m: &Array1<f64>, v: &Array1<f64>, _: &Array1<f64>, _: &Array1<f64>, _: f64| {
            (m.clone(), v.clone())
        },
    )
    .points(5)
    .unwrap_err();
    assert_eq!((err.report().points(), err.report().max_points), (0, 5));
}

#[test]
fn every_checker_answers_within_a_second() {
    let student = Student::new()
        .linear(s::linear_forward, s::linear_backward)
        .batch_norm(s::bn_forward, s::bn_backward);
    type Named = (&'static str, Box<dyn Fn() -> Checked>);
    let checks: Vec<Named> = vec![
        (
            "linear forward",
            Box::new(|| check_linear_forward(s::linear_forward)),
        ),
        (
            "linear backward",
            Box::new(|| check_linear_backward(s::linear_backward)),
        ),
        (
            "relu backward",
            Box::new(|| check_relu_backward(s::relu_backward)),
        ),
        ("cost", Box::new(|| check_cost(s::cost))),
        ("bn forward", Box::new(|| check_bn_forward(s::bn_forward))),
        (
            "bn backward",
            Box::new(|| check_bn_backward(s::bn_backward)),
        ),
        ("cyclic lr", Box::new(|| check_cyclic_lr(s::cyclic_lr))),
        ("ema", Box::new(|| check_ema(s::ema))),
        ("network", Box::new(move || check_network(&student))),
    ];
    for (name, check) in checks {
        let t = Instant::now();
        let report = check().unwrap();
        let wall = t.elapsed().as_secs_f64();
        eprintln!("{name}: {:.2} ms", wall * 1e3);
        assert!(report.seconds <= wall);
        assert!(wall < 1.0, "{name} took {wall:.2} s");
    }
}

// ---------------------------------------------------------------------------------------------
// Each hint, from a deliberately wrong implementation

#[test]
fn unbiased_variance_in_bn_forward_gets_its_hint_on_y_and_var() {
    let report = expect_hint(
        check_bn_forward(
            |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>, eps: f64| {
                let n = x.nrows() as f64;
                let mean = x.sum_axis(Axis(0)) / n;
                let var = (x - &mean).mapv(|v| v * v).sum_axis(Axis(0)) / (n - 1.0);
                let xhat = (x - &mean) / &var.mapv(|v| (v + eps).sqrt());
                (xhat * g + b, mean, var)
            },
        ),
        Hint::UnbiasedVariance,
    );
    let hinted: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| r.hint == Some(Hint::UnbiasedVariance))
        .map(|r| r.output.as_str())
        .collect();
    assert_eq!(hinted, ["y", "var"]);
    // The mean was right.
    assert!(report.rows.iter().any(|r| r.output == "mean" && r.passed));
}

#[test]
fn eps_outside_the_square_root_gets_its_hint_in_forward_and_backward() {
    expect_hint(
        check_bn_forward(
            |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>, eps: f64| {
                let (mean, var) = s::batch_stats(x);
                let xhat = (x - &mean) / &var.mapv(|v| v.sqrt() + eps);
                (xhat * g + b, mean, var)
            },
        ),
        Hint::EpsOutsideSqrt,
    );
    expect_hint(
        check_bn_backward(
            |dy: &Array2<f64>, x: &Array2<f64>, g: &Array1<f64>, eps: f64| {
                let n = x.nrows() as f64;
                let (mean, var) = s::batch_stats(x);
                let inv_std = var.mapv(|v| 1.0 / (v.sqrt() + eps));
                let xhat = (x - &mean) * &inv_std;
                let dbeta = dy.sum_axis(Axis(0));
                let dgamma = (dy * &xhat).sum_axis(Axis(0));
                let dx = (dy * n - &dbeta - &xhat * &dgamma) * &(g * &inv_std / n);
                (dx, dgamma, dbeta)
            },
        ),
        Hint::EpsOutsideSqrt,
    );
}

#[test]
fn a_sum_instead_of_a_mean_gets_the_missing_one_over_n_hint() {
    // The batch mean as a sum.
    let report = expect_hint(
        check_bn_forward(
            |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>, eps: f64| {
                let (y, mean, var) = s::bn_forward(x, g, b, eps);
                (y, mean * x.nrows() as f64, var)
            },
        ),
        Hint::MissingOneOverN,
    );
    assert_eq!(report.rows.iter().filter(|r| !r.passed).count(), 1);
    // The gradient of the mean loss without its 1/n.
    expect_hint(
        check_cost(
            |sc: &Array2<f64>, y: &[usize], ws: &[Array2<f64>], l: f64| {
                let (j, g, dws) = s::cost(sc, y, ws, l);
                (j, g * sc.nrows() as f64, dws)
            },
        ),
        Hint::MissingOneOverN,
    );
}

#[test]
fn dividing_db_by_n_again_gets_the_extra_one_over_n_hint() {
    expect_hint(
        check_linear_backward(|x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>| {
            let (dx, dw, db) = s::linear_backward(x, w, dy);
            (dx, dw, db / x.nrows() as f64)
        }),
        Hint::ExtraOneOverN,
    );
}

#[test]
fn a_sign_error_gets_its_hint() {
    let report = expect_hint(
        check_bn_backward(
            |dy: &Array2<f64>, x: &Array2<f64>, g: &Array1<f64>, eps: f64| {
                let (dx, dg, db) = s::bn_backward(dy, x, g, eps);
                (dx, dg, -db)
            },
        ),
        Hint::SignError,
    );
    assert!(report
        .rows
        .iter()
        .all(|r| r.passed != r.output.starts_with("dbeta")));
}

#[test]
fn gamma_left_out_of_dx_gets_its_hint() {
    let report = expect_hint(
        check_bn_backward(
            |dy: &Array2<f64>, x: &Array2<f64>, g: &Array1<f64>, eps: f64| {
                let (dx, dg, db) = s::bn_backward(dy, x, g, eps);
                (dx / g, dg, db)
            },
        ),
        Hint::GammaMissingInDx,
    );
    let dx_rows: Vec<&Row> = report.rows.iter().filter(|r| r.output == "dx").collect();
    assert_eq!(dx_rows.len(), 2);
    assert!(dx_rows
        .iter()
        .all(|r| !r.passed && r.hint == Some(Hint::GammaMissingInDx)));
}

#[test]
fn the_l2_gradient_without_its_factor_gets_the_missing_factor_hint() {
    for factor in [1.0, 2.0] {
        // λW (the 2 missing) and 2W (λ missing).
        expect_hint(
            check_cost(
                move |sc: &Array2<f64>, y: &[usize], ws: &[Array2<f64>], l: f64| {
                    let (j, g, _) = s::cost(sc, y, ws, l);
                    let lam = if factor == 1.0 { l } else { 1.0 };
                    (j, g, ws.iter().map(|w| w * (factor * lam)).collect())
                },
            ),
            Hint::L2FactorMissing,
        );
    }
}

#[test]
fn the_l2_gradient_with_its_factor_twice_gets_its_hint() {
    expect_hint(
        check_cost(
            |sc: &Array2<f64>, y: &[usize], ws: &[Array2<f64>], l: f64| {
                let (j, g, _) = s::cost(sc, y, ws, l);
                (j, g, ws.iter().map(|w| w * (4.0 * l)).collect())
            },
        ),
        Hint::L2FactorTwice,
    );
}

#[test]
fn a_cost_without_the_l2_term_gets_its_hint() {
    expect_hint(
        check_cost(
            |sc: &Array2<f64>, y: &[usize], ws: &[Array2<f64>], l: f64| {
                let (_, g, dws) = s::cost(sc, y, ws, l);
                let (loss, ..) = s::cost(sc, y, ws, 0.0);
                (loss, g, dws)
            },
        ),
        Hint::L2TermMissing,
    );
}

#[test]
fn a_transposed_dw_gets_its_hint_and_the_shapes() {
    let report = expect_hint(
        check_linear_backward(|x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>| {
            (dy.dot(w), x.t().dot(dy), dy.sum_axis(Axis(0)))
        }),
        Hint::Transposed,
    );
    let row = report.rows.iter().find(|r| r.output == "dW").unwrap();
    assert_eq!(
        row.problem.as_deref(),
        Some("dW has shape [5, 4], expected [4, 5]")
    );
}

#[test]
fn an_inverted_relu_mask_gets_its_hint() {
    expect_hint(
        check_relu_backward(|x: &Array2<f64>, dy: &Array2<f64>| {
            dy * &x.mapv(|v| if v < 0.0 { 1.0 } else { 0.0 })
        }),
        Hint::ReluMaskInverted,
    );
}

#[test]
fn a_cyclic_rate_that_does_not_repeat_gets_its_hint() {
    expect_hint(
        check_cyclic_lr(|t: usize, lo: f64, hi: f64, n_s: usize| {
            let up = if t <= n_s {
                t as f64
            } else {
                2.0 * n_s as f64 - t as f64
            };
            lo + up / n_s as f64 * (hi - lo)
        }),
        Hint::CycleNotRepeated,
    );
}

#[test]
fn swapped_ema_weights_get_their_hint() {
    expect_hint(
        check_ema(
            |m: &Array1<f64>, v: &Array1<f64>, bm: &Array1<f64>, bv: &Array1<f64>, a: f64| {
                s::ema(m, v, bm, bv, 1.0 - a)
            },
        ),
        Hint::EmaWeightsSwapped,
    );
}

// ---------------------------------------------------------------------------------------------
// Functions that cannot be checked

#[test]
fn todo_gives_a_not_implemented_message_and_no_panic() {
    let report = failed(check_bn_forward(
        |_: &Array2<f64>,
         _: &Array1<f64>,
         _: &Array1<f64>,
         _: f64|
         -> (Array2<f64>, Array1<f64>, Array1<f64>) { todo!() },
    ));
    assert!(report.rows.is_empty());
    assert!(report
        .problem
        .as_deref()
        .unwrap()
        .starts_with("not implemented yet"));
    assert!(report.to_string().contains("FAILED"));
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let report = failed(check_linear_forward(
        |x: &Array2<f64>, _: &Array2<f64>, _: &Array1<f64>| {
            let v: Vec<f64> = Vec::new();
            Array2::from_elem((1, 1), v[x.nrows()])
        },
    ));
    let problem = report.problem.unwrap();
    assert!(
        problem.starts_with("your function panicked: index out of bounds"),
        "{problem}"
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let report = failed(check_linear_forward(
        |x: &Array2<f64>, w: &Array2<f64>, _: &Array1<f64>| {
            x.dot(&w.t()).sum_axis(Axis(1)).insert_axis(Axis(1))
        },
    ));
    assert_eq!(
        report.rows[0].problem.as_deref(),
        Some("scores has shape [6, 1], expected [6, 4]")
    );
}

#[test]
fn nan_is_named_with_its_index() {
    let report = failed(check_bn_forward(
        |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>, eps: f64| {
            let (mut y, mean, var) = s::bn_forward(x, g, b, eps);
            y[[2, 3]] = f64::NAN;
            (y, mean, var)
        },
    ));
    assert_eq!(
        report.rows[0].problem.as_deref(),
        Some("y holds NaN at index [2, 3]")
    );
}

#[test]
fn a_wrong_answer_shows_the_worst_entry() {
    let report = failed(check_linear_forward(
        |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| {
            let mut y = s::linear_forward(x, w, b);
            y[[4, 1]] += 1.0;
            y
        },
    ));
    let worst = report.rows[0].worst.clone().unwrap();
    assert_eq!(worst.index, [4, 1]);
    assert!((worst.got - worst.expected - 1.0).abs() < 1e-12);
    assert!(report.rows[0].hint.is_none());
    let text = report.to_string();
    assert!(text.contains("[4, 1]") && text.contains("FAIL"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Whole networks

#[test]
fn a_network_with_gamma_missing_in_bn_dx_fails_its_gradient_check() {
    let student = Student::new().batch_norm(
        s::bn_forward,
        |dy: &Array2<f64>, x: &Array2<f64>, g: &Array1<f64>, eps: f64| {
            let (dx, dg, db) = s::bn_backward(dy, x, g, eps);
            (dx / g, dg, db)
        },
    );
    let report = failed(check_network(&student));
    // Gradients above the first BN layer are right, those below it are not.
    let failing: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.output.as_str())
        .collect();
    assert!(failing.contains(&"W1 (BN)"), "{failing:?}");
    assert!(report
        .rows
        .iter()
        .any(|r| r.output == "W3 (BN)" && r.passed));
}

#[test]
fn a_network_check_without_functions_says_what_to_add() {
    let report = failed(check_network(&Student::new()));
    assert!(report
        .problem
        .unwrap()
        .contains(".batch_norm(forward, backward)"));
}

#[test]
fn a_network_check_with_an_unimplemented_layer_says_so() {
    let student = Student::new().batch_norm(
        |_: &Array2<f64>,
         _: &Array1<f64>,
         _: &Array1<f64>,
         _: f64|
         -> (Array2<f64>, Array1<f64>, Array1<f64>) { todo!() },
        s::bn_backward,
    );
    let report = failed(check_network(&student));
    assert!(report.problem.unwrap().contains("not implemented yet"));
}

// ---------------------------------------------------------------------------------------------
// Display

#[test]
fn a_report_shows_as_html_and_text_tables() {
    let report = check_relu_backward(s::relu_backward).unwrap();
    let html = report.to_html();
    assert!(
        html.starts_with("<div")
            && html.contains("<table>")
            && html.contains("centred differences")
    );
    let text = report.to_string();
    assert!(
        text.starts_with("ReLU backward: dx: passed — 1/1 points"),
        "{text}"
    );
    let err = check_relu_backward(|_: &Array2<f64>, dy: &Array2<f64>| dy.clone()).unwrap_err();
    // Debug shows the same table, so a kernel printing the error with {:?} shows it too.
    assert_eq!(format!("{err:?}"), err.to_string());
}
