//! The committed notebooks show the numbers of docs/RESULTS.md: their outputs come from a full
//! run of the same experiments with the same code. Every summary `mean ± std (min–max, n = k)`
//! that a notebook's outputs show is one that a section page in docs/results/ shows, or, for a
//! notebook that trains fewer seeds than its section (and says so), the summary of the first `k`
//! single runs that the section lists. A notebook re-run with other code, run in quick mode, or
//! left stale after `klayer reproduce` regenerated its section fails here.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use klayer::experiments::Summary;

/// The files of `dir` whose names end with `ext`, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(common::repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    out.sort();
    out
}

/// One `mean ± std (min–max, n = k)` as printed by [`Summary`]'s `Display`.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    text: String,
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
    n: usize,
}

/// Every summary in `text`: an `a ± b` (see [`pairs`]) followed by ` (min–max, n = k)`.
fn summaries(text: &str) -> Vec<Shown> {
    pairs(text)
        .into_iter()
        .filter_map(|p| {
            // "53.10–53.61, n = 3"
            let body = &p.after.strip_prefix(" (")?[..p.after.find(')')? - " (".len()];
            let (range, n) = body.split_once(", n = ")?;
            let (min, max) = range.split_once('–')?;
            Some(Shown {
                text: format!("{} ({body})", p.quoted),
                mean: p.mean.value,
                std: p.std.value,
                min: min.parse().ok()?,
                max: max.parse().ok()?,
                n: n.parse().ok()?,
            })
        })
        .collect()
}

/// The lists of single runs in a section page: "- with BN: single runs 53.92, 53.53, 53.80."
fn single_runs(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter_map(|line| line.split_once("single runs ").map(|(_, l)| l))
        .map(|list| {
            list.trim_end_matches('.')
                .split(", ")
                .map_while(|v| v.parse().ok())
                .collect()
        })
        .collect()
}

/// A notebook's text: what its outputs show (streams, markdown and plain results, errors) and
/// what its markdown cells say.
struct NotebookText {
    outputs: String,
    markdown: String,
}

fn notebook_text(path: &Path) -> NotebookText {
    let nb: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| {
            panic!("{}: not a notebook: {e}", path.display());
        });
    let join = |v: &serde_json::Value| match v {
        serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let mut text = NotebookText {
        outputs: String::new(),
        markdown: String::new(),
    };
    for cell in nb["cells"].as_array().into_iter().flatten() {
        if cell["cell_type"] == "markdown" {
            text.markdown += &join(&cell["source"]);
            text.markdown.push('\n');
        }
        for o in cell["outputs"].as_array().into_iter().flatten() {
            text.outputs += &join(&o["text"]);
            text.outputs += &join(&o["data"]["text/markdown"]);
            text.outputs += &join(&o["data"]["text/plain"]);
            text.outputs.push('\n');
        }
    }
    text
}

/// A number as written, with its count of decimals.
#[derive(Debug, Clone, Copy)]
struct Written {
    value: f64,
    decimals: i32,
}

impl Written {
    /// True if `exact`, itself printed to two decimals, rounds to this number.
    fn rounds(self, exact: f64) -> bool {
        (exact - self.value).abs() <= 0.5 * 10f64.powi(-self.decimals) + 0.006
    }
}

/// Parses a number such as `47.1`, `+0.18` or `−0.3` (a Unicode minus).
fn written(s: &str) -> Option<Written> {
    let plain = s.replace('−', "-");
    let decimals = plain.split_once('.').map_or(0, |(_, d)| d.len() as i32);
    Some(Written {
        value: plain.parse().ok()?,
        decimals,
    })
}

/// An `a ± b` found in a text.
struct Pair<'t> {
    /// As written: "47.1 ± 3.0".
    quoted: &'t str,
    mean: Written,
    std: Written,
    /// The text after it.
    after: &'t str,
}

/// Every `a ± b` in `text`: "47.1 ± 3.0", "+0.2 ± 0.1 points", "53.75 ± 0.20 (…)".
fn pairs(text: &str) -> Vec<Pair<'_>> {
    let is_num = |c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-' || c == '−';
    let mut found = Vec::new();
    for (at, sep) in text.match_indices(" ± ") {
        let start = text[..at]
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_num(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let tail = &text[at + sep.len()..];
        let std =
            tail[..tail.find(|c: char| !is_num(c)).unwrap_or(tail.len())].trim_end_matches('.');
        let end = at + sep.len() + std.len();
        if let (Some(mean), Some(std)) = (written(&text[start..at]), written(std)) {
            found.push(Pair {
                quoted: &text[start..end],
                mean,
                std,
                after: &text[end..],
            });
        }
    }
    found
}

/// Where `shown` comes from in the section pages, if anywhere.
fn explained(shown: &Shown, pages: &[(PathBuf, String)]) -> bool {
    pages.iter().any(|(_, text)| {
        text.contains(&shown.text)
            || single_runs(text).iter().any(|runs| {
                runs.get(..shown.n).map(Summary::of).is_some_and(|p| {
                    // min and max are single runs themselves; mean and std are computed from
                    // rounded runs here, so they may differ in the last printed digit.
                    p.min == shown.min
                        && p.max == shown.max
                        && (p.mean - shown.mean).abs() <= 0.0051
                        && (p.std - shown.std).abs() <= 0.0051
                })
            })
    })
}

