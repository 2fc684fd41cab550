//! The numbers of the report this crate re-creates ("k-layer classification network for
//! CIFAR-10 with Batch normalization", DD2424, assignment 2), in one table that
//! `klayer reproduce` and the notebooks both use, and [`Comparison`]: our runs against them.

use super::{markdown_table, show_markdown, test_accuracies, Scale, Summary};
use crate::train::History;

/// The report's title, to cite it by.
pub const TITLE: &str = "k-layer classification network for CIFAR-10 with Batch normalization";

/// Which accuracy a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Test accuracy.
    Test,
    /// Final validation accuracy.
    Validation,
}

impl Metric {
    /// `test` or `validation`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Test => "test",
            Metric::Validation => "validation",
        }
    }
}

/// One number of the report: an accuracy in %, which accuracy, and where it is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reported {
    /// The accuracy in %.
    pub percent: f64,
    /// Test or validation.
    pub metric: Metric,
    /// Where in the report: `Fig. 3`, `Table 1`, `section 3.1`.
    pub source: &'static str,
}

const fn test(percent: f64, source: &'static str) -> Reported {
    Reported {
        percent,
        metric: Metric::Test,
        source,
    }
}

const fn val(percent: f64, source: &'static str) -> Reported {
    Reported {
        percent,
        metric: Metric::Validation,
        source,
    }
}

/// 2.1: the 3-layer net without BN.
pub const THREE_LAYER_NO_BN: Reported = test(52.80, "Fig. 3");
/// 2.1: the 3-layer net with BN before the ReLU.
pub const THREE_LAYER_BN: Reported = test(53.89, "Fig. 4");
/// 2.2: the 9-layer net without BN.
pub const NINE_LAYER_NO_BN: Reported = test(41.74, "Fig. 5");
/// 2.2: the 9-layer net with BN before the ReLU (also its EMA number in 3.1).
pub const NINE_LAYER_BN: Reported = test(52.20, "Fig. 6");
/// 2.3: the coarse lambda grid, validation accuracy per lambda.
pub const LAMBDA_COARSE: [(f64, Reported); 5] = [
    (1e-5, val(51.00, "Table 1")),
    (1e-4, val(51.44, "Table 1")),
    (1e-3, val(52.14, "Table 1")),
    (1e-2, val(51.38, "Table 1")),
    (1e-1, val(24.30, "Table 1")),
];
/// 2.3: the fine lambda grid.
pub const LAMBDA_FINE: [(f64, Reported); 5] = [
    (5e-4, val(51.34, "Table 2")),
    (1e-3, val(53.18, "Table 2")),
    (5e-3, val(53.62, "Table 2")),
    (1e-2, val(53.44, "Table 2")),
    (5e-2, val(52.38, "Table 2")),
];
/// 2.3: the lambda the report kept.
pub const LAMBDA_KEPT: f64 = 5e-3;
/// 2.4: the init standard deviations `sig`.
pub const INIT_SIGS: [f64; 3] = [1e-1, 1e-3, 1e-4];
/// 2.4: validation accuracy per sig without BN.
pub const INIT_NO_BN: [Reported; 3] = [
    val(9.98, "Table 3"),
    val(10.05, "Table 3"),
    val(10.14, "Table 3"),
];
/// 2.4: validation accuracy per sig with BN.
pub const INIT_BN: [Reported; 3] = [
    val(53.83, "Table 3"),
    val(53.48, "Table 3"),
    val(54.14, "Table 3"),
];
/// 3.1: the 3-layer net with BN after the ReLU.
pub const BN_AFTER_THREE: Reported = test(53.71, "Fig. 7");
/// 3.1: the 9-layer net with BN after the ReLU.
pub const BN_AFTER_NINE: Reported = test(52.27, "Fig. 8");
/// 3.1: the 9-layer net evaluated with the report's PreciseBN.
pub const PRECISE_BN: Reported = test(51.77, "section 3.1");
/// 3.1: the 9-layer net evaluated with Adaptive BN (transductive).
pub const ADAPTIVE_BN: Reported = test(52.19, "section 3.1");
/// 3.1: Adaptive BN with a fraction of the test images augmented.
pub const TTA: [(f64, Reported); 4] = [
    (0.0, ADAPTIVE_BN),
    (0.1, test(49.56, "section 3.1")),
    (0.5, test(38.52, "section 3.1")),
    (1.0, test(28.97, "section 3.1")),
];
/// 3.2: the 7-layer net trained with Adam.
pub const ADAM: Reported = test(52.76, "Fig. 10");
/// 3.2: the two wide 7-layer nets (see [`super::WIDE`]).
pub const WIDE: [Reported; 2] = [test(57.15, "Fig. 11"), test(58.20, "Fig. 12")];

