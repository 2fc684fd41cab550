//! A failed check inside an evcxr kernel (`EVCXR_IS_RUNTIME` set, as evcxr sets it for the code
//! it runs): the table is shown as HTML in the cell's output, and the error `?` prints is the
//! verdict line only. A separate test binary, because it sets a process-wide variable.

mod solutions;

use klayer::exercise::*;
use ndarray::Array2;

#[test]
fn in_a_kernel_a_failed_check_shows_its_table_and_the_error_is_the_verdict_line() {
    std::env::set_var("EVCXR_IS_RUNTIME", "1");
    let err = check_relu_backward(|_: &Array2<f64>, dy: &Array2<f64>| dy.clone())
        .points(2)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ReLU backward: dx: FAILED — 0 points ({:.2} s) (the table is above)",
            err.report().seconds
        )
    );
    assert_eq!(err.report().max_points, 2);
    // A passing check is unaffected: its value is the report.
    assert!(check_relu_backward(solutions::relu_backward).is_ok());
}
