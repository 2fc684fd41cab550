//! [`Report`]: a checker's verdict, as a text or HTML table, with points.

use std::fmt;

/// What an output was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// klayer's own implementation.
    Reference,
    /// Centred differences of klayer's forward pass (or cost).
    Numerical,
}

impl Against {
    fn label(self) -> &'static str {
        match self {
            Against::Reference => "klayer",
            Against::Numerical => "centred differences",
        }
    }
}

/// A common mistake recognised from the shape or values of a wrong answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// The variance divides by n − 1; BN's batch variance divides by n.
    UnbiasedVariance,
    /// A mean was taken as a sum: the result is n times too large.
    MissingOneOverN,
    /// Divided by n once too often: the result is n times too small.
    ExtraOneOverN,
    /// The result has the opposite sign.
    SignError,
    /// BN's `dx` is missing the factor γ.
    GammaMissingInDx,
    /// The L2 term's gradient lacks its factor 2λ (or part of it).
    L2FactorMissing,
    /// The L2 term's gradient has its factor 2λ (or 2) twice.
    L2FactorTwice,
    /// The cost lacks the L2 term `λ Σ ‖W‖²`.
    L2TermMissing,
    /// ε is added after the square root instead of under it.
    EpsOutsideSqrt,
    /// A matrix comes back transposed.
    Transposed,
    /// The ReLU's gradient is passed where the input is negative instead of positive.
    ReluMaskInverted,
    /// The cyclic rate is right in the first cycle but does not repeat in the second.
    CycleNotRepeated,
    /// The EMA's weights are swapped: α must weigh the old average.
    EmaWeightsSwapped,
}

impl Hint {
    /// The advice shown to the student.
    pub fn text(self) -> &'static str {
        match self {
            Hint::UnbiasedVariance => {
                "this is the unbiased variance (divided by n − 1); batch normalization uses the biased one, divided by n"
            }
            Hint::MissingOneOverN => {
                "n times too large: a mean over the batch is missing its 1/n (a sum where a mean is needed)"
            }
            Hint::ExtraOneOverN => {
                "n times too small: 1/n is applied twice (the incoming gradient already holds the 1/n of the mean loss)"
            }
            Hint::SignError => "exactly the negative of the expected value: a sign error",
            Hint::GammaMissingInDx => {
                "dx is right for γ = 1: multiply by γ (dx = γ/√(σ²+ε) · (…))"
            }
            Hint::L2FactorMissing => {
                "the gradient of λ‖W‖² is 2λW: the factor 2λ (or a part of it) is missing"
            }
            Hint::L2FactorTwice => {
                "the gradient of λ‖W‖² is 2λW: the factor 2λ (or 2) is applied twice"
            }
            Hint::L2TermMissing => "the cost lacks the regularisation term λ Σ‖W‖²",
            Hint::EpsOutsideSqrt => {
                "ε belongs under the square root: divide by √(σ² + ε), not by √σ² + ε"
            }
            Hint::Transposed => {
                "the values are right but transposed: check the shapes (x is n×d, W is m×d, dW must be m×d like W)"
            }
            Hint::ReluMaskInverted => {
                "the gradient passes where the input is negative: ReLU lets it through where x > 0"
            }
            Hint::CycleNotRepeated => {
                "the first cycle is right but the second is not: the position in the cycle is t mod 2n_s (cycle l = ⌊t / 2n_s⌋)"
            }
            Hint::EmaWeightsSwapped => {
                "the weights are swapped: μ_av ← α μ_av + (1 − α) μ_B keeps most of the old average"
            }
        }
    }
}

/// The worst entry of a compared output.
#[derive(Debug, Clone, PartialEq)]
pub struct Worst {
    /// Its index (empty for a scalar).
    pub index: Vec<usize>,
    /// The value expected.
    pub expected: f64,
    /// The student's value.
    pub got: f64,
    /// `|got − expected| / max(|got| + |expected|, 1e-8)`.
    pub rel_error: f64,
}