/// The report's number at `x` in a table of (setting, number) pairs, e.g. a lambda in
/// [`LAMBDA_COARSE`].
pub fn at(table: &[(f64, Reported)], x: f64) -> Option<Reported> {
    table.iter().find(|(k, _)| *k == x).map(|(_, r)| *r)
}

/// The report's validation accuracy at init std `sig`, without or with BN (section 2.4).
///
/// ```
/// use klayer::experiments::report;
/// assert_eq!(report::init(true, 1e-3).unwrap().percent, 53.48);
/// assert_eq!(report::init(false, 0.5), None);
/// ```
pub fn init(with_bn: bool, sig: f64) -> Option<Reported> {
    let numbers = if with_bn { INIT_BN } else { INIT_NO_BN };
    INIT_SIGS.iter().position(|&s| s == sig).map(|i| numbers[i])
}

/// Results to compare with the report: runs (their test or validation accuracies are used, as
/// the report's number says) or accuracies in % computed otherwise.
pub trait Outcomes {
    /// The accuracies in % for `metric`.
    fn percents(&self, metric: Metric) -> Vec<f64>;
    /// Mean wall time per run in seconds, if these are runs.
    fn seconds(&self) -> Option<f64>;
}

impl Outcomes for [History] {
    fn percents(&self, metric: Metric) -> Vec<f64> {
        match metric {
            Metric::Test => test_accuracies(self),
            Metric::Validation => self
                .iter()
                .filter_map(|h| h.val_acc())
                .map(|a| 100.0 * a)
                .collect(),
        }
    }
    fn seconds(&self) -> Option<f64> {
        (!self.is_empty()).then(|| Summary::seconds(self).mean)
    }
}

impl Outcomes for Vec<History> {
    fn percents(&self, metric: Metric) -> Vec<f64> {
        self.as_slice().percents(metric)
    }
    fn seconds(&self) -> Option<f64> {
        self.as_slice().seconds()
    }
}

impl Outcomes for [f64] {
    fn percents(&self, _: Metric) -> Vec<f64> {
        self.to_vec()
    }
    fn seconds(&self) -> Option<f64> {
        None
    }
}

impl Outcomes for Vec<f64> {
    fn percents(&self, _: Metric) -> Vec<f64> {
        self.clone()
    }
    fn seconds(&self) -> Option<f64> {
        None
    }
}

/// One sentence comparing our mean with the report's number: agreement within the seed
/// spread (two standard deviations, at least one point), or the difference.
///
/// ```
/// use klayer::experiments::{report, Summary};
/// let ours = Summary::of(&[53.0, 53.6, 54.2]);
/// let line = report::sentence("3-layer with BN", &ours, Some(report::THREE_LAYER_BN));
/// assert!(line.contains("within the seed spread"), "{line}");
/// ```
pub fn sentence(what: &str, ours: &Summary, report: Option<Reported>) -> String {
    let Some(report) = report else {
        return format!("- {what}: {ours}; the report has no number.\n");
    };
    let r = report.percent;
    if ours.n == 0 {
        return format!("- {what}: no run finished (the report: {r:.2}).\n");
    }
    let diff = ours.mean - r;
    let band = (2.0 * ours.std).max(1.0);
    if diff.abs() <= band {
        format!(
            "- {what}: {:.2} here against {r:.2} in the report, a difference of {diff:+.2} points, within the seed spread (±{band:.2}).\n",
            ours.mean
        )
    } else {
        format!(
            "- {what}: {:.2} here against {r:.2} in the report: {:.2} points {}, beyond the seed spread (±{band:.2}).\n",
            ours.mean,
            diff.abs(),
            if diff > 0.0 { "higher" } else { "lower" }
        )
    }
}

