//! Figures as plotly [`Plot`]s, shared by the notebooks and `klayer reproduce`: learning curves
//! (the report's cost/loss/accuracy figures), gradient-check box plots, the learning rate,
//! accuracy against a hyper-parameter, and bar charts with error bars; [`pictures`]: sample
//! images, first-layer weights, the confusion matrix and the most confident mistakes.
//!
//! In a notebook, show a figure with `plot.evcxr_display()`; [`to_standalone_html`] writes one
//! that works offline.

pub mod pictures;

use plotly::common::{DashType, ErrorData, ErrorType, Line, Marker, Mode, Title};
use plotly::layout::{
    Axis, AxisType, GridPattern, Layout, LayoutGrid, Slider, SliderCurrentValue, SliderMethod,
    SliderStep,
};
use plotly::{Bar, BoxPlot, Plot, Scatter};
use serde_json::json;

use crate::gradcheck::GradCheck;
use crate::train::{History, Metrics};

/// Line colours used in every figure: training, validation, and a palette for series.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

type MetricOf = fn(&Metrics) -> f64;

const PANELS: [(&str, MetricOf); 3] = [
    ("cost", |m| m.cost),
    ("loss", |m| m.loss),
    ("accuracy (%)", |m| 100.0 * m.acc),
];

fn axis(title: &str) -> Axis {
    Axis::new().title(Title::with_text(title))
}

/// The six traces (cost, loss, accuracy × train, validation) of one history, on the three
/// panels of a 1 × 3 grid.
// plotly's trace builders hand out boxes, which `add_trace` takes as they are.
#[allow(clippy::vec_box)]
fn curve_traces(h: &History, suffix: &str, visible: bool) -> Vec<Box<Scatter<usize, f64>>> {
    let steps: Vec<usize> = h.evals.iter().map(|e| e.step).collect();
    let mut traces = Vec::new();
    for (p, (name, get)) in PANELS.iter().enumerate() {
        for (set, colour, dash) in [
            ("train", PALETTE[0], DashType::Solid),
            ("validation", PALETTE[1], DashType::Dash),
        ] {
            let y: Vec<f64> = h
                .evals
                .iter()
                .map(|e| get(if set == "train" { &e.train } else { &e.val }))
                .collect();
            let axis_id = if p == 0 {
                String::new()
            } else {
                (p + 1).to_string()
            };
            traces.push(
                Scatter::new(steps.clone(), y)
                    .name(format!("{set}{suffix}"))
                    .legend_group(set)
                    .show_legend(p == 0)
                    .mode(Mode::Lines)
                    .line(Line::new().color(colour).dash(dash))
                    .x_axis(format!("x{axis_id}"))
                    .y_axis(format!("y{axis_id}"))
                    .visible(if visible {
                        plotly::common::Visible::True
                    } else {
                        plotly::common::Visible::False
                    })
                    .hover_template(format!(
                        "{name} %{{y:.4f}} at step %{{x}}<extra>{set}</extra>"
                    )),
            );
        }
    }
    traces
}

fn grid_layout(title: &str) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .grid(
            LayoutGrid::new()
                .rows(1)
                .columns(3)
                .pattern(GridPattern::Independent),
        )
        .x_axis(axis("update step"))
        .x_axis2(axis("update step"))
        .x_axis3(axis("update step"))
        .y_axis(axis(PANELS[0].0))
        .y_axis2(axis(PANELS[1].0))
        .y_axis3(axis(PANELS[2].0))
        .height(380)
}

/// A figure title that ends with the run's test accuracy, as in the report's captions (or
/// with how the run ended, if it has no test accuracy).
///
/// ```
/// use klayer::{plot, train::History};
/// let h = History::default(); // a run that has not been trained
/// assert_eq!(plot::titled("3-layer", &h), "3-layer: test -, val -, 0 steps in 0.0 s");
/// ```
pub fn titled(what: &str, h: &History) -> String {
    match h.test_acc() {
        Some(a) => format!("{what}: test accuracy {:.2} %", 100.0 * a),
        None => format!("{what}: {}", h.summary()),
    }
}

/// Cost, loss and accuracy of training and validation against the update step, side by side
/// (the report's figures 3 to 8 and 10 to 12).
///
/// # Example
/// ```
/// use klayer::{plot, train::History};
/// let figure = plot::learning_curves(&History::default(), "empty run");
/// assert!(figure.to_json().contains("empty run"));
/// ```
pub fn learning_curves(h: &History, title: &str) -> Plot {
    let mut plot = Plot::new();
    for t in curve_traces(h, "", true) {
        plot.add_trace(t);
    }
    plot.set_layout(grid_layout(title));
    plot
}

/// The learning curves of several runs in one figure, with a slider that shows one run at a
/// time (e.g. one step per lambda).
pub fn learning_curves_slider(runs: &[(String, History)], title: &str) -> Plot {
    let mut plot = Plot::new();
    for (i, (label, h)) in runs.iter().enumerate() {
        for t in curve_traces(h, &format!(" ({label})"), i == 0) {
            plot.add_trace(t);
        }
    }
    let per_run = 2 * PANELS.len();
    let steps = runs
        .iter()
        .enumerate()
        .map(|(i, (label, _))| {
            let visible: Vec<bool> = (0..runs.len() * per_run)
                .map(|t| t / per_run == i)
                .collect();
            SliderStep::new()
                .label(label)
                .method(SliderMethod::Restyle)
                .args(json!([{ "visible": visible }]))
        })
        .collect();
    let slider = Slider::new()
        .active(0)
        .steps(steps)
        .current_value(SliderCurrentValue::new().prefix("run: "))
        .y(-0.25);
    plot.set_layout(grid_layout(title).sliders(vec![slider]).height(460));
    plot
}