/// One line of a report: one output compared with one reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The output, as the exercise names it: `y`, `dW`, `dgamma`, `eta_t`, …
    pub output: String,
    /// What it was compared with.
    pub against: Against,
    /// Whether it agreed within the tolerance.
    pub passed: bool,
    /// The largest relative error (`None` if the output could not be compared).
    pub max_rel_error: Option<f64>,
    /// The tolerance on the relative error.
    pub tolerance: f64,
    /// The worst entry, if the output could be compared.
    pub worst: Option<Worst>,
    /// Why the output could not be compared (wrong shape, NaN), if so.
    pub problem: Option<String>,
    /// The recognised mistake, if any.
    pub hint: Option<Hint>,
}

/// A checker's verdict: what was checked, each output's comparison, and the points.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was checked: `BN forward (training mode)`, …
    pub title: String,
    /// One row per output and reference.
    pub rows: Vec<Row>,
    /// Why the student's function could not be checked at all (it panicked, is not implemented
    /// yet), if so.
    pub problem: Option<String>,
    /// Points for passing.
    pub max_points: u32,
    /// Seconds the check took.
    pub seconds: f64,
}

impl Report {
    /// True if the function ran and every row passed.
    pub fn passed(&self) -> bool {
        self.problem.is_none() && !self.rows.is_empty() && self.rows.iter().all(|r| r.passed)
    }

    /// Points earned: all of [`Report::max_points`] if passed, else 0.
    pub fn points(&self) -> u32 {
        if self.passed() {
            self.max_points
        } else {
            0
        }
    }

    /// The hints of the failing rows, each once.
    pub fn hints(&self) -> Vec<Hint> {
        let mut out = Vec::new();
        for h in self.rows.iter().filter_map(|r| r.hint) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    /// `Ok(self)` if passed, else `Err(ExerciseError)` holding it.
    ///
    /// Inside an evcxr kernel (the environment variable `EVCXR_IS_RUNTIME` is set) a failed
    /// report is shown as its HTML table right away, in the cell's own output: the error that
    /// `?` then prints goes to stderr, which the kernel may deliver after the cell has finished.
    /// The error's text is then only the verdict line.
    pub fn into_result(self) -> Result<Report, ExerciseError> {
        if self.passed() {
            return Ok(self);
        }
        let shown = std::env::var_os("EVCXR_IS_RUNTIME").is_some();
        if shown {
            self.evcxr_display();
        }
        Err(ExerciseError {
            report: Box::new(self),
            shown,
        })
    }

    /// `title: passed — 3/3 points (0.00 s)` or `title: FAILED — 0 points (0.00 s)`.
    fn verdict(&self) -> String {
        if self.passed() {
            format!(
                "{}: passed — {}/{} points ({:.2} s)",
                self.title, self.max_points, self.max_points, self.seconds
            )
        } else {
            format!("{}: FAILED — 0 points ({:.2} s)", self.title, self.seconds)
        }
    }

    /// The report as an HTML table (what [`Report::evcxr_display`] shows).
    pub fn to_html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let colour = if self.passed() { "#2ca02c" } else { "#d62728" };
        let mut h = format!(
            "<div class=\"klayer-exercise\"><p style=\"font-weight:bold;color:{colour}\">{}</p>",
            esc(&self.verdict())
        );
        if let Some(p) = &self.problem {
            h += &format!("<p style=\"color:#d62728\">{}</p>", esc(p));
        }
        if !self.rows.is_empty() {
            h += "<table><thead><tr><th>output</th><th>compared with</th><th>verdict</th>\
                  <th>worst entry</th><th>expected</th><th>got</th><th>rel. error</th>\
                  <th>tolerance</th></tr></thead><tbody>";
            for r in &self.rows {
                let c = RowCells::of(r);
                h += &format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td style=\"color:{}\">{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.output),
                    r.against.label(),
                    if r.passed { "#2ca02c" } else { "#d62728" },
                    c.verdict,
                    c.index,
                    c.expected,
                    c.got,
                    c.rel,
                    c.tol
                );
                if let Some(p) = &r.problem {
                    h += &format!(
                        "<tr><td></td><td colspan=\"7\" style=\"color:#d62728\">{}</td></tr>",
                        esc(p)
                    );
                }
                if let Some(hint) = r.hint {
                    h += &format!(
                        "<tr><td></td><td colspan=\"7\"><b>hint:</b> {}</td></tr>",
                        esc(hint.text())
                    );
                }
            }
            h += "</tbody></table>";
        }
        h + "</div>"
    }

    /// Shows the report as an HTML table in an evcxr notebook (evcxr calls this on a cell's
    /// value).
    pub fn evcxr_display(&self) {
        // HTML for JupyterLab, and the text table for everything that reads text/plain
        // (nbgrader's feedback, a terminal client).
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self}\nEVCXR_END_CONTENT");
    }
}

