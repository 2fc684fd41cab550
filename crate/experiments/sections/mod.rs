//! The report's sections as runnable units: each runs its experiments at a [`Scale`] and
//! returns a markdown fragment (tables and discussion) and its figures. `klayer reproduce`
//! writes them into `docs/RESULTS.md`.

use plotly::Plot;

use super::report::{self, Reported};
use super::{
    gradcheck_input, lambda_comparison, markdown_table, run_seeds, sweep, test_accuracies,
    Comparison, LambdaGrid, LambdaSearch, Run, Scale, Seeds, Summary, NINE_LAYER, SEVEN_LAYER_ADAM,
    WIDE,
};
use crate::bn_stats::BnStats;
use crate::data::{DataSource, Split};
use crate::gradcheck::{gradcheck, GradCheckConfig};
use crate::net::{BnPlacement, NetConfig};
use crate::plot;
use crate::train::{History, LrSchedule, Optimizer};
use crate::Result;

mod bn;
mod fashion;
mod gradcheck;
mod init;
mod lambda_search;
mod optimisers;
mod with_without;

pub use fashion::{fashion_runs, fashion_table, FASHION_SETTINGS};
pub use optimisers::adam_run;

/// A figure of a section: file stem, caption, plot.
pub struct Figure {
    /// File name without extension, e.g. `three_layer_bn`.
    pub name: String,
    /// One-line caption.
    pub caption: String,
    /// The figure.
    pub plot: Plot,
}

/// What a section produced.
pub struct SectionOutput {
    /// Markdown: heading, tables, discussion.
    pub markdown: String,
    /// Figures, referenced from the markdown as `figures/NAME.png`.
    pub figures: Vec<Figure>,
}

/// A section of the report.
pub struct Section {
    /// Identifier used on the command line: `three-layer`, `lambda`, …
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Whether its numbers depend on the [`Scale`] (the gradient check's do not).
    pub sized: bool,
    /// The data set it runs on: `body` gets it loaded at `Scale::on(data)`.
    pub data: DataSource,
    /// Runs its experiments: tables and discussion, without heading and figure links.
    pub body: fn(&Split<f32>, &Scale) -> Result<SectionOutput>,
}

impl Section {
    /// Runs the section: its heading, the data size it ran at, its tables and discussion, and
    /// links to its figures (`figures/NAME.png`).
    pub fn run(&self, data: &Split<f32>, scale: &Scale) -> Result<SectionOutput> {
        let body = (self.body)(data, scale)?;
        let mut markdown = format!("## {}\n\n", self.title);
        if self.sized {
            markdown += &format!("Run at {}.\n\n", scale.size_words());
        }
        markdown += body.markdown.trim_end();
        markdown += "\n\n";
        for f in &body.figures {
            markdown += &format!(
                "![{}](figures/{}.png)\n\n*{}*\n\n",
                f.caption, f.name, f.caption
            );
        }
        Ok(SectionOutput {
            markdown,
            figures: body.figures,
        })
    }
}

/// All sections, in the report's order, then those beyond it.
pub const SECTIONS: &[Section] = &[
    Section {
        id: "gradcheck",
        title: "2 · Gradient check",
        sized: false,
        data: DataSource::Cifar10,
        body: gradcheck::gradient_check,
    },
    Section {
        id: "three-layer",
        title: "2.1 · 3-layer network without and with BN",
        sized: true,
        data: DataSource::Cifar10,
        body: with_without::three_layer,
    },
    Section {
        id: "nine-layer",
        title: "2.2 · 9-layer network without and with BN",
        sized: true,
        data: DataSource::Cifar10,
        body: with_without::nine_layer,
    },
    Section {
        id: "lambda",
        title: "2.3 · Lambda search",
        sized: true,
        data: DataSource::Cifar10,
        body: lambda_search::lambda_search,
    },
    Section {
        id: "init",
        title: "2.4 · Sensitivity to initialisation",
        sized: true,
        data: DataSource::Cifar10,
        body: init::init_sensitivity,
    },
    Section {
        id: "bn-after",
        title: "3.1 · BN after the activation",
        sized: true,
        data: DataSource::Cifar10,
        body: bn::bn_after,
    },
    Section {
        id: "bn-stats",
        title: "3.1 · EMA vs PreciseBN vs Adaptive BN",
        sized: true,
        data: DataSource::Cifar10,
        body: bn::bn_stats,
    },
    Section {
        id: "tta",
        title: "3.1 · Adaptive BN with test-time augmentation",
        sized: true,
        data: DataSource::Cifar10,
        body: bn::tta,
    },
    Section {
        id: "adam",
        title: "3.2 · Adam on a 7-layer net",
        sized: true,
        data: DataSource::Cifar10,
        body: optimisers::adam,
    },
    Section {
        id: "wide",
        title: "3.2 · Wider 7-layer nets",
        sized: true,
        data: DataSource::Cifar10,
        body: optimisers::wide,
    },
    Section {
        id: "fashion",
        title: "Beyond the report · Fashion-MNIST: 3- and 9-layer nets without and with BN",
        sized: true,
        data: DataSource::FashionMnist,
        body: fashion::fashion,
    },
];

/// Seeds for the default 3- and 9-layer runs: 5 at full size.
fn main_seeds(scale: &Scale) -> Seeds {
    if scale.quick {
        scale.seed_list()
    } else {
        Seeds::new(0..5).expect("0..5 are seeds")
    }
}

fn pct(h: &History) -> String {
    match (h.diverged, h.test_acc()) {
        (Some(d), _) => format!("diverged at step {}", d.step),
        (None, Some(a)) => format!("{:.2}", 100.0 * a),
        _ => "–".into(),
    }
}

/// A section's text: the settings (may be empty), the comparison with the report, extra lines
/// and a closing paragraph (may be empty).
fn body(settings: &str, table: &Comparison, extra: &str, closing: &str) -> String {
    let mut md = String::new();
    if !settings.is_empty() {
        md += settings;
        md += "\n\n";
    }
    md += &table.markdown();
    md += extra;
    if !closing.is_empty() {
        md += "\n";
        md += closing;
        md += "\n\n";
    }
    md
}

fn curves(name: &str, caption: String, h: &History) -> Figure {
    Figure {
        name: name.into(),
        plot: plot::learning_curves(h, &caption),
        caption,
    }
}

/// A bar chart with one bar per setting: `figure` is (file stem, caption, title).
fn bars(figure: [&str; 3], labels: &[String], repeats: &[Vec<f64>]) -> Figure {
    let [name, caption, title] = figure;
    Figure {
        name: name.into(),
        caption: caption.into(),
        plot: plot::bars(labels, repeats, "test accuracy (%)", title),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_ids_are_unique() {
        let mut ids: Vec<_> = SECTIONS.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), SECTIONS.len());
    }
}