/// Box plots of the relative errors of a gradient check, one box per parameter tensor, on a
/// log axis (the report's figures 1 and 2). Zero errors are shown at 1e-17.
pub fn gradcheck_boxes(check: &GradCheck, title: &str) -> Plot {
    let mut plot = Plot::new();
    for t in &check.tensors {
        let errors: Vec<f64> = t.rel_errors.iter().map(|&e| e.max(1e-17)).collect();
        plot.add_trace(
            BoxPlot::new(errors)
                .name(&t.name)
                .box_points(plotly::box_plot::BoxPoints::Outliers),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .show_legend(false)
            .y_axis(
                axis("relative error")
                    .type_(AxisType::Log)
                    .exponent_format(plotly::common::ExponentFormat::Power),
            )
            .height(380),
    );
    plot
}

/// The learning rate of every update step.
pub fn learning_rate(h: &History, title: &str) -> Plot {
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new((0..h.lr.len()).collect(), h.lr.clone())
            .mode(Mode::Lines)
            .name("learning rate")
            .line(Line::new().color(PALETTE[2])),
    );
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(axis("update step"))
            .y_axis(axis("learning rate"))
            .height(300),
    );
    plot
}

/// Mean ± standard deviation of a set of values.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One or more series of values (e.g. validation accuracy in %) against a hyper-parameter on a
/// log axis (e.g. lambda): each series is drawn as its mean with ± one standard deviation over
/// its repeats (seeds), plus the single repeats as dots.
///
/// `series`: (name, one `Vec` of repeats per x value).
pub fn against_log_param(
    x: &[f64],
    series: &[(String, Vec<Vec<f64>>)],
    x_title: &str,
    y_title: &str,
    title: &str,
) -> Plot {
    let mut plot = Plot::new();
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        let (means, stds): (Vec<f64>, Vec<f64>) = values.iter().map(|v| mean_std(v)).unzip();
        plot.add_trace(
            Scatter::new(x.to_vec(), means)
                .name(name)
                .mode(Mode::LinesMarkers)
                .line(Line::new().color(colour))
                .error_y(ErrorData::new(ErrorType::Data).array(stds)),
        );
        let (xs, ys): (Vec<f64>, Vec<f64>) = x
            .iter()
            .zip(values)
            .flat_map(|(&xv, v)| v.iter().map(move |&y| (xv, y)))
            .unzip();
        plot.add_trace(
            Scatter::new(xs, ys)
                .name(format!("{name}, single runs"))
                .mode(Mode::Markers)
                .marker(Marker::new().color(colour).size(5).opacity(0.5)),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(
                axis(x_title)
                    .type_(AxisType::Log)
                    .exponent_format(plotly::common::ExponentFormat::Power),
            )
            .y_axis(axis(y_title))
            .height(400),
    );
    plot
}

/// Bars with ± one standard deviation: one bar per label, the mean of its repeats.
pub fn bars(labels: &[String], repeats: &[Vec<f64>], y_title: &str, title: &str) -> Plot {
    let (means, stds): (Vec<f64>, Vec<f64>) = repeats.iter().map(|v| mean_std(v)).unzip();
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(labels.to_vec(), means)
            .error_y(ErrorData::new(ErrorType::Data).array(stds))
            .marker(Marker::new().color(PALETTE[0])),
    );
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .y_axis(axis(y_title))
            .height(380),
    );
    plot
}

/// Validation accuracy (%) against the update step for several runs in one panel.
pub fn compare_val_accuracy(runs: &[(String, &History)], title: &str) -> Plot {
    let mut plot = Plot::new();
    for (i, (label, h)) in runs.iter().enumerate() {
        plot.add_trace(
            Scatter::new(
                h.evals.iter().map(|e| e.step).collect(),
                h.evals.iter().map(|e| 100.0 * e.val.acc).collect(),
            )
            .name(label)
            .mode(Mode::Lines)
            .line(Line::new().color(PALETTE[i % PALETTE.len()])),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(axis("update step"))
            .y_axis(axis("validation accuracy (%)"))
            .height(380),
    );
    plot
}

/// A complete HTML page showing `plot` with plotly.js inlined from `plotly_js` (the contents
/// of `plotly.min.js`), so it renders without a network (for headless screenshots).
pub fn to_standalone_html(plot: &Plot, plotly_js: &str, width: usize, height: usize) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><script>{plotly_js}</script></head>\
         <body style=\"margin:0\"><div id=\"fig\" style=\"width:{width}px;height:{height}px\"></div>\
         <script>var f = {}; f.layout.width = {width}; f.layout.height = {height};\
         Plotly.newPlot('fig', f.data, f.layout, {{staticPlot: true}}).then(function() {{\
         document.title = 'rendered'; }});</script></body></html>",
        plot.to_json()
    )
}