/// The text of a row's cells.
struct RowCells {
    verdict: &'static str,
    index: String,
    expected: String,
    got: String,
    rel: String,
    tol: String,
}

impl RowCells {
    fn of(r: &Row) -> Self {
        let num = |v: f64| format!("{v:.6e}");
        let (index, expected, got) = match &r.worst {
            Some(w) => (
                if w.index.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:?}", w.index)
                },
                num(w.expected),
                num(w.got),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        RowCells {
            verdict: if r.passed { "ok" } else { "FAIL" },
            index,
            expected,
            got,
            rel: r.max_rel_error.map_or("-".into(), |e| format!("{e:.1e}")),
            tol: format!("{:.0e}", r.tolerance),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.verdict())?;
        if let Some(p) = &self.problem {
            writeln!(f, "  {p}")?;
        }
        if self.rows.is_empty() {
            return Ok(());
        }
        let header = [
            "output",
            "compared with",
            "verdict",
            "worst entry",
            "expected",
            "got",
            "rel. error",
        ];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                let c = RowCells::of(r);
                [
                    r.output.clone(),
                    r.against.label().to_string(),
                    c.verdict.to_string(),
                    c.index,
                    c.expected,
                    c.got,
                    c.rel,
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            cols.iter()
                .zip(&widths)
                .map(|(c, &w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        writeln!(f, "  {}", line(&header.map(String::from)))?;
        for (r, row) in self.rows.iter().zip(&cells) {
            writeln!(f, "  {}", line(row).trim_end())?;
            if let Some(p) = &r.problem {
                writeln!(f, "      {p}")?;
            }
            if let Some(h) = r.hint {
                writeln!(f, "      hint: {}", h.text())?;
            }
        }
        Ok(())
    }
}

/// A failed check: the [`Report`] (boxed). `Display` and `Debug` alike show its text table (or,
/// when the table was already shown in a notebook, see [`Report::into_result`], the verdict
/// line), so that however a kernel prints the error the student reads the verdict.
#[derive(Clone, PartialEq)]
pub struct ExerciseError {
    report: Box<Report>,
    shown: bool,
}

impl ExerciseError {
    /// The report.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

impl fmt::Display for ExerciseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shown {
            write!(f, "{} (the table is above)", self.report.verdict())
        } else {
            fmt::Display::fmt(&self.report, f)
        }
    }
}

impl fmt::Debug for ExerciseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ExerciseError {}

/// Sets the points a check is worth: `check_bn_forward(f).points(3)?`.
pub trait Points {
    /// The same verdict, worth `n` points.
    fn points(self, n: u32) -> Self;
}

impl Points for Result<Report, ExerciseError> {
    fn points(self, n: u32) -> Self {
        match self {
            Ok(mut r) => {
                r.max_points = n;
                Ok(r)
            }
            Err(mut e) => {
                e.report.max_points = n;
                Err(e)
            }
        }
    }
}