struct Row {
    label: String,
    metric: Metric,
    ours: Vec<f64>,
    report: Option<Reported>,
    seconds: Option<f64>,
}

/// Our results against the report's, as a table with one sentence per row (see
/// [`sentence`]); in quick mode a note above it says that the numbers are not the full run's.
///
/// # Example
/// ```
/// use klayer::experiments::{report, Comparison, Scale};
/// let table = Comparison::new(&Scale::full())
///     .row("3-layer, BN", &vec![53.1, 53.9], report::THREE_LAYER_BN)
///     .row("3-layer, PreciseBN", &vec![53.0], None)
///     .markdown();
/// assert!(table.contains("| 3-layer, BN | 53.89 (Fig. 4) | 53.50 ± 0.57 (53.10–53.90, n = 2) | -0.39 |"), "{table}");
/// assert!(table.contains("the report has no number"), "{table}");
/// ```
pub struct Comparison {
    quick_note: Option<String>,
    rows: Vec<Row>,
}

impl Comparison {
    /// An empty comparison for results at `scale`.
    pub fn new(scale: &Scale) -> Self {
        Comparison {
            quick_note: scale.quick_note(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: `ours` (runs or accuracies in %) against the report's number (`None` if the
    /// report has none; then test accuracies are shown).
    pub fn row(
        self,
        label: impl Into<String>,
        ours: &(impl Outcomes + ?Sized),
        report: impl Into<Option<Reported>>,
    ) -> Self {
        let report = report.into();
        let metric = report.map_or(Metric::Test, |r| r.metric);
        self.row_of(label, ours, metric, report)
    }

    /// Adds a row comparing `metric` (where the report's number may be missing: `None`).
    pub fn row_of(
        mut self,
        label: impl Into<String>,
        ours: &(impl Outcomes + ?Sized),
        metric: Metric,
        report: Option<Reported>,
    ) -> Self {
        self.rows.push(Row {
            label: label.into(),
            metric,
            ours: ours.percents(metric),
            report,
            seconds: ours.seconds(),
        });
        self
    }

    /// The table and the sentences, as markdown (without the quick-mode note).
    pub fn markdown(&self) -> String {
        let metrics: Vec<Metric> = self.rows.iter().map(|r| r.metric).collect();
        let what = if metrics.iter().all(|m| *m == Metric::Validation) {
            "val. acc. %"
        } else if metrics.contains(&Metric::Validation) {
            "acc. %"
        } else {
            "test acc. %"
        };
        let with_seconds = self.rows.iter().any(|r| r.seconds.is_some());
        let report_col = format!("report: {what}");
        let ours_col = format!("ours: {what} (mean ± std, min–max)");
        let mut header = vec!["", report_col.as_str(), ours_col.as_str(), "ours − report"];
        if with_seconds {
            header.push("s per run");
        }
        let mut rows = Vec::new();
        let mut notes = String::new();
        for r in &self.rows {
            let ours = Summary::of(&r.ours);
            let label = if what == "acc. %" {
                format!("{} ({})", r.label, r.metric.name())
            } else {
                r.label.clone()
            };
            let mut row = vec![
                label.clone(),
                r.report
                    .map_or("–".into(), |x| format!("{:.2} ({})", x.percent, x.source)),
                ours.to_string(),
                match r.report {
                    Some(x) if ours.n > 0 => format!("{:+.2}", ours.mean - x.percent),
                    _ => "–".into(),
                },
            ];
            if with_seconds {
                row.push(r.seconds.map_or("–".into(), |s| format!("{s:.0}")));
            }
            rows.push(row);
            notes += &sentence(&label, &ours, r.report);
        }
        format!("{}\n{notes}", markdown_table(&header, &rows))
    }

    /// Shows the comparison below the notebook cell (with the quick-mode note first).
    pub fn show(&self) {
        let note = self
            .quick_note
            .as_ref()
            .map_or(String::new(), |n| format!("*{n}*\n\n"));
        show_markdown(&format!("{note}{}", self.markdown()));
    }
}