#[test]
fn every_summary_a_committed_notebook_shows_comes_from_docs_results() {
    let pages: Vec<(PathBuf, String)> = files("docs/results", ".md")
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    assert!(pages.len() >= 10, "docs/results holds the section pages");
    let mut checked = 0;
    let mut problems = std::collections::BTreeSet::new();
    for nb in files("notebooks", ".ipynb") {
        for shown in summaries(&notebook_text(&nb).outputs) {
            checked += 1;
            if !explained(&shown, &pages) {
                problems.insert(format!(
                    "{}: {} is in no page of docs/results (re-run the notebook with \
                     `scripts/run_notebooks.py --full --write`, or its section with \
                     `klayer reproduce`)",
                    nb.file_name().unwrap().to_string_lossy(),
                    shown.text
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(
        checked >= 30,
        "the notebooks' committed outputs show only {checked} summaries: were they committed \
         without their outputs?"
    );
}

#[test]
fn every_mean_and_std_the_prose_quotes_is_a_result_rounded() {
    // The (mean, std) of every result shown: in the notebooks' outputs and the section pages.
    let mut shown: Vec<(Written, Written)> = Vec::new();
    let mut add_shown = |text: &str| shown.extend(pairs(text).iter().map(|p| (p.mean, p.std)));
    let mut prose = vec![(
        "README.md".to_string(),
        fs::read_to_string(common::repo_root().join("README.md")).unwrap(),
    )];
    for page in files("docs/results", ".md") {
        add_shown(&fs::read_to_string(page).unwrap());
    }
    for doc in files("docs", ".md") {
        let name = doc.file_name().unwrap().to_string_lossy().into_owned();
        if name != "RESULTS.md" {
            prose.push((format!("docs/{name}"), fs::read_to_string(&doc).unwrap()));
        }
    }
    for nb in files("notebooks", ".ipynb") {
        let text = notebook_text(&nb);
        add_shown(&text.outputs);
        let name = nb.file_name().unwrap().to_string_lossy().into_owned();
        prose.push((name, text.markdown));
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in &prose {
        for Pair {
            quoted, mean, std, ..
        } in pairs(text)
        {
            checked += 1;
            if !shown
                .iter()
                .any(|(m, s)| mean.rounds(m.value) && std.rounds(s.value))
            {
                problems.push(format!(
                    "{file}: \"{quoted}\" is no result that a notebook or docs/results shows \
                     (rounded); was it written for an earlier run?"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 5, "only {checked} quoted results found");
}

#[test]
fn a_quoted_mean_and_std_match_a_result_only_when_they_round_to_it() {
    let quoted =
        pairs("BN changes it by 0.0 ± 0.1 points (47.1 ± 3.0 → 52.0 ± 0.3 %), −0.3 ± 0.2.");
    let texts: Vec<&str> = quoted.iter().map(|p| p.quoted).collect();
    assert_eq!(
        texts,
        ["0.0 ± 0.1", "47.1 ± 3.0", "52.0 ± 0.3", "−0.3 ± 0.2"]
    );
    let (mean, std) = (quoted[1].mean, quoted[1].std);
    assert!(
        mean.rounds(47.11) && std.rounds(2.95),
        "47.11 ± 2.95 is 47.1 ± 3.0"
    );
    assert!(!mean.rounds(47.4) && !std.rounds(3.8), "47.4 ± 3.8 is not");
    let mean = quoted[3].mean;
    assert!(mean.rounds(-0.27) && !mean.rounds(0.27));
}

#[test]
fn a_summary_is_found_in_text_and_matched_to_a_prefix_of_single_runs() {
    let text = "| 3-layer, no BN | 52.80 | 53.41 ± 0.27 (53.10–53.61, n = 3) | +0.61 |";
    let shown = summaries(text);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].text, "53.41 ± 0.27 (53.10–53.61, n = 3)");
    assert_eq!((shown[0].mean, shown[0].n), (53.41, 3));

    let page = |runs: &str| {
        vec![(
            PathBuf::from("x.md"),
            format!("- without BN: single runs {runs}.\n"),
        )]
    };
    // The first three of five runs give exactly that summary.
    assert!(explained(
        &shown[0],
        &page("53.51, 53.61, 53.10, 52.43, 52.44")
    ));
    // Other runs (a stale notebook, or the runs in another order) do not.
    assert!(!explained(
        &shown[0],
        &page("53.51, 53.61, 53.20, 52.43, 52.44")
    ));
    assert!(!explained(
        &shown[0],
        &page("52.43, 53.61, 53.10, 53.51, 52.44")
    ));
    // Too few runs listed.
    assert!(!explained(&shown[0], &page("53.51, 53.61")));
    // The same summary text in a table.
    assert!(explained(
        &shown[0],
        &[(PathBuf::from("x.md"), text.to_string())]
    ));
}
